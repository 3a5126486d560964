"""Run qmspec as a user does: a real subprocess, with the repository importable (for the test embedder plug-in)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def qmspec(*args, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "qmspec", *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=timeout)
