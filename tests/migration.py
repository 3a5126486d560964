"""The migration the apply tests run: docs_v1 (vectors of model hash-a) behind alias `docs`, migrated to docs_v2 with
model hash-b, the old collection deleted after verify and swap. The embedder is the test plug-in
`tests.plugins.hash_embedder:HashEmbedder`, deterministic and fast, so these tests exercise the machinery;
tests/test_apply_e2e.py runs the real models."""
from __future__ import annotations

import random
from pathlib import Path

from qdrant_client import QdrantClient, models

PLUGIN = "tests.plugins.hash_embedder:HashEmbedder"
SPEC = f"""\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: hash-b, backend: "{PLUGIN}", options: {{size: 16}}}}
query: {{using: dense, model: hash-b}}
migration: {{batch_size: 64, parallel: 2, scroll_page: 25}}
cleanup: {{old_collection: delete}}
"""
STEP_KINDS = ["create_collection", "copy_points", "catch_up", "restore_indexing", "verify", "swap_alias", "delete_collection"]


def hash_quickstart(size: int = 384) -> str:
    """specs/quickstart.yaml with the hash embedder instead of MiniLM, and without its judged quality gate (the hash
    embedder answers no question): the quickstart's shape for tests of the machinery."""
    quickstart = (Path(__file__).parent.parent / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
    return quickstart[:quickstart.index("verify:")].replace(
        "      name: sentence-transformers/all-MiniLM-L6-v2\n",
        f'      name: hash\n      backend: "{PLUGIN}"\n      options: {{size: {size}}}\n').replace(
        "  model: sentence-transformers/all-MiniLM-L6-v2", "  model: hash")


def build_source(store: Path, points: int) -> None:
    client = QdrantClient(path=str(store))
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": {
                                 "name": "hash-a", "backend": PLUGIN, "options": {"size": 16}}}}}})
    rng = random.Random(7)
    client.upsert("docs_v1", points=[
        models.PointStruct(id=i, vector={"dense": [rng.uniform(-1, 1) for _ in range(16)]},
                           payload={"text": f"passage number {i} about topic {i % 13}", "n": i})
        for i in range(1, points + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()


def template(folder: Path, points: int) -> Path:
    """A project folder to copy for each test: the source store and the spec."""
    build_source(folder / "store", points)
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder


def snapshot(store: Path) -> dict:
    """Everything an observer of the store could see: collections, aliases, points with payloads and vectors."""
    client = QdrantClient(path=str(store))
    try:
        state = {"aliases": sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases), "collections": {}}
        for collection in sorted(c.name for c in client.get_collections().collections):
            points, _ = client.scroll(collection, limit=10_000, with_payload=True, with_vectors=True)
            state["collections"][collection] = {p.id: (p.payload, {k: [round(x, 5) for x in v] for k, v in (p.vector or {}).items()})
                                                for p in points}
        return state
    finally:
        client.close()
