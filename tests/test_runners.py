"""Two CI runners, one Qdrant: an apply begun in one working directory is resumed, promoted or rolled back from
another that shares nothing with it but Qdrant (`--state qdrant`), as ephemeral GitHub Actions runners do. Every
result must equal the same steps taken in one directory: no write of the application lost, none left stale.

The store is one embedded Qdrant at an absolute path that both working directories name with --path; the journal,
lock, baseline and learned maps live in its qmspec_state collection.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from qmspec.planning.record import STATE_COLLECTION

from . import migration
from .crashes import SimulatedCrash, crash_at  # noqa: F401 - crash_at is a fixture
from .run import cli

POINTS = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    migration.build_source(folder / "store", POINTS)
    return folder


class Runners:
    """A shared store and a working directory per runner, each with its own copy of the spec (as a checkout)."""

    def __init__(self, root: Path, template: Path, spec: str):
        self.store = root / "qdrant"
        shutil.copytree(template / "store", self.store)
        self.folders = {}
        for name in ("a", "b"):
            folder = root / name
            folder.mkdir()
            (folder / "spec.yaml").write_text(spec, encoding="utf-8")
            self.folders[name] = folder

    def apply(self, runner: str, *extra: str, code: int = 0):
        result = cli("apply", "spec.yaml", "--path", self.store, "--state", "qdrant", "--auto-approve", *extra, cwd=self.folders[runner])
        assert result.returncode == code, result.stdout + result.stderr
        return result

    def crashed_apply(self, runner: str, crash_at, fault: str, *extra: str) -> None:
        crash_at(fault)
        with pytest.raises(SimulatedCrash):
            cli("apply", "spec.yaml", "--path", self.store, "--state", "qdrant", "--auto-approve", *extra, cwd=self.folders[runner])
        crash_at(None)

    def write(self, action) -> None:
        client = QdrantClient(path=str(self.store))
        try:
            action(client)
        finally:
            client.close()

    def served(self) -> dict:
        """What the application sees and what qmspec manages; its own state collection left out."""
        state = migration.snapshot(self.store)
        state["collections"].pop(STATE_COLLECTION, None)
        return state


def both_ways(tmp_path, template, spec: str, scenario) -> tuple[dict, dict]:
    """Run `scenario(runners, first, second)` with two runners, then in one directory; return both end states."""
    apart = Runners(tmp_path / "apart", template, spec)
    scenario(apart, "a", "b")
    together = Runners(tmp_path / "together", template, spec)
    scenario(together, "a", "a")
    assert not list(apart.folders["b"].glob(".qmspec/**/*.sqlite")) and not list(apart.folders["a"].glob(".qmspec/**/*.sqlite"))
    return apart.served(), together.served()


def edit_old(client, point: int, text: str) -> None:
    client.set_payload("docs_v1", payload={"text": text}, points=[point])


KEEP_OLD = migration.SPEC.replace("cleanup: {old_collection: delete}\n", "")


def test_a_staged_swap_promoted_from_another_runner_keeps_every_application_write(tmp_path, template):
    def scenario(runners: Runners, first: str, second: str) -> None:
        runners.apply(first, "--stop-before-swap")

        def application(client) -> None:  # an edit in the old collection, and a dual write into the new one
            edit_old(client, 5, "edited in the old collection while staged")
            client.set_payload("docs_v2", payload={"text": "written by the application to the new collection"}, points=[8])
            client.upsert("docs_v2", points=[models.PointStruct(id=2000, vector={"dense": [0.5] * 16}, payload={"text": "new only"})])

        runners.write(application)
        runners.apply(second)

    apart, together = both_ways(tmp_path, template, KEEP_OLD, scenario)
    assert apart == together
    points = apart["collections"]["docs_v2"]
    assert points[8][0]["text"] == "written by the application to the new collection"  # not overwritten by the source
    assert points[5][0]["text"] == "edited in the old collection while staged" and points[2000][0]["text"] == "new only"
    assert apart["aliases"] == [("docs", "docs_v2")]


def test_a_copy_interrupted_on_one_runner_and_resumed_on_another_carries_the_edits_of_points_already_copied(tmp_path, template, crash_at):
    def scenario(runners: Runners, first: str, second: str) -> None:
        runners.crashed_apply(first, crash_at, "checkpoint:2")  # two pages of 25 copied

        def application(client) -> None:
            edit_old(client, 5, "edited after it was copied")  # on a page copied before the crash
            client.delete("docs_v1", points_selector=models.PointIdsList(points=[12]))
            edit_old(client, 55, "edited before it was copied")

        runners.write(application)
        runners.apply(second)

    apart, together = both_ways(tmp_path, template, KEEP_OLD, scenario)
    assert apart == together
    points = apart["collections"]["docs_v2"]
    assert points[5][0]["text"] == "edited after it was copied" and points[55][0]["text"] == "edited before it was copied"
    assert 12 not in points and len(points) == POINTS - 1


ADAPTER = KEEP_OLD.replace("    model: {name: hash-b", "    adapter: {from: dense, sample: 60, min_recall: 0.0}\n    model: {name: hash-b")


def test_an_adapter_migration_resumed_on_another_runner_maps_with_the_matrix_it_learned(tmp_path, template, crash_at):
    def scenario(runners: Runners, first: str, second: str) -> None:
        runners.crashed_apply(first, crash_at, "checkpoint:1")  # the map learned and journaled, the copy begun
        runners.apply(second)

    apart, together = both_ways(tmp_path, template, ADAPTER, scenario)
    assert apart == together and len(apart["collections"]["docs_v2"]) == POINTS


PARTITIONED = KEEP_OLD.replace("scroll_page: 25}", "scroll_page: 25, partitions: 4}")


def test_a_partitioned_copy_resumed_on_another_runner_copies_each_partition_once(tmp_path, template, crash_at):
    def scenario(runners: Runners, first: str, second: str) -> None:
        runners.crashed_apply(first, crash_at, "checkpoint:3")
        runners.write(lambda client: edit_old(client, 3, "edited during the partitioned copy"))
        runners.apply(second)

    apart, together = both_ways(tmp_path, template, PARTITIONED, scenario)
    assert apart == together
    assert apart["collections"]["docs_v2"][3][0]["text"] == "edited during the partitioned copy"


def test_a_rollback_from_another_runner_undoes_the_staged_apply(tmp_path, template):
    runners = Runners(tmp_path, template, KEEP_OLD)
    runners.apply("a", "--stop-before-swap")
    back = cli("rollback", "spec.yaml", "--path", runners.store, "--state", "qdrant", "--auto-approve", cwd=runners.folders["b"])
    assert back.returncode == 0 and "collection docs_v2 deleted (created by this apply, never served)" in back.stdout, back.stderr
    assert set(runners.served()["collections"]) == {"docs_v1"}
    client = QdrantClient(path=str(runners.store))
    try:  # the apply's records went with it: no baseline point is left in the state collection
        kinds = {point.payload.get("kind") for point in client.scroll(STATE_COLLECTION, limit=1000, with_payload=True)[0]}
    finally:
        client.close()
    assert kinds == {"journal"}


def test_file_state_resumed_where_its_records_are_not_is_refused_with_the_reason(tmp_path, template, crash_at):
    """A journal carried to another folder without the apply's records: resuming would treat every page the first
    runner copied as the application's own write and leave the source's later edits behind."""
    runners = Runners(tmp_path, template, KEEP_OLD)
    crash_at("checkpoint:2")
    with pytest.raises(SimulatedCrash):
        cli("apply", "spec.yaml", "--path", runners.store, "--auto-approve", cwd=runners.folders["a"])
    crash_at(None)
    journals = list((runners.folders["a"] / ".qmspec" / "state").rglob("docs.json"))
    assert len(journals) == 1
    moved = runners.folders["b"] / journals[0].relative_to(runners.folders["a"])
    moved.parent.mkdir(parents=True)
    shutil.copy(journals[0], moved)
    refused = cli("apply", "spec.yaml", "--path", runners.store, "--auto-approve", cwd=runners.folders["b"])
    assert refused.returncode == 1 and "is not in" in refused.stderr and "resume it there" in refused.stderr, refused.stderr
