"""apply as a separate process that dies: SIGKILL at every step and at batch checkpoints, then resume.

Every resumed run must end in exactly the state an uninterrupted run reaches (same collections, alias, points,
payloads and vectors), and the old collection must be intact, and still served, until verification passed.
The embedder is the test plug-in `tests.plugins.hash_embedder:HashEmbedder` (deterministic and fast), so these
tests exercise the machinery; tests/test_apply_e2e.py runs the real models.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from .run import qmspec

ROOT = Path(__file__).parent.parent
POINTS = 300
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
migration: {{batch_size: 64, parallel: 2, scroll_page: 50}}
cleanup: {{old_collection: delete}}
"""
STEP_KINDS = ["create_collection", "copy_points", "catch_up", "restore_indexing", "verify", "swap_alias",
              "delete_collection"]




def build_source(store: Path) -> None:
    client = QdrantClient(path=str(store))
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": {
                                 "name": "hash-a", "backend": PLUGIN, "options": {"size": 16}}}}}})
    rng = __import__("random").Random(7)
    client.upsert("docs_v1", points=[
        models.PointStruct(id=i, vector={"dense": [rng.uniform(-1, 1) for _ in range(16)]},
                           payload={"text": f"passage number {i} about topic {i % 13}", "n": i})
        for i in range(1, POINTS + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()


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


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    build_source(folder / "store")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(template, folder, dirs_exist_ok=True)
    result = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return snapshot(folder / "store")


def test_uninterrupted_apply_moves_every_point_once(reference):
    assert reference["aliases"] == [("docs", "docs_v2")]
    assert set(reference["collections"]) == {"docs_v2"}  # docs_v1 deleted last, after verify and swap
    points = reference["collections"]["docs_v2"]
    assert sorted(points) == list(range(1, POINTS + 1))
    assert all(set(vectors) == {"dense"} for _, vectors in points.values())


CRASHES = [f"effect:{n}" for n in range(1, len(STEP_KINDS) + 1)] + [f"checkpoint:{n}" for n in (1, 3, 5)]


@pytest.mark.parametrize("fault", CRASHES)
def test_killed_apply_resumes_to_the_same_state(template, reference, tmp_path, fault):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    killed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path, env={"QMSPEC_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    journal = json.loads(next((tmp_path / ".qmspec" / "state").rglob("docs.json")).read_text())
    verified = any(s["kind"] == "verify" and s["status"] == "done" for s in journal["active"]["steps"])
    crashed_state = snapshot(tmp_path / "store")
    if not verified:  # the old collection is untouched and still serving until verification passed
        assert crashed_state["aliases"] == [("docs", "docs_v1")]
        assert len(crashed_state["collections"]["docs_v1"]) == POINTS

    assert qmspec("unlock", "spec.yaml", "--path", "store", cwd=tmp_path).returncode == 0
    resumed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming plan" in resumed.stdout
    assert snapshot(tmp_path / "store") == reference


def test_lock_of_a_killed_apply_is_reported_stale_and_reapply_after_success_is_a_no_op(template, reference, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    killed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path, env={"QMSPEC_FAULT": "effect:2"})
    assert killed.returncode == -signal.SIGKILL
    refused = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert refused.returncode == 1 and f"pid {killed_pid(tmp_path)}" in refused.stderr and "that process is gone" in refused.stderr
    assert qmspec("unlock", "spec.yaml", "--path", "store", cwd=tmp_path).returncode == 0
    assert qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path).returncode == 0
    again = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert again.returncode == 0 and "no changes" in again.stdout
    assert snapshot(tmp_path / "store") == reference


def killed_pid(folder: Path) -> int:
    return json.loads(next((folder / ".qmspec" / "state").rglob("docs.lock")).read_text())["pid"]


def test_second_concurrent_apply_is_refused_naming_the_holder(template, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    slow = SPEC.replace("options: {size: 16}", "options: {size: 16, delay: 3}")
    (tmp_path / "spec.yaml").write_text(slow, encoding="utf-8")
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve"],
                             cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = _wait_for_lock(tmp_path)
        assert json.loads(lock.read_text())["pid"] == first.pid
        second = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr and "another apply holds the lock" in second.stderr
        unlock = qmspec("unlock", "spec.yaml", "--path", "store", cwd=tmp_path)
        assert unlock.returncode == 1 and "live pid" in unlock.stderr
    finally:
        first.wait(timeout=120)
    assert first.returncode == 0, first.stderr


def _wait_for_lock(folder: Path) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        locks = list((folder / ".qmspec" / "state").rglob("docs.lock")) if (folder / ".qmspec").exists() else []
        if locks:
            return locks[0]
        time.sleep(0.05)
    raise AssertionError("the first apply never took the lock")


def test_failed_verification_keeps_the_old_collection_serving(template, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    strict = SPEC + "verify:\n  search: {queries: [topic 3, number 12], k: 10, min_overlap: 0.99}\n"
    (tmp_path / "spec.yaml").write_text(strict, encoding="utf-8")
    result = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert result.returncode == 1
    assert re.search(r"search quality\s+FAIL", result.stdout) and "the alias was not moved" in result.stderr
    state = snapshot(tmp_path / "store")
    assert state["aliases"] == [("docs", "docs_v1")] and len(state["collections"]["docs_v1"]) == POINTS
    reports = list((tmp_path / ".qmspec" / "reports").glob("docs-*"))
    assert sorted(p.suffix for p in reports) == [".json", ".md"]
    assert json.loads(next(p for p in reports if p.suffix == ".json").read_text())["passed"] is False
    status = qmspec("status", "spec.yaml", "--path", "store", cwd=tmp_path)
    assert "verify_failed" in status.stdout


def test_rollback_refuses_when_the_old_collection_is_gone(template, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    assert qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path).returncode == 0
    refused = qmspec("rollback", "spec.yaml", "--path", "store", cwd=tmp_path)
    assert refused.returncode == 1
    assert "docs_v1 no longer exists" in refused.stderr


def test_catch_up_copies_what_changed_in_the_source_during_the_copy(template, tmp_path):
    """Crash after the copy, change the source (edit, insert, delete), resume: the target follows the source."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    killed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path, env={"QMSPEC_FAULT": "effect:2"})
    assert killed.returncode == -signal.SIGKILL
    client = QdrantClient(path=str(tmp_path / "store"))
    client.set_payload("docs_v1", payload={"text": "edited during the migration"}, points=[5])
    client.upsert("docs_v1", points=[models.PointStruct(id=1000, vector={"dense": [0.1] * 16}, payload={"text": "new one"})])
    client.delete("docs_v1", points_selector=models.PointIdsList(points=[7]))
    client.close()
    assert qmspec("unlock", "spec.yaml", "--path", "store", cwd=tmp_path).returncode == 0
    resumed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    points = snapshot(tmp_path / "store")["collections"]["docs_v2"]
    assert 7 not in points and points[1000][0]["text"] == "new one"
    assert points[5][0]["text"] == "edited during the migration"
    assert set(points[5][1]) == {"dense"} and set(points[1000][1]) == {"dense"}


def test_state_kept_in_qdrant_resumes_and_locks_like_files(template, reference, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    args = ("apply", "spec.yaml", "--path", "store", "--auto-approve", "--state", "qdrant")
    killed = qmspec(*args, cwd=tmp_path, env={"QMSPEC_FAULT": "checkpoint:2"})
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / ".qmspec" / "state").exists()
    refused = qmspec(*args, cwd=tmp_path)
    assert refused.returncode == 1 and "that process is gone" in refused.stderr
    assert qmspec("unlock", "spec.yaml", "--path", "store", "--state", "qdrant", cwd=tmp_path).returncode == 0
    resumed = qmspec(*args, cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming plan" in resumed.stdout, resumed.stderr
    final = snapshot(tmp_path / "store")
    assert set(final["collections"]) == {"docs_v2", "qmspec_state"}
    assert {k: v for k, v in final.items() if k != "collections"} == {k: v for k, v in reference.items() if k != "collections"}
    assert final["collections"]["docs_v2"] == reference["collections"]["docs_v2"]


def test_rollback_restores_settings_changed_in_place(tmp_path):
    from .livebuilder import build_store

    build_store(str(tmp_path / "store"), {
        "collections": {"docs_v1": {"vectors": {"dense": {"size": 4, "distance": "Cosine"}},
                                    "sparse_vectors": {"bm25": {"modifier": "none"}}, "points": 3,
                                    "models": {"dense": "m", "bm25": "Qdrant/bm25"}}},
        "aliases": {"docs": "docs_v1"}})
    (tmp_path / "spec.yaml").write_text(
        "version: 1\nalias: docs\ncollection: docs_v1\n"
        "vectors: {dense: {size: 4, distance: Cosine, model: {name: m}}}\n"
        "sparse_vectors: {bm25: {modifier: idf, model: {name: Qdrant/bm25}}}\n", encoding="utf-8")

    def modifier() -> str | None:
        client = QdrantClient(path=str(tmp_path / "store"))
        try:
            value = client.get_collection("docs_v1").config.params.sparse_vectors["bm25"].modifier
            return getattr(value, "value", value)
        finally:
            client.close()

    applied = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "update collection docs_v1 in place" in applied.stdout and modifier() == "idf"
    back = qmspec("rollback", "spec.yaml", "--path", "store", cwd=tmp_path)
    assert back.returncode == 0 and "docs_v1: settings restored" in back.stdout, back.stdout + back.stderr
    assert modifier() in (None, "none")
