"""Progress as a user sees it with a slow embedder: the bar (a real pseudo-terminal) or the plain lines (piped)
move within the first batch, before any page of points is written."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest

from . import migration
from .run import ROOT

pytestmark = pytest.mark.e2e  # real subprocesses, one of them on a pseudo-terminal
SLOW = migration.SPEC.replace("options: {size: 16}}", "options: {size: 16, delay: 0.5}, batch_size: 8}").replace(
    "migration: {batch_size: 64, parallel: 2, scroll_page: 25}", "migration: {scroll_page: 1000}")  # one page, five batches


def command(project) -> list[str]:
    return [sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve", "--no-preflight"]


def environment(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", **extra}


def test_piped_progress_moves_with_the_first_batch_in_plain_lines(tmp_path):
    project = migration.template(tmp_path, 40)
    (project / "spec.yaml").write_text(SLOW)
    done = subprocess.run(command(project), cwd=project, env=environment(QMSPEC_PROGRESS_EVERY_S="0.2"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    moving = [line for line in done.stderr.splitlines() if "copy docs_v1 -> docs_v2: 0/40 points" in line and "embedded)" in line]
    assert moving, done.stderr  # texts embedded while no point of the page is written yet
    assert "\x1b[" not in done.stderr  # no terminal: no escape sequences


def test_at_a_terminal_a_bar_moves_before_the_page_is_written(tmp_path):
    project = migration.template(tmp_path, 40)
    (project / "spec.yaml").write_text(SLOW)
    leader, follower = pty.openpty()
    process = subprocess.Popen(command(project), cwd=project, env=environment(TERM="xterm"), stdin=follower, stdout=follower,
                               stderr=follower, close_fds=True)
    os.close(follower)
    seen, started = b"", time.monotonic()
    while process.poll() is None or time.monotonic() - started < 1:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if time.monotonic() - started > 120:
            process.kill()
            break
    process.wait(timeout=30)
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    assert process.returncode == 0, text[-2000:]
    assert "8 embedded" in text and "0/40" in text, text[-2000:]  # the bar moved with the first batch of 8 texts
    assert "Apply complete: alias docs serves docs_v2." in text
