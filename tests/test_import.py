"""`qmspec import`: a collection some script made, with vectors of a model nothing recorded, taken under management.
The declared model is checked against the stored vectors before anything is written; then a migration from it plans,
applies and verifies like one from a collection qmspec made."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from tests.plugins.hash_embedder import HashEmbedder

from . import migration
from .run import cli

EXISTING = f"""\
version: 1
alias: docs
collection: docs_v1
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: MODEL, backend: "{migration.PLUGIN}", options: {{size: 16}}}}
query: {{using: dense, model: MODEL}}
"""


@pytest.fixture()
def project(tmp_path) -> Path:
    """A collection a script made with plain qdrant-client: vectors of the test model hash-a, no metadata."""
    client = QdrantClient(path=str(tmp_path / "store"))
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)})
    texts = [f"passage number {i} about topic {i % 13}" for i in range(1, 81)]
    vectors = HashEmbedder({"name": "hash-a", "options": {"size": 16}}).embed(texts)
    client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": vector.tolist()}, payload={"text": text})
                                     for i, (text, vector) in enumerate(zip(texts, vectors), 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()
    return tmp_path


def metadata(project: Path) -> dict:
    client = QdrantClient(path=str(project / "store"))
    try:
        return client.get_collection("docs_v1").config.metadata or {}
    finally:
        client.close()


def test_inspect_cannot_name_the_model_and_says_to_import(project):
    assert cli("inspect", "--path", "store", "--out", "specs", cwd=project).returncode == 0
    checked = cli("validate", "specs/docs.yaml", cwd=project)
    assert checked.returncode == 1 and "then run `qmspec import SPEC`" in checked.stderr


def test_the_wrong_model_is_refused_with_the_similarity_and_nothing_is_written(project):
    (project / "spec.yaml").write_text(EXISTING.replace("MODEL", "hash-b"))
    refused = cli("import", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert refused.returncode == 3 and "dense: hash-b does not match the stored vectors: cosine" in refused.stderr
    assert "nothing was written" in refused.stderr and "over 64 points (threshold 0.99)" in refused.stderr
    assert metadata(project) == {}


def test_candidates_find_the_model_that_made_the_vectors(project):
    (project / "spec.yaml").write_text(EXISTING.replace("MODEL", "hash-b"))
    found = cli("import", "spec.yaml", "--path", "store", "--candidates", "hash-c", "--candidates", "hash-a", cwd=project)
    best = found.stdout.split("candidates, best first:\n")[1].splitlines()[0]
    assert "hash-a matches the stored vectors: cosine 1.0000" in best and found.returncode == 3


def test_the_right_model_is_recorded_and_a_migration_from_it_plans_applies_and_verifies(project):
    (project / "spec.yaml").write_text(EXISTING.replace("MODEL", "hash-a"))
    asked = cli("import", "spec.yaml", "--path", "store", cwd=project)  # previews and asks; nothing piped in
    assert asked.returncode == 1 and "dense: hash-a matches the stored vectors: cosine 1.0000" in asked.stdout
    assert "this records in the metadata of docs_v1: dense <- hash-a" in asked.stdout and metadata(project) == {}
    imported = cli("import", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert imported.returncode == 0 and "Imported: docs_v1 is managed by spec.yaml" in imported.stdout, imported.stderr
    recorded = metadata(project)["qmspec"]
    assert recorded["vectors"]["dense"]["model"] == "hash-a" and recorded["query"] == {"using": "dense"}
    assert recorded["vectors"]["dense"]["text_field"] == "text"
    same = cli("plan", "spec.yaml", "--path", "store", "--detailed-exitcode", cwd=project)
    assert same.returncode == 0 and "No changes" in same.stdout, same.stdout

    inspected = cli("inspect", "--path", "store", cwd=project)
    assert "name: hash-a" in inspected.stdout and "query:" in inspected.stdout and "options:" not in inspected.stdout

    (project / "v2.yaml").write_text(migration.SPEC.replace("cleanup: {old_collection: delete}\n", ""))
    outputs = [cli("plan", "v2.yaml", "--path", "store", cwd=project), cli("apply", "v2.yaml", "--path", "store", "--auto-approve", cwd=project)]
    assert [result.returncode for result in outputs] == [0, 0], outputs[1].stdout + outputs[1].stderr
    assert "re-embed with hash-b (stored vectors come from hash-a)" in outputs[0].stdout and "verdict: passed" in outputs[1].stdout
    assert all("None" not in result.stdout + result.stderr for result in outputs)


def test_an_agreement_check_against_a_collection_nothing_recorded_says_what_to_do(project):
    """Before the import nothing says which model made docs_v1's vectors: the old results cannot be computed."""
    agreement = "verify:\n  search: {queries: [topic 3, number 12], k: 5, min_overlap: 0.5}\n"
    (project / "v2.yaml").write_text(migration.SPEC.replace("cleanup: {old_collection: delete}\n", agreement))
    refused = cli("apply", "v2.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert refused.returncode == 3 and "docs_v1 records no runnable model for any vector" in refused.stdout
    assert "run `qmspec import` on a spec of docs_v1 first" in refused.stdout and "None" not in refused.stdout + refused.stderr


def test_a_declared_vector_no_point_holds_compares_with_its_source(tmp_path):
    """A sparse vector declared but never filled, in the old collection and carried: 0 of 0 agree."""
    client = QdrantClient(path=str(tmp_path / "store"))
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             sparse_vectors_config={"keywords": models.SparseVectorParams()},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": {
                                 "name": "hash-a", "backend": migration.PLUGIN, "options": {"size": 16}}}}}})
    client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": [float(i)] + [0.5] * 15}, payload={"text": f"t {i}"})
                                     for i in range(1, 21)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()
    spec = migration.SPEC.replace("cleanup: {old_collection: delete}\n", "sparse_vectors:\n  keywords: {modifier: none, carry: {from: keywords}}\n")
    (tmp_path / "spec.yaml").write_text(spec)
    applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "vector keywords  pass      0 of 20 points have it, as 0 have docs_v1.keywords" in applied.stdout
    assert json.loads(cli("status", "spec.yaml", "--path", "store", "--format", "json", cwd=tmp_path).stdout)["serves"] == "docs_v2"
