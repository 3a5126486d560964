"""The in-place migration the tests run (the current guide's path on Qdrant 1.18+): docs_v1 serves alias `docs` with
vector `dense` (model hash-a); the spec adds `fresh` (model hash-b) to it, backfills it and switches the application's
query to it. The application keeps writing meanwhile: `Application` inserts points with only the old vector, edits
texts, deletes points and re-writes whole points without the new vector, and remembers what it wrote, so a test can
check the end state point by point."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

from tests.migration import PLUGIN
from tests.plugins.hash_embedder import HashEmbedder

POINTS = 150
SPEC = f"""\
version: 1
alias: docs
collection: docs_v1
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: hash-a, backend: "{PLUGIN}", options: {{size: 16}}}}
  fresh:
    size: 16
    distance: Cosine
    model: {{name: hash-b, backend: "{PLUGIN}", options: {{size: 16}}}}
query: {{using: fresh, model: hash-b}}
migration: {{batch_size: 32, scroll_page: 32}}
verify:
  search: {{queries: [passage number 3, passage number 77], k: 5, min_overlap: 0.0}}
"""
KEEP_QUERY = SPEC.replace("query: {using: fresh, model: hash-b}", "query: {using: dense, model: hash-a}")  # add, backfill, no switch
DROP_OLD = SPEC.replace(f"""  dense:
    size: 16
    distance: Cosine
    model: {{name: hash-a, backend: "{PLUGIN}", options: {{size: 16}}}}
""", "")
BACKFILL_CHECKPOINTS = [f"checkpoint:{n}" for n in range(2, 7)]  # 1 is create_vector's; 150 points in pages of 32: 2..6


def build(store: Path) -> None:
    client = QdrantClient(path=str(store))
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"app": "the application's own key", "qmspec": {
                                 "vectors": {"dense": {"model": "hash-a", "text_field": "text", "model_settings": {
                                     "name": "hash-a", "backend": PLUGIN, "options": {"size": 16}}}},
                                 "query": {"using": "dense"}, "query_model": "hash-a", "query_since": "2026-01-01T00:00:00Z"}})
    rng = random.Random(7)
    client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": [rng.uniform(-1, 1) for _ in range(16)]},
                                                        payload={"text": f"passage number {i}", "n": i}) for i in range(1, POINTS + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()


def fresh_of(text: str) -> np.ndarray:
    return HashEmbedder({"name": "hash-b", "options": {"size": 16}}).embed([text])[0]


class Application:
    """The application writing to docs_v1 during the migration, with only the old vector, as it does until it switches."""

    def __init__(self, store: Path):
        self.store = store
        self.deleted: set = set()
        self.rounds = 0

    def write(self) -> None:
        """One round of writes: an insert, two edits of the text (one early id, one late, so one falls before the
        backfill's position and one after), two deletes the same way, and a whole point re-written without `fresh`."""
        self.rounds += 1
        r, rng = self.rounds, random.Random(self.rounds)
        client = QdrantClient(path=str(self.store))
        try:
            dense = lambda: [rng.uniform(-1, 1) for _ in range(16)]  # noqa: E731
            client.upsert("docs_v1", points=[models.PointStruct(id=1000 + r, vector={"dense": dense()},
                                                                payload={"text": f"inserted in round {r}", "n": 1000 + r})])
            for point_id in (10 + r, POINTS - 10 - r):
                client.set_payload("docs_v1", payload={"text": f"edited in round {r}: {point_id}"}, points=[point_id])
            client.upsert("docs_v1", points=[models.PointStruct(id=30 + r, vector={"dense": dense()},
                                                                payload={"text": f"re-written in round {r}", "n": 30 + r})])
            gone = [20 + r, POINTS - 20 - r]
            client.delete("docs_v1", points_selector=models.PointIdsList(points=gone))
            self.deleted |= set(gone)
        finally:
            client.close()


def points(store: Path) -> dict:
    """id -> (payload, {vector name: float32 array}) of docs_v1."""
    client = QdrantClient(path=str(store))
    try:
        found, _ = client.scroll("docs_v1", limit=100_000, with_payload=True, with_vectors=True)
        return {p.id: (p.payload, {name: np.asarray(value, dtype=np.float32) for name, value in (p.vector or {}).items()}) for p in found}
    finally:
        client.close()


def check_end_state(store: Path, old: dict, application: Application) -> None:
    """Every point has `fresh` embedded from its current text (within 1e-5), `dense` exactly as it was last written
    (`old`: docs_v1 read right after the application's last writes, before qmspec touched it again), no id lost and
    none of those the application deleted resurrected."""
    now = points(store)
    assert set(now) == set(old), (sorted(set(old) - set(now)), sorted(set(now) - set(old)))
    assert not set(now) & application.deleted
    for point_id, (payload, vectors) in now.items():
        assert set(vectors) == {"dense", "fresh"}, point_id
        assert np.array_equal(vectors["dense"], old[point_id][1]["dense"]), point_id
        assert np.allclose(vectors["fresh"], fresh_of(payload["text"]), atol=1e-5), (point_id, payload["text"])
        assert payload == old[point_id][0]
