"""apply, resume, verify, rollback and cleanup in process, against the embedded store (the fast tier).

A crash is simulated by the same fault points the kill -9 tests use (tests/test_apply_resume.py), except that the
process survives: `crash()` raises an exception no handler of qmspec catches, so the journal is left exactly as a
SIGKILL leaves it. Every resumed run must end in the state an uninterrupted run reaches (collections, alias,
points, payloads and vectors), and the old collection must be intact, and still served, until verification
passed. The embedder is the test plug-in `tests.plugins.hash_embedder:HashEmbedder` (deterministic and fast).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from qmspec.planning.plan import STEP_TYPES
from qmspec.reports.render import describe

from . import migration
from .crashes import SimulatedCrash, crash_at  # noqa: F401 - crash_at is a fixture
from .migration import SPEC, STEP_KINDS, snapshot
from .run import cli

POINTS = 120
APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")


def journal_of(folder: Path) -> dict:
    return json.loads(next((folder / ".qmspec" / "state").rglob("docs.json")).read_text())


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return migration.template(tmp_path_factory.mktemp("template"), POINTS)


@pytest.fixture()
def project(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(template, folder, dirs_exist_ok=True)
    result = cli(*APPLY, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return snapshot(folder / "store")


def test_every_step_type_has_an_executor_a_description_a_reverse_and_says_what_it_embeds():
    from qmspec.applying.rollback import reverse
    from qmspec.applying.steps import execute
    from qmspec.planning.plan import embeds

    for table in (execute, describe, reverse, embeds):
        assert set(table.functions) == set(STEP_TYPES.values()), table.purpose


def test_uninterrupted_apply_moves_every_point_once(reference):
    assert reference["aliases"] == [("docs", "docs_v2")]
    assert set(reference["collections"]) == {"docs_v2"}  # docs_v1 deleted last, after verify and swap
    points = reference["collections"]["docs_v2"]
    assert sorted(points) == list(range(1, POINTS + 1))
    assert all(set(vectors) == {"dense"} for _, vectors in points.values())


CRASHES = [f"effect:{n}" for n in range(1, len(STEP_KINDS) + 1)] + [f"checkpoint:{n}" for n in (1, 3, 5)]


@pytest.mark.parametrize("fault", CRASHES)
def test_crashed_apply_resumes_to_the_same_state(project, reference, crash_at, monkeypatch, fault):
    crash_at(fault)
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")

    verified = any(s["kind"] == "verify" and s["status"] == "done" for s in journal_of(project)["active"]["steps"])
    crashed_state = snapshot(project / "store")
    if not verified:  # the old collection is untouched and still serving until verification passed
        assert crashed_state["aliases"] == [("docs", "docs_v1")]
        assert len(crashed_state["collections"]["docs_v1"]) == POINTS

    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming plan" in resumed.stdout
    assert snapshot(project / "store") == reference


def test_reapplying_after_success_is_a_no_op(project, reference):
    assert cli(*APPLY, cwd=project).returncode == 0
    again = cli(*APPLY, cwd=project)
    assert again.returncode == 0 and "no changes" in again.stdout
    assert snapshot(project / "store") == reference


def test_another_spec_is_refused_while_an_apply_that_swapped_is_unfinished(project, crash_at, monkeypatch):
    crash_at("effect:7")  # swapped, then died deleting the old collection
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    (project / "other.yaml").write_text(SPEC.replace("docs_v2", "docs_v3"), encoding="utf-8")
    blocked = cli("apply", "other.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert blocked.returncode == 1 and "is unfinished (running)" in blocked.stderr
    status = cli("status", "spec.yaml", "--path", "store", "--format", "json", cwd=project)
    last = json.loads(status.stdout)["last_apply"]
    assert [s["status"] for s in last["steps"]][-2:] == ["done", "running"] and last["alias_before"] == "docs_v1"


def test_failed_verification_keeps_the_old_collection_serving(project):
    strict = SPEC + "verify:\n  search: {queries: [topic 3, number 12], k: 10, min_overlap: 0.99}\n"
    (project / "spec.yaml").write_text(strict, encoding="utf-8")
    result = cli(*APPLY, cwd=project)
    assert result.returncode == 3  # a gate refused the swap
    assert re.search(r"agreement\s+FAIL", result.stdout) and "the alias was not moved" in result.stderr
    assert "--accept-quality" not in result.stderr  # only quality gates can be accepted; agreement is fixed or undone
    state = snapshot(project / "store")
    assert state["aliases"] == [("docs", "docs_v1")] and len(state["collections"]["docs_v1"]) == POINTS
    reports = list((project / ".qmspec" / "reports" / "store").glob("docs-*"))  # keyed by the Qdrant, like the journal
    assert sorted(p.suffix for p in reports) == [".json", ".md"]
    assert json.loads(next(p for p in reports if p.suffix == ".json").read_text())["passed"] is False
    status = cli("status", "spec.yaml", "--path", "store", cwd=project)
    assert "verify_failed" in status.stdout


def test_rollback_points_the_alias_back_and_drops_what_the_apply_created(project):
    (project / "spec.yaml").write_text(SPEC.replace("cleanup: {old_collection: delete}\n", ""), encoding="utf-8")
    assert cli(*APPLY, cwd=project).returncode == 0
    back = cli("rollback", "spec.yaml", "--path", "store", "--drop-new", cwd=project, input="yes\n")  # piped yes
    assert back.returncode == 0, back.stderr
    assert "  - alias docs: docs_v2 -> docs_v1" in back.stdout  # previewed before asking
    assert "alias docs: docs_v2 -> docs_v1" in back.stdout and "collection docs_v2 deleted" in back.stdout
    state = snapshot(project / "store")
    assert state["aliases"] == [("docs", "docs_v1")] and set(state["collections"]) == {"docs_v1"}
    again = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert again.returncode == 1 and "nothing to roll back" in again.stderr
    history = journal_of(project)["history"]
    assert [(h["status"], h["alias_before"], h["alias_after"]) for h in history] == [
        ("succeeded", "docs_v1", "docs_v2"), ("rolled_back", "docs_v1", "docs_v1")]


def test_rollback_refuses_when_the_old_collection_is_gone(project):
    assert cli(*APPLY, cwd=project).returncode == 0
    refused = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert refused.returncode == 1
    assert "docs_v1 no longer exists" in refused.stderr


def test_cleanup_deletes_the_replaced_collection_only_after_a_verified_swap(project):
    (project / "spec.yaml").write_text(SPEC.replace("cleanup: {old_collection: delete}\n", ""), encoding="utf-8")
    assert cli("cleanup", "spec.yaml", "--path", "store", "--auto-approve", cwd=project).returncode == 1  # nothing applied
    assert cli(*APPLY, cwd=project).returncode == 0
    asked = cli("cleanup", "spec.yaml", "--path", "store", cwd=project)
    assert asked.returncode == 1 and "this deletes collection docs_v1" in asked.stdout
    done = cli("cleanup", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert done.returncode == 0 and "deleted collection docs_v1" in done.stdout
    assert set(snapshot(project / "store")["collections"]) == {"docs_v2"}
    assert journal_of(project)["active"]["cleaned_up"] == "docs_v1"


def test_catch_up_copies_what_changed_in_the_source_during_the_copy(project, crash_at, monkeypatch):
    """Crash after the copy, change the source (edit, insert, delete), resume: the target follows the source."""
    crash_at("effect:2")
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    client = QdrantClient(path=str(project / "store"))
    client.set_payload("docs_v1", payload={"text": "edited during the migration"}, points=[5])
    client.upsert("docs_v1", points=[models.PointStruct(id=1000, vector={"dense": [0.1] * 16}, payload={"text": "new one"})])
    client.delete("docs_v1", points_selector=models.PointIdsList(points=[7]))
    client.close()
    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    points = snapshot(project / "store")["collections"]["docs_v2"]
    assert 7 not in points and points[1000][0]["text"] == "new one"
    assert points[5][0]["text"] == "edited during the migration"
    assert set(points[5][1]) == {"dense"} and set(points[1000][1]) == {"dense"}


def test_state_kept_in_qdrant_resumes_like_files(project, reference, crash_at, monkeypatch):
    args = (*APPLY, "--state", "qdrant")
    crash_at("checkpoint:2")
    with pytest.raises(SimulatedCrash):
        cli(*args, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    assert not (project / ".qmspec" / "state").exists()
    resumed = cli(*args, cwd=project)
    assert resumed.returncode == 0 and "resuming plan" in resumed.stdout, resumed.stderr
    final = snapshot(project / "store")
    assert set(final["collections"]) == {"docs_v2", "qmspec_state"}
    assert final["aliases"] == reference["aliases"]
    assert final["collections"]["docs_v2"] == reference["collections"]["docs_v2"]


def test_a_journal_written_before_one_name_per_fact_still_resumes(project, reference, crash_at, monkeypatch):
    """Older journals kept the target before the swap twice (`alias_before`, `previous_alias_target`)."""
    crash_at("effect:5")
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    path = next((project / ".qmspec" / "state").rglob("docs.json"))
    record = json.loads(path.read_text())
    record["active"]["previous_alias_target"] = record["active"].pop("alias_before")
    path.write_text(json.dumps(record))
    assert cli(*APPLY, cwd=project).returncode == 0
    assert snapshot(project / "store") == reference
    assert journal_of(project)["history"][0]["alias_before"] == "docs_v1"


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

    applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "update collection docs_v1 in place" in applied.stdout and modifier() == "idf"
    back = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert back.returncode == 0 and "docs_v1: settings restored" in back.stdout, back.stdout + back.stderr
    assert modifier() in (None, "none")


def test_a_failed_first_apply_is_undone_by_one_rollback_and_the_next_plan_starts_fresh(project):
    client = QdrantClient(path=str(project / "store"))
    client.set_payload("docs_v1", payload={"text": 42}, points=[60])  # a text field that is not text
    client.close()
    fresh_plan = cli("plan", "spec.yaml", "--path", "store", "--no-preflight", cwd=project).stdout
    failed = cli(*APPLY, "--no-preflight", cwd=project)  # the preflight would have caught it
    assert failed.returncode == 1 and "have no text in payload field 'text' (ids 60)" in failed.stderr
    assert "docs_v2" in migration.snapshot(project / "store")["collections"]  # created, never served

    back = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert back.returncode == 0, back.stderr
    assert "collection docs_v2 deleted (created by this apply, never served)" in back.stdout
    state = snapshot(project / "store")
    assert set(state["collections"]) == {"docs_v1"} and state["aliases"] == [("docs", "docs_v1")]
    assert cli("plan", "spec.yaml", "--path", "store", "--no-preflight", cwd=project).stdout == fresh_plan


def test_the_preflight_finds_a_text_field_that_is_not_text_before_anything_is_written(project):
    client = QdrantClient(path=str(project / "store"))
    client.set_payload("docs_v1", payload={"text": ["not", "a", "string"]}, points=[3])
    client.close()
    result = cli(*APPLY, cwd=project)
    assert result.returncode == 1 and "1 of the first 32 points have no text in payload field 'text' (ids 3)" in result.stderr
    assert set(snapshot(project / "store")["collections"]) == {"docs_v1"}


def test_a_changed_spec_after_a_failure_abandons_the_unfinished_apply(project, crash_at, monkeypatch):
    crash_at("effect:2")
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    (project / "spec.yaml").write_text(SPEC.replace("docs_v2", "docs_v3"), encoding="utf-8")
    asked = cli(*APPLY[:-1], cwd=project)  # without --auto-approve: it previews, asks, and nothing is piped in
    assert asked.returncode == 1 and "  - collection docs_v2 deleted (created by this apply, never served)" in asked.stdout
    applied = cli(*APPLY, cwd=project)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "so it is abandoned first" in applied.stdout
    assert set(snapshot(project / "store")["collections"]) == {"docs_v3"}  # docs_v1 deleted by the spec's cleanup


def test_plan_with_state_says_an_apply_is_unfinished(project, crash_at, monkeypatch):
    crash_at("effect:2")
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    planned = cli("plan", "spec.yaml", "--path", "store", "--format", "markdown", "--no-preflight", cwd=project)
    assert "> **Note:** an apply of plan" in planned.stdout and "is unfinished (running after 1 of 7 steps)" in planned.stdout
    assert "`qmspec apply spec.yaml --path store` of the same spec resumes it" in planned.stdout


@pytest.mark.parametrize("window", ["effect:2", "effect:5", "effect:6"], ids=["after-copy", "after-verify", "after-swap"])
def test_no_write_is_lost_across_the_cutover(project, crash_at, monkeypatch, window):
    """Stopped after the copy, after verify (the swap would act on an old verification) or right after the swap:
    the application writes to the old collection (edit, insert, delete) and, dual-writing, to the new one. The
    resumed apply carries the old collection's writes over and keeps every write made to the new collection."""
    crash_at(window)
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    client = QdrantClient(path=str(project / "store"))
    vector = {"dense": [0.25] * 16}
    client.set_payload("docs_v1", payload={"text": "edited in the old collection"}, points=[5])
    client.upsert("docs_v1", points=[models.PointStruct(id=1000, vector=vector, payload={"text": "inserted in the old"})])
    client.delete("docs_v1", points_selector=models.PointIdsList(points=[7]))
    client.set_payload("docs_v2", payload={"text": "edited in the new collection"}, points=[8])
    client.upsert("docs_v2", points=[models.PointStruct(id=2000, vector=vector, payload={"text": "inserted in the new"})])
    client.delete("docs_v2", points_selector=models.PointIdsList(points=[9]))
    client.close()

    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    points = snapshot(project / "store")["collections"]["docs_v2"]
    assert points[5][0]["text"] == "edited in the old collection" and 7 not in points and points[1000][0]["text"] == "inserted in the old"
    assert points[8][0]["text"] == "edited in the new collection" and points[2000][0]["text"] == "inserted in the new"
    assert 9 not in points  # deleted in the new collection by the application: not brought back
    assert all(set(vectors) == {"dense"} for _, vectors in points.values())
    from qmspec.embed import get_embedder

    rewritten = get_embedder({"name": "hash-b", "backend": migration.PLUGIN, "options": {"size": 16}}).embed(["edited in the old collection"])
    assert points[5][1]["dense"] == pytest.approx(rewritten[0].tolist(), abs=1e-4)  # re-embedded with the new model
