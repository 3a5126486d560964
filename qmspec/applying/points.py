"""Embedded values as Qdrant takes them: what every writer of vectors shares (the executors, and the workers of a
partitioned copy)."""
from __future__ import annotations

import numpy as np
from qdrant_client import models

from ..embed import get_embedder
from ..errors import QmspecError
from ..planning.plan import Embedding
from .progress import embedded


class MissingText(QmspecError):
    pass


def embed_points(embedder, points: list, vector: str, text_field: str, sparse: bool) -> list:
    missing = [p.id for p in points if not isinstance((p.payload or {}).get(text_field), str)]
    if missing:
        shown = ", ".join(map(str, missing[:5]))
        raise MissingText(f"{len(missing)} point(s) have no text in payload field {text_field!r} (ids {shown}); "
                         "fix their payloads or set text_field in the spec")
    if not points:
        return []
    texts = [p.payload[text_field] for p in points]
    # in chunks of what the embedder sends at once (a batch, times the requests in flight of an API), so the progress
    # moves with every batch and the embedder still batches as it would
    chunk = max(1, getattr(embedder, "batch", 256) * getattr(embedder, "concurrency", 1))
    embeddings = []
    for start in range(0, len(texts), chunk):
        embeddings += list(embedder.embed(texts[start:start + chunk]))
        embedded(len(texts[start:start + chunk]))
    return [models.PointVectors(id=p.id, vector={vector: vector_value(value, sparse)}) for p, value in zip(points, embeddings)]


def vector_value(value, sparse: bool):
    """An embedder's output as Qdrant takes it: a text for Qdrant inference to embed, a sparse vector, or a dense
    vector (one per token for a multivector)."""
    if isinstance(value, models.Document):
        return value
    if sparse:
        indices, values = value
        return models.SparseVector(indices=[int(i) for i in indices], values=[float(v) for v in values])
    return np.asarray(value, dtype=np.float32).tolist()


def embed_into(points: list, embed: dict[str, Embedding]) -> list:
    """Fill each point's new vectors from its payload text."""
    for vector, how in embed.items():
        computed = embed_points(get_embedder(how.model), points, vector, how.text_field, how.sparse)
        for point, value in zip(points, computed):
            point.vector[vector] = value.vector[vector]
    return points
