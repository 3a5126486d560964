"""The in-place backfill killed with a real SIGKILL at every checkpoint, as a separate process, with the application
writing before the resume and again before the promotion: the end state is what tests/in_place.py says it must be
(every point's new vector from its current text, old vectors as written, no id lost or resurrected). The same crashes
run in process in tests/test_in_place.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .in_place import BACKFILL_CHECKPOINTS, SPEC, Application, build, check_end_state, points
from .run import qmspec

pytestmark = pytest.mark.e2e  # real processes, killed
APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in-place")
    build(folder / "store")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.mark.parametrize("fault", BACKFILL_CHECKPOINTS + ["checkpoint:7"])  # 7: the switch, its record before kept
def test_killed_in_place_backfill_resumes_fresh_with_the_application_writing(template, tmp_path, fault):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    application = Application(tmp_path / "store")
    killed = qmspec(*APPLY, cwd=tmp_path, env={"QMSPEC_FAULT": fault})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    application.write()
    staged = qmspec(*APPLY, "--stop-before-swap", cwd=tmp_path)
    assert staged.returncode == 0 and "took over the lock" in staged.stderr + staged.stdout, staged.stdout + staged.stderr
    application.write()
    old = points(tmp_path / "store")
    promoted = qmspec(*APPLY, cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    check_end_state(tmp_path / "store", old, application)


def test_an_in_place_backfill_in_partitions_on_worker_processes_ends_fresh(template, tmp_path):
    """The embedded store's partitioned loop: this process reads and writes (conditionally, ledgered), the workers
    embed; partitions journaled, a kill in the middle resumed."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    spec = (tmp_path / "spec.yaml").read_text().replace("migration: {batch_size: 32, scroll_page: 32}",
                                                        "migration: {batch_size: 32, scroll_page: 32, partitions: 3}")
    (tmp_path / "spec.yaml").write_text(spec)
    application = Application(tmp_path / "store")
    killed = qmspec(*APPLY, "--workers", "2", cwd=tmp_path, env={"QMSPEC_FAULT": "checkpoint:4"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    application.write()
    old = points(tmp_path / "store")
    resumed = qmspec(*APPLY, "--workers", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "partition(s) on" in resumed.stderr
    check_end_state(tmp_path / "store", old, application)
