"""Run qmspec as a user does. `qmspec` starts a real subprocess (end-to-end tier: what a shell sees, kill -9);
`cli` runs the same command line in this process, through the same entry point and error handling, so the fast
tier pays qdrant_client's import and the models' loading once instead of once per command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).parent.parent


def qmspec(*args, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "qmspec", *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=timeout)


def cli(*args, cwd: Path, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """`qmspec ARGS` in this process, in `cwd`, with `env` added to the environment and `input` on standard input."""
    from qmspec.cli import run

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with CliRunner().isolation(input=input, env=env) as (stdout, stderr, _):
            code = run([str(arg) for arg in args])
            out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["qmspec", *args], code, out, err)
