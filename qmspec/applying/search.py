"""Search a collection the way an application does (the query embedded with the model recorded for the vector it
queries), and sample its ids. Read-only; verification, partitioned copies and `qmspec compare` ask through here."""
from __future__ import annotations

import warnings

import numpy as np
from qdrant_client import models

from ..planning.livestate import recorded_vectors
from ..planning.spec import LOCAL_SETTINGS


def recorded_models(client, collection: str) -> dict:
    return recorded_vectors(client.get_collection(collection).config.metadata)


def here(recorded: dict, local: dict) -> dict:
    """Recorded model settings, run the way this machine runs that model (its local path, device, batch size)."""
    machine = local.get(recorded.get("name")) or {}
    return recorded | {key: machine[key] for key in LOCAL_SETTINGS if key in machine}


def is_sparse(client, collection: str, vector: str) -> bool:
    return vector in (client.get_collection(collection).config.params.sparse_vectors or {})


def query_value(embedded, sparse: bool):
    """What an embedder returned for one query, as query_points takes it."""
    if isinstance(embedded, models.Document):  # Qdrant inference embeds the query itself
        return embedded
    if sparse:
        indices, values = embedded
        return models.SparseVector(indices=list(indices), values=list(values))
    return np.asarray(embedded, dtype=np.float32).tolist()


def search_ids(client, collection: str, vector: str, embedder, query: str, k: int, sparse: bool, with_scores: bool = False) -> list:
    """Top-k ids (or (id, score) pairs) for `query` embedded the way `embedder` embeds queries."""
    query_vector = query_value(getattr(embedder, "embed_queries", embedder.embed)([query])[0], sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode warns that it always searches exactly
        result = client.query_points(collection, query=query_vector, using=vector or None, limit=k, with_payload=False)
    return [(point.id, point.score) if with_scores else point.id for point in result.points]


def sample_ids(client, collection: str, size: int = 4096) -> list:
    """A random sample of ids (Qdrant's random sampling query), or the first page where that is not available."""
    try:
        return [point.id for point in client.query_points(collection, query=models.SampleQuery(sample=models.Sample.RANDOM),
                                                          limit=size, with_payload=False).points]
    except Exception:  # noqa: BLE001 - servers before 1.11 have no random sampling: the head of the collection still splits
        return [point.id for point in client.scroll(collection, limit=size, with_payload=False)[0]]
