"""The current guide's in-place path, end to end on the embedded store (which has create_vector_name, conditional
update_vectors and delete_vector_name): add a vector to the live collection with no override, backfill it while the
application inserts, edits and deletes points, stop before the switch, write again, promote, then drop the old vector;
rollback before the drop restores the collection exactly. Crashes at every backfill checkpoint are simulated in
process here (the journal is left as a SIGKILL leaves it) and are real kill -9s in tests/test_in_place_e2e.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient


from .crashes import SimulatedCrash, crash_at  # noqa: F401 - crash_at is a fixture
from .in_place import BACKFILL_CHECKPOINTS, DROP_OLD, KEEP_QUERY, SPEC, Application, build, check_end_state, points
from .run import cli

APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in-place")
    build(folder / "store")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.fixture()
def project(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


def metadata(store: Path) -> dict:
    client = QdrantClient(path=str(store))
    try:
        info = client.get_collection("docs_v1")
        return {"metadata": info.config.metadata, "vectors": sorted(info.config.params.vectors)}
    finally:
        client.close()


def test_the_planner_adds_in_place_with_no_override_and_says_why(project):
    planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "strategy: in place: add fresh to docs_v1" in planned.stdout and "Qdrant 1.18+ with named vectors" in planned.stdout
    kinds = [line.split(". ", 1)[1].split(" ")[0] for line in planned.stdout.splitlines() if line.startswith("  ") and ". " in line[:10]]
    assert kinds == ["update", "create", "backfill", "catch", "verify", "switch"]


@pytest.mark.parametrize("fault", BACKFILL_CHECKPOINTS)
def test_a_backfill_crashed_at_a_checkpoint_with_writes_before_and_after_ends_fresh(project, crash_at, monkeypatch, fault):
    application = Application(project / "store")
    crash_at(fault)
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    assert metadata(project / "store")["metadata"]["qmspec"]["query"] == {"using": "dense"}  # nothing switched yet
    application.write()

    staged = cli(*APPLY, "--stop-before-swap", cwd=project)
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert "resuming plan" in staged.stdout and "Staged: the new vectors of docs_v1 are filled and verified" in staged.stdout
    application.write()
    old = points(project / "store")

    promoted = cli(*APPLY, cwd=project)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    check_end_state(project / "store", old, application)
    recorded = metadata(project / "store")["metadata"]["qmspec"]
    assert recorded["query"] == {"using": "fresh"} and recorded["query_model"] == "hash-b"
    assert "dense" in recorded["released"] and "backfill" not in recorded


def test_every_step_crash_resumes_fresh(project, crash_at, monkeypatch):
    """A crash right after each step's effect, before it is journaled: the resumed apply redoes it harmlessly (each run
    redoes the step that crashed, then crashes after the next one's effect)."""
    for fault in ["effect:1"] + ["effect:2"] * 5:
        crash_at(fault)
        with pytest.raises(SimulatedCrash):
            cli(*APPLY, cwd=project)
    monkeypatch.delenv("QMSPEC_FAULT")
    old = points(project / "store")
    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_end_state(project / "store", old, Application(project / "store"))


def test_applying_the_same_spec_again_catches_up_and_status_counts_what_lacks_the_vector(project):
    (project / "spec.yaml").write_text(KEEP_QUERY, encoding="utf-8")
    first = cli(*APPLY, cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert metadata(project / "store")["metadata"]["qmspec"]["backfill"] == {"fresh": {"text_field": "text"}}
    application = Application(project / "store")
    application.write()
    application.write()

    status = cli("status", "spec.yaml", "--path", "store", cwd=project)
    assert "vector fresh (added in place, not queried yet): 4 point(s) of docs_v1 lack it" in status.stdout, status.stdout
    planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert "catch up fresh in docs_v1 with the application's writes" in planned.stdout and "create vector" not in planned.stdout
    old = points(project / "store")
    again = cli(*APPLY, cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fresh: embedded 4 point(s) that lacked it and 4 whose text changed" in again.stdout + again.stderr
    check_end_state(project / "store", old, application)
    status = cli("status", "spec.yaml", "--path", "store", cwd=project)
    assert "0 point(s) of docs_v1 lack it" in status.stdout


def test_rollback_before_the_drop_restores_the_collection_exactly(project):
    before, stored = metadata(project / "store"), points(project / "store")
    assert cli(*APPLY, cwd=project).returncode == 0
    undone = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "vector fresh deleted (added in place by this apply)" in undone.stdout
    assert "recorded query restored (dense)" in undone.stdout
    assert metadata(project / "store") == before
    after = points(project / "store")
    assert after.keys() == stored.keys()
    assert all(after[i][0] == stored[i][0] and set(after[i][1]) == {"dense"} and (after[i][1]["dense"] == stored[i][1]["dense"]).all()
               for i in stored)


def test_the_drop_waits_for_the_observation_window_then_is_irreversible(project):
    assert cli(*APPLY, cwd=project).returncode == 0
    (project / "drop.yaml").write_text(DROP_OLD, encoding="utf-8")
    refused = cli("plan", "drop.yaml", "--path", "store", cwd=project)
    assert refused.returncode == 3 and "DS103" in refused.stdout and "`cleanup.observe_for` asks for 24h00m" in refused.stdout
    (project / "drop.yaml").write_text(DROP_OLD + "cleanup: {observe_for: 0s}\n", encoding="utf-8")
    planned = cli("plan", "drop.yaml", "--path", "store", cwd=project)
    assert planned.returncode == 0, planned.stdout
    assert "delete vector dense from live collection docs_v1" in planned.stdout and "IRREVERSIBLE" in planned.stdout
    dropped = cli("apply", "drop.yaml", "--path", "store", "--auto-approve", cwd=project)
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    state = metadata(project / "store")
    assert state["vectors"] == ["fresh"] and "dense" in state["metadata"]["qmspec"]["deleted"]
    assert "dense" not in state["metadata"]["qmspec"]["vectors"]
    again = cli("plan", "drop.yaml", "--path", "store", cwd=project)
    assert "No changes" in again.stdout


def test_dropping_the_vector_the_recorded_query_uses_is_refused_naming_the_query(project):
    (project / "drop.yaml").write_text(DROP_OLD.replace("collection: docs_v1", "collection: docs_v1") + "cleanup: {observe_for: 0s}\n",
                                       encoding="utf-8")
    refused = cli("plan", "drop.yaml", "--path", "store", cwd=project)
    assert refused.returncode == 3 and "BC205" in refused.stdout
    assert "the application queries 'docs_v1' with {using: dense}" in refused.stdout


def test_a_quota_refusal_stops_the_step_resumably_with_the_reason(project, monkeypatch):
    """Qdrant 1.19 answers 507 to writes on a node at its quota: not retried, the step fails with Qdrant's reason, and
    once space is freed the same apply resumes where it stopped."""
    from qdrant_client.http.exceptions import UnexpectedResponse
    from qdrant_client.local.qdrant_local import QdrantLocal

    body = json.dumps({"status": {"error": "Disk usage is at 96% of total capacity, exceeding the configured limit of 95%. Help: "
                                           "Reduce disk usage (e.g. delete points or drop collections), or raise "
                                           "`max_disk_usage_percent` in the global quota config."}}).encode()
    calls = []
    real = QdrantLocal.update_vectors

    def at_quota(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second batch: part of the backfill is written
            raise UnexpectedResponse(507, "Insufficient Storage", body, {})
        return real(self, *args, **kwargs)

    monkeypatch.setattr(QdrantLocal, "update_vectors", at_quota)
    monkeypatch.setenv("QMSPEC_RETRY_ATTEMPTS", "5")
    stopped = cli(*APPLY, cwd=project)
    assert stopped.returncode != 0
    assert len(calls) == 2  # refused once, never retried
    assert "HTTP 507 Insufficient Storage: Disk usage is at 96%" in stopped.stderr and "resumes at this step" in stopped.stderr
    assert "run the same `qmspec apply` again to resume" in stopped.stderr
    monkeypatch.setattr(QdrantLocal, "update_vectors", real)
    old = points(project / "store")
    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_end_state(project / "store", old, Application(project / "store"))


def test_where_strict_mode_refuses_the_condition_writes_go_unconditionally_and_the_texts_are_read_back(project):
    """Strict mode with `unindexed_filtering_update: false` refuses the filter on an unindexed text field: the fill
    says so once, writes without the condition, reads back the texts it wrote over, and embeds again any that moved."""
    from qdrant_client import models

    from qmspec.applying.in_place import VectorFill, text_hash
    from qmspec.applying.records import FileLedger
    from qmspec.errors import QdrantAccessError

    from .in_place import PLUGIN, fresh_of

    client = QdrantClient(path=str(project / "store"))
    client.create_vector_name("docs_v1", "fresh", models.DenseVectorNameConfig(dense=models.DenseVectorConfig(size=16, distance="Cosine")))

    class Strict:
        """The store as a strict-mode server answers: a filtered update on an unindexed field is refused; one text is
        edited by the application right after the first unconditional write."""

        def __init__(self):
            self.edited = False

        def __getattr__(self, name):
            return getattr(client, name)

        def update_vectors(self, collection, points, update_filter=None, **kwargs):
            if update_filter is not None:
                raise QdrantAccessError('update_vectors failed: HTTP 403: Index required but not found for "text" of one of the '
                                        "following types: [keyword]. Help: Create an index for this key or use a different filter.")
            client.update_vectors(collection, points=points, **kwargs)
            if not self.edited:
                self.edited = True
                client.set_payload(collection, payload={"text": "edited between the write and the read-back"}, points=[points[0].id])

    fill = VectorFill("docs_v1", "fresh", {"name": "hash-b", "backend": PLUGIN, "options": {"size": 16}}, "text", False, 32)
    page, _ = client.scroll("docs_v1", limit=40, with_payload=fill.selector)
    ledger = FileLedger(project / "ledger.sqlite")
    fill.write(Strict(), fill(page), ledger)
    stored = {p.id: p for p in client.retrieve("docs_v1", [p.id for p in page], with_payload=True, with_vectors=["fresh"])}
    assert stored[page[0].id].payload["text"] == "edited between the write and the read-back"
    assert all(np.allclose(point.vector["fresh"], fresh_of(point.payload["text"]), atol=1e-5) for point in stored.values())
    known = ledger.lookup(list(stored))
    assert all(known[point_id] == text_hash(point.payload["text"]) for point_id, point in stored.items())  # the ledger says so too
    ledger.close()
    client.close()
