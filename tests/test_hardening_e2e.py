"""What only real processes show: the lock is exclusive under a race of many processes that also die holding it, the
workers of a killed driver go with it, Ray's driver journals a SIGTERM like the local one, a huge record is refused
within a small memory limit, a retry budget holds within a second, and no library warning reaches stderr raw."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmspec.connect import open_client
from qmspec.errors import QdrantAccessError
from qmspec.project import RetryPolicy, Target

from . import migration
from .run import ROOT, qmspec
from .test_retry import FakeQdrant

pytestmark = pytest.mark.e2e

RACER = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from qmspec.applying.journal import FileStateStore, LockHeld
store, log, rounds, die = FileStateStore(__import__("pathlib").Path({folder!r})), {log!r}, {rounds}, {die}
def say(text):
    with open(log, "a") as handle:
        handle.write(text + "\\n")
for round in range(rounds):
    while True:
        try:
            store.acquire("docs", "racer")
            break
        except LockHeld:
            time.sleep(0.001)
    say(f"+{{os.getpid()}}")
    time.sleep(0.002)
    if die and round == rounds - 1:
        say(f"!{{os.getpid()}}")
        os._exit(0)  # dies holding the lock: the kernel releases it, the next taker finds this holder in the file
    say(f"-{{os.getpid()}}")
    store.release("docs")
"""


def test_a_race_of_many_processes_never_gives_the_lock_to_two(tmp_path):
    log = tmp_path / "log"
    racers = [subprocess.Popen([sys.executable, "-c", RACER.format(root=str(ROOT), folder=str(tmp_path / "state"), log=str(log),
                                                                      rounds=40, die=index % 2 == 0)])
              for index in range(8)]
    for racer in racers:
        assert racer.wait(timeout=240) == 0
    holder = None
    events = log.read_text().split()
    for event in events:
        kind, pid = event[0], event[1:]
        if kind == "+":
            assert holder is None, f"{pid} took the lock while {holder} held it"
            holder = pid
        else:
            assert holder == pid, f"{pid} left a lock {holder} held"
            holder = None
    assert len(events) == 8 * 40 * 2 and sum(event[0] == "!" for event in events) == 4  # four died holding it


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_the_workers_of_a_killed_driver_are_gone_within_seconds(tmp_path):
    migration.template(tmp_path, 400)
    spec = migration.SPEC.replace("options: {size: 16}", "options: {size: 16, delay: 0.5}").replace("scroll_page: 25}", "scroll_page: 25, partitions: 4}")
    (tmp_path / "spec.yaml").write_text(spec)
    driver = subprocess.Popen([sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve", "--workers", "2",
                               "--no-preflight"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.monotonic() + 90, []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [pid for pid in _children(driver.pid) if "spawn_main" in (Path("/proc") / str(pid) / "cmdline").read_text(errors="replace")]
        time.sleep(0.2)
    assert len(workers) >= 2, "the workers never started"
    time.sleep(2)  # they have loaded the model and are embedding
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their driver"


def test_a_sigterm_on_the_ray_engine_is_journaled_and_exits_130(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    migration.template(tmp_path, 200)
    spec = migration.SPEC.replace("options: {size: 16}", "options: {size: 16, delay: 0.5}").replace("scroll_page: 25}", "scroll_page: 25, partitions: 4}")
    (tmp_path / "spec.yaml").write_text(spec)
    driver = subprocess.Popen([sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve", "--workers", "2",
                               "--engine", "ray", "--no-preflight"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        journal = next((tmp_path / ".qmspec" / "state").rglob("docs.json"), None) if (tmp_path / ".qmspec").exists() else None
        if journal and '"partitions": [' in journal.read_text():  # the copy's partitions journaled: the copy runs
            break
        time.sleep(0.2)
    time.sleep(1)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    record = json.loads(next((tmp_path / ".qmspec" / "state").rglob("docs.json")).read_text())
    assert record["active"]["status"] == "interrupted"


def test_a_50_mb_record_is_refused_within_a_2_gb_memory_limit(tmp_path):
    migration.build_source(tmp_path / "store", 5)
    with open(tmp_path / "big.jsonl", "w") as handle:
        handle.write('{"id": 1, "text": "a small one"}\n{"id": 2, "text": "' + "word " * 10_000_000 + '"}\n')
    spec = migration.SPEC.replace("alias: docs", "alias: big").replace("cleanup: {old_collection: delete}\n", "source: {files: [big.jsonl]}\n")
    (tmp_path / "spec.yaml").write_text(spec)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    planned = subprocess.run([sys.executable, "-m", "qmspec", "plan", "spec.yaml", "--path", "store"], cwd=tmp_path, preexec_fn=limited,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert planned.returncode == 1, planned.stderr[-2000:]
    assert "big.jsonl:2: the record is longer than 8 MiB" in planned.stderr and "MemoryError" not in planned.stderr


def test_a_retry_budget_holds_within_a_second_when_the_server_hangs():
    hanging = FakeQdrant(["hang"] * 20)  # each /collections call answers after 2 s
    budget = RetryPolicy(attempts=20, max_seconds=3.5, timeout_s=1, initial_wait=0.05, max_wait=0.1)
    started = time.monotonic()
    with open_client(Target(url=hanging.url, retry=budget)) as client, pytest.raises(QdrantAccessError) as spent:
        client.get_collections()
    assert time.monotonic() - started <= budget.max_seconds + 1
    assert "retry budget: 20 attempts, 4s" in str(spent.value) or "retry budget: 20 attempts, 3s" in str(spent.value)


def test_no_library_warning_reaches_stderr_raw(tmp_path):
    old = FakeQdrant([])  # reports version 1.15.0: qdrant-client would warn that the versions are apart
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    result = qmspec("plan", "specs/quickstart.yaml", "--url", old.url, "--no-preflight", cwd=tmp_path)
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr, result.stderr
    verbose = qmspec("inspect", "--path", str(tmp_path / "none"), "-v", cwd=tmp_path)
    assert "UserWarning" not in verbose.stderr.replace("UserWarning from", "")
