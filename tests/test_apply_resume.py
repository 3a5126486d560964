"""apply as a separate process that dies: SIGKILL at a representative set of step effects and batch checkpoints,
then resume; locks held by a dead process and by a live one.

Every resumed run must end in exactly the state an uninterrupted run reaches (same collections, alias, points,
payloads and vectors), and the old collection must be intact, and still served, until verification passed.
tests/test_apply.py runs every crash point in process; these prove the same of a real kill -9, which also leaves
the lock behind. The embedder is the test plug-in `tests.plugins.hash_embedder:HashEmbedder`.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import migration
from .migration import SPEC, snapshot
from .run import qmspec

pytestmark = pytest.mark.e2e  # real processes, killed
ROOT = Path(__file__).parent.parent
POINTS = 300


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return migration.template(tmp_path_factory.mktemp("template"), POINTS)


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(template, folder, dirs_exist_ok=True)
    result = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return snapshot(folder / "store")


CRASHES = ["effect:2", "effect:5", "checkpoint:3"]  # after the copy, after verify, in the middle of the copy


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

    resumed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming plan" in resumed.stdout and "that process is gone" in resumed.stderr  # the dead holder's lock
    assert snapshot(tmp_path / "store") == reference


def test_lock_of_a_killed_apply_is_taken_over_and_reapply_after_success_is_a_no_op(template, reference, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    killed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path, env={"QMSPEC_FAULT": "effect:2"})
    assert killed.returncode == -signal.SIGKILL
    dead = killed_pid(tmp_path)
    unlocked = qmspec("unlock", "spec.yaml", "--path", "store", cwd=tmp_path)  # the kernel released it with its holder
    assert unlocked.returncode == 0 and "alias docs is not locked" in unlocked.stdout
    taken = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert taken.returncode == 0 and f"took over the lock on alias docs from pid {dead}" in taken.stderr
    again = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert again.returncode == 0 and "no changes" in again.stdout
    assert snapshot(tmp_path / "store") == reference


def killed_pid(folder: Path) -> int:
    return json.loads(next((folder / ".qmspec" / "state").rglob("docs.lock")).read_text())["pid"]


def slow_apply(template: Path, folder: Path, delay: float) -> subprocess.Popen:
    """An apply in the background whose model takes `delay` seconds per batch, started once it holds the lock."""
    shutil.copytree(template, folder, dirs_exist_ok=True)
    (folder / "spec.yaml").write_text(SPEC.replace("options: {size: 16}", f"options: {{size: 16, delay: {delay}}}"), encoding="utf-8")
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve"],
                            cwd=folder, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_concurrent_apply_is_refused_naming_the_holder(template, tmp_path):
    first = slow_apply(template, tmp_path, 3)
    try:
        lock = _wait_for_lock(tmp_path)
        assert json.loads(lock.read_text())["pid"] == first.pid
        second = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr and "another apply holds the lock" in second.stderr
        assert "`qmspec unlock spec.yaml --path store`" in second.stderr  # the exact command, with its options
        unlock = qmspec("unlock", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
        assert unlock.returncode == 1 and "may still run" in unlock.stderr
        forced = qmspec("unlock", "spec.yaml", "--path", "store", "--auto-approve", "--force", cwd=tmp_path)
        assert forced.returncode == 1 and "released when that process ends" in forced.stderr  # a live holder's flock stays
        waited = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", "--lock-timeout", "2m", cwd=tmp_path)
        assert waited.returncode == 0 and "no changes" in waited.stdout  # it waited, then found the work done
    finally:
        first.wait(timeout=120)
    assert first.returncode == 0, first.stderr


def _wait_for_lock(folder: Path) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        locks = list((folder / ".qmspec" / "state").rglob("docs.lock")) if (folder / ".qmspec").exists() else []
        if locks and locks[0].read_text().strip():  # created, then the holder written into it
            return locks[0]
        time.sleep(0.05)
    raise AssertionError("the first apply never took the lock")


def test_state_kept_in_qdrant_resumes_and_locks_like_files(template, reference, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    args = ("apply", "spec.yaml", "--path", "store", "--auto-approve", "--state", "qdrant")
    killed = qmspec(*args, cwd=tmp_path, env={"QMSPEC_FAULT": "checkpoint:2"})
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / ".qmspec" / "state").exists()
    resumed = qmspec(*args, cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming plan" in resumed.stdout, resumed.stderr
    assert "that process is gone" in resumed.stderr
    final = snapshot(tmp_path / "store")
    assert set(final["collections"]) == {"docs_v2", "qmspec_state"}
    assert {k: v for k, v in final.items() if k != "collections"} == {k: v for k, v in reference.items() if k != "collections"}
    assert final["collections"]["docs_v2"] == reference["collections"]["docs_v2"]


def test_sigterm_journals_what_was_done_and_releases_the_lock(template, reference, tmp_path):
    """What CI sends when a job is cancelled: the apply stops cleanly, and the next one resumes without unlock."""
    apply = slow_apply(template, tmp_path, 0.5)
    _wait_for_lock(tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and apply.poll() is None:  # until the copy has written its first page
        journal = next((tmp_path / ".qmspec" / "state").rglob("docs.json"), None)
        if journal and '"checkpoint": {' in journal.read_text():
            break
        time.sleep(0.1)
    apply.send_signal(signal.SIGTERM)
    _, err = apply.communicate(timeout=60)
    assert apply.returncode == 130 and "interrupted" in err
    assert all(not lock.read_text().strip() for lock in (tmp_path / ".qmspec" / "state").rglob("docs.lock"))  # released
    assert json.loads(next((tmp_path / ".qmspec" / "state").rglob("docs.json")).read_text())["active"]["status"] == "interrupted"
    resumed = qmspec("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming plan" in resumed.stdout, resumed.stderr
    assert snapshot(tmp_path / "store")["collections"]["docs_v2"].keys() == reference["collections"]["docs_v2"].keys()
