"""Environments from qmspec.yaml, `diff` between two of them, and `drift` from the spec and the last apply."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qmspec.reports.drift import drift
from qmspec.planning.livestate import LiveCollection, LiveDenseVector, LiveState
from qmspec.planning.record import AliasRecord
from qmspec.planning.settings import CollectionSettings
from qmspec.planning.spec import DenseVectorSpec, ModelSpec, Spec

from .livebuilder import build_store
from .run import cli

ROOT = Path(__file__).parent.parent
MINI, MPNET = "sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-mpnet-base-v2"
SHARED = {"vectors": {"dense": {"size": 8, "distance": "Dot"}}, "points": 3, "models": {"dense": "m"}}
STAGING = {"collections": {"docs_v2": {"vectors": {"dense": {"size": 768, "distance": "Cosine"}}, "points": 20,
                                       "models": {"dense": MPNET}}, "shared": SHARED},
           "aliases": {"docs": "docs_v2", "other": "shared"}}
PROD = {"collections": {"docs_v1": {"vectors": {"dense": {"size": 384, "distance": "Cosine"}}, "points": 25,
                                    "models": {"dense": MINI}}, "shared": SHARED},
        "aliases": {"docs": "docs_v1", "other": "shared"}}




@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("envs")
    build_store(str(folder / "stores" / "staging"), STAGING)
    build_store(str(folder / "stores" / "prod"), PROD)
    (folder / "qmspec.yaml").write_text("environments:\n  staging: {path: stores/staging}\n"
                                        "  prod: {path: '${QMSPEC_TEST_PROD_PATH:-stores/prod}'}\n", encoding="utf-8")
    return folder


def test_diff_reports_exactly_the_known_differences(project):
    result = cli("diff", "--env", "staging", "--env", "prod", "--format", "json", "--detailed-exitcode", cwd=project)
    assert result.returncode == 2, result.stderr
    assert cli("diff", "--env", "staging", "--env", "prod", cwd=project).returncode == 0  # 2 only when asked for
    found = {d["path"]: (d["a"], d["b"]) for d in json.loads(result.stdout)["differences"]}
    assert set(found) == {"aliases.docs", "collections.docs_v1", "collections.docs_v2"}
    assert found["aliases.docs"] == ("docs_v2", "docs_v1")
    assert found["collections.docs_v1"][0] is None and found["collections.docs_v2"][1] is None


def test_diff_by_alias_compares_the_serving_collections_whatever_their_names(project):
    result = cli("diff", "--env", "staging", "--env", "prod", "--alias", "docs", "--format", "json", "--detailed-exitcode", cwd=project)
    assert result.returncode == 2
    found = {d["path"]: (d["group"], d["a"], d["b"]) for d in json.loads(result.stdout)["differences"]}
    assert found == {
        "aliases.docs": ("alias targets", "docs_v2", "docs_v1"),
        "collections.<docs>.vectors.dense.size": ("vector configs", 768, 384),
        "collections.<docs>.models.dense": ("models recorded in metadata", MPNET, MINI),
        "collections.<docs>.points": ("point counts", 20, 25),
    }
    text = cli("diff", "--env", "staging", "--env", "prod", "--alias", "docs", cwd=project).stdout
    assert "models recorded in metadata:" in text and "768 (staging) vs 384 (prod)" in text
    markdown = cli("diff", "--env", "staging", "--env", "prod", "--alias", "docs", "--format", "markdown", cwd=project).stdout
    assert "| vector configs | `collections.<docs>.vectors.dense.size` | 768 | 384 |" in markdown
    same = cli("diff", "--env", "staging", "--env", "prod", "--alias", "other", "--detailed-exitcode", cwd=project)
    assert same.returncode == 0 and "match" in same.stdout


def test_env_selects_the_store_for_every_command_and_errors_name_the_file(project):
    (project / "docs.yaml").write_text(f"version: 1\nalias: docs\ncollection: docs_v1\n"
                                       f"vectors: {{dense: {{size: 384, distance: Cosine, model: {{name: {MINI}}}}}}}\n", encoding="utf-8")
    assert cli("plan", "docs.yaml", "--env", "prod", "--detailed-exitcode", cwd=project).returncode == 0
    assert cli("plan", "docs.yaml", "--env", "staging", "--detailed-exitcode", cwd=project).returncode == 2
    unknown = cli("plan", "docs.yaml", "--env", "qa", cwd=project)
    assert unknown.returncode == 1 and "qmspec.yaml:1: environments: no environment 'qa' (known: prod, staging)" in unknown.stderr


@pytest.mark.e2e  # a real model embeds the quickstart
def test_drift_detects_a_hand_made_alias_change(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    assert cli("apply", "specs/quickstart.yaml", "--auto-approve", cwd=tmp_path).returncode == 0
    clean = cli("drift", "specs/quickstart.yaml", cwd=tmp_path)
    assert clean.returncode == 0 and "no drift" in clean.stdout
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / ".qmspec" / "qdrant"))
    client.create_collection("by_hand", vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)})
    client.update_collection_aliases(change_aliases_operations=[
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="docs")),
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="by_hand", alias_name="docs"))])
    client.close()
    moved = cli("drift", "specs/quickstart.yaml", "--format", "json", "--detailed-exitcode", cwd=tmp_path)
    assert moved.returncode == 2
    assert {d["against"] for d in json.loads(moved.stdout)["drift"]} == {"spec", "last apply"}


def test_drift_detects_a_hand_made_hnsw_change():
    """Embedded Qdrant keeps no HNSW settings, so this case is built by hand as a server would report it."""
    spec = Spec(file="s.yaml", alias="docs", collection="docs_v1", settings=CollectionSettings(hnsw={"m": 16}),
                vectors=(DenseVectorSpec("dense", 4, "Cosine", model=ModelSpec("m", "sentence-transformers")),))
    collection = LiveCollection("docs_v1", vectors=(LiveDenseVector("dense", 4, "Cosine"),),
                                settings=CollectionSettings(hnsw={"m": 32, "ef_construct": 100}),
                                metadata={"qmspec": {"vectors": {"dense": {"model": "m"}}}})
    live = LiveState("1.20.0", False, collections={"docs_v1": collection}, aliases={"docs": "docs_v1"})
    assert [d["detail"] for d in drift(spec, live, AliasRecord("docs"))] == ["hnsw: live {m: 32, ef_construct: 100}, spec {m: 16}"]
