"""`qmspec import`: bring a collection qmspec did not create under management (Terraform's import). The spec names
each vector's model; before that name is recorded, the model embeds the stored text of a random sample of points and
its vectors are compared with the stored ones. Only a match is recorded (in collection metadata, as an apply records
it); a mismatch is refused with the similarity measured, and nothing is written.

A model that made the stored vectors reproduces them to float precision (cosine 1.0 up to rounding and the store's
quantization); another model's vectors share no geometry with them (cosine near 0). The threshold, 0.99 by default,
sits far from both."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qdrant_client import models

from ..embed import get_embedder
from ..planning.livestate import METADATA_KEY
from .points import vector_value
from .search import sample_ids

DEFAULT_THRESHOLD = 0.99
DEFAULT_SAMPLE = 64


@dataclass(frozen=True)
class Match:
    """How the stored vectors of one named vector compare with a model's embedding of the same points' texts."""

    vector: str
    model: str
    compared: int  # points that hold the vector and a text
    mean: float | None  # mean cosine similarity, None where nothing could be compared
    lowest: float | None
    threshold: float

    @property
    def passed(self) -> bool:
        """A match, or nothing to compare (a vector no point holds yet: 0 of 0 agree)."""
        return self.mean is None or self.mean >= self.threshold

    def describe(self) -> str:
        if self.mean is None:
            return f"{self.vector}: no sampled point holds it with a text: nothing to compare, recorded as declared ({self.model})"
        verdict = "matches" if self.passed else "does not match"
        return (f"{self.vector}: {self.model} {verdict} the stored vectors: cosine {self.mean:.4f} (lowest {self.lowest:.4f}) "
                f"over {self.compared} points (threshold {self.threshold})")


def measure(client, collection: str, vector: str, model: dict, text_field: str, sparse: bool, ids: list,
            threshold: float = DEFAULT_THRESHOLD) -> Match:
    """Embed the sampled points' texts with `model` and compare with what `vector` stores for them."""
    points = client.retrieve(collection, ids, with_payload=[text_field], with_vectors=[vector]) if ids else []
    usable = [point for point in points if isinstance((point.payload or {}).get(text_field), str) and (point.vector or {}).get(vector) is not None]
    if not usable:
        return Match(vector, model["name"], 0, None, None, threshold)
    fresh = get_embedder(model).embed([point.payload[text_field] for point in usable])
    similarities = [_cosine(point.vector[vector], vector_value(made, sparse)) for point, made in zip(usable, fresh)]
    return Match(vector, model["name"], len(usable), float(np.mean(similarities)), float(np.min(similarities)), threshold)


def _cosine(stored, made) -> float:
    if isinstance(stored, models.SparseVector):
        ours = dict(zip(made.indices, made.values))
        dot = sum(value * ours.get(index, 0.0) for index, value in zip(stored.indices, stored.values))
        norm = np.linalg.norm(stored.values) * np.linalg.norm(list(ours.values()))
        return float(dot / norm) if norm else 0.0
    a, b = np.asarray(stored, dtype=np.float64), np.asarray(made, dtype=np.float64)
    if a.shape != b.shape:
        return 0.0
    if a.ndim == 2:  # a multivector: token by token
        return float(np.mean([_cosine(x, y) for x, y in zip(a, b)]))
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm else 0.0


def sample(client, collection: str, size: int) -> list:
    return sample_ids(client, collection, size)


def record(client, collection: str, stamped: dict) -> None:
    """Write qmspec's record (`stamped`: {"qmspec": {...}}) into the collection's metadata, keeping every other key of
    it (tools of the application's own) as it was."""
    current = dict(client.get_collection(collection).config.metadata or {})
    client.update_collection(collection, metadata=current | {METADATA_KEY: stamped[METADATA_KEY]})
