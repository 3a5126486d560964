"""Partitioned copies: id ranges that cover every point once (a property test over integer, UUID and mixed ids), the
same result from one process, N local processes and Ray, and nothing lost or duplicated when a Ray worker or the
driver is killed in the middle (a real local Ray cluster, real SIGKILLs)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from qdrant_client import QdrantClient, models

from qmspec.applying.transfer import scroll_range
from qmspec.planning.partitions import id_order, id_ranges

from . import migration
from .migration import SPEC, snapshot
from .run import ROOT, cli

POINTS = 2000
PARTITIONED = SPEC.replace("scroll_page: 25}", "scroll_page: 200, partitions: 4}")
SLOW = PARTITIONED.replace("options: {size: 16}", "options: {size: 16, delay: 0.3}")  # each embedding call takes 0.3 s
APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")

ids = st.one_of(st.integers(min_value=0, max_value=2 ** 63 - 1), st.uuids().map(str))


@settings(max_examples=40, deadline=None)
@given(st.sets(ids, min_size=1, max_size=120), st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=17), st.randoms())
def test_id_ranges_cover_every_point_exactly_once(point_ids, count, page, rng):
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config={})
    client.upsert("c", points=[models.PointStruct(id=pid, vector={}) for pid in point_ids])
    everything = [point.id for point in client.scroll("c", limit=1000)[0]]
    sample = rng.sample(everything, max(1, len(everything) // 3))  # a sample, as Qdrant's random query gives
    seen = []
    for ids_range in id_ranges(sample, count):
        for points, _ in scroll_range(client, "c", ids_range, page):
            assert all(ids_range.holds(point.id) for point in points)
            seen += [point.id for point in points]
    assert seen == everything  # each once, in Qdrant's order
    assert everything == sorted(everything, key=id_order)  # integers first, then UUIDs, as id_order says


def test_mixed_ids_split_between_integers_and_uuids():
    sample = [3, 9, str(uuid.UUID(int=5)), str(uuid.UUID(int=2 ** 120))]
    ranges = id_ranges(sample, 2)
    assert ranges[0].holds(8) and not ranges[0].holds(str(uuid.UUID(int=7))) and ranges[1].holds(str(uuid.UUID(int=7)))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = migration.template(tmp_path_factory.mktemp("template"), POINTS)
    (folder / "spec.yaml").write_text(PARTITIONED, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(template, folder, dirs_exist_ok=True)
    (folder / "spec.yaml").write_text(SPEC.replace("scroll_page: 25}", "scroll_page: 200}"), encoding="utf-8")  # one process, no partitions
    assert cli(*APPLY, cwd=folder).returncode == 0
    return snapshot(folder / "store")


@pytest.fixture()
def project(template, tmp_path, monkeypatch) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # worker processes import the test embedder as the driver does
    return tmp_path


def partitions_of(folder: Path) -> list:
    journal = json.loads(next((folder / ".qmspec" / "state").rglob("docs.json")).read_text())
    return (journal["active"]["steps"][1]["checkpoint"] or {}).get("partitions", [])


@pytest.fixture()
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'qmspec[ray]')")
    yield ray
    ray.shutdown()


@pytest.mark.e2e
def test_local_processes_give_what_one_process_gives(project, reference):
    result = cli(*APPLY, "--workers", "2", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 partition(s) on 2 local processes" in result.stderr
    assert same_points(snapshot(project / "store"), reference)
    assert [p["status"] for p in partitions_of(project)] == ["done"] * 4 and sum(p["copied"] for p in partitions_of(project)) == POINTS


@pytest.mark.e2e
def test_a_partitioned_backfill_on_local_processes_gives_what_one_process_gives(project, reference):
    (project / "spec.yaml").write_text(PARTITIONED.replace("partitions: 4}", "partitions: 4, embed: backfill}"), encoding="utf-8")
    result = cli(*APPLY, "--workers", "2", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embed dense in docs_v2" in result.stderr and result.stderr.count("4 partition(s) on 2 local processes") == 2
    assert same_points(snapshot(project / "store"), reference)  # copied first, then every vector filled: the same points


@pytest.mark.e2e
def test_ray_gives_what_one_process_gives_and_survives_a_killed_worker(project, reference, ray_cluster):
    (project / "spec.yaml").write_text(SLOW, encoding="utf-8")
    killed = []

    def kill_a_worker() -> None:  # once a Ray worker embeds a page, SIGKILL it: Ray runs its task again
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for pid in _pids_of("ray::run_maker"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    result = cli(*APPLY, "--workers", "2", "--engine", "ray", cwd=project)
    killer.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert killed, "no Ray worker was seen embedding"
    assert same_points(snapshot(project / "store"), reference)  # the delay changes the time an embedding takes, not its vectors


@pytest.mark.e2e
def test_a_killed_driver_is_resumed_by_applying_again_and_only_unfinished_partitions_run(project, reference, ray_cluster):
    (project / "spec.yaml").write_text(SLOW, encoding="utf-8")
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, "-m", "qmspec", *APPLY, "--workers", "2", "--engine", "ray"], cwd=project, env=environ,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(p["status"] == "done" for p in _partitions_now(project)):
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray cluster it started, as a lost machine
        driver.wait()
    done = [p for p in partitions_of(project) if p["status"] == "done"]
    assert 1 <= len(done) < 4
    resumed = subprocess.run([sys.executable, "-m", "qmspec", *APPLY, "--workers", "2", "--engine", "ray"], cwd=project, env=environ,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "4 partition(s) on Ray" in resumed.stderr and f"{len(done)} done before" in resumed.stderr
    assert same_points(snapshot(project / "store"), reference)


def same_points(state: dict, reference: dict) -> bool:
    """Aliases, ids and payloads equal; vectors equal within float tolerance (the embedded store normalizes cosine
    vectors on each write, so an upsert and an update_vectors may differ in the last bits)."""
    if state["aliases"] != reference["aliases"] or state["collections"].keys() != reference["collections"].keys():
        return False
    for name, points in reference["collections"].items():
        mine = state["collections"][name]
        if mine.keys() != points.keys():
            return False
        for pid, (payload, vectors) in points.items():
            other_payload, other_vectors = mine[pid]
            if other_payload != payload or other_vectors.keys() != vectors.keys() or any(
                    abs(x - y) > 2e-5 for name in vectors for x, y in zip(vectors[name], other_vectors[name])):
                return False
    return True


def _partitions_now(folder: Path) -> list:
    try:
        return partitions_of(folder)
    except (StopIteration, json.JSONDecodeError, KeyError, IndexError, TypeError):
        return []


def _pids_of(title: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(title.encode()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
