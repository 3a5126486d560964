"""Every walkthrough in examples/ runs as its README says: each `qmspec ...` (or `python SCRIPT`) line of its bash
blocks is run in order in a copy of the example folder, and must exit as its `# expect[ exit N]: TEXT` comment says,
with TEXT in its output."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # real subprocesses and real models
ROOT = Path(__file__).parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir() and (p / "README.md").exists() and p.name[0].isdigit())
EXPECT = re.compile(r"^(?P<command>(qmspec|python) .+?)\s+# expect(?: exit (?P<code>\d+))?: (?P<text>.+)$")


def walkthrough(readme: Path) -> list[tuple[str, int, str]]:
    steps, in_bash = [], False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" and not in_bash
            continue
        match = EXPECT.match(line.strip()) if in_bash else None
        if in_bash and line.strip().startswith(("qmspec ", "python ")) and not match:
            raise AssertionError(f"{readme}: command without an `# expect:` comment: {line.strip()}")
        if match:
            steps.append((match["command"], int(match["code"] or 0), match["text"].strip()))
    return steps


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_walkthrough_does_what_its_readme_says(example, tmp_path):
    folder = tmp_path / example.name
    shutil.copytree(example, folder)
    steps = walkthrough(example / "README.md")
    assert steps, "a walkthrough with no commands"
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for command, code, text in steps:
        program = [sys.executable] if command.startswith("python ") else [sys.executable, "-m", "qmspec"]  # a user's own script
        result = subprocess.run([*program, *shlex.split(command)[1:]], cwd=folder, env=environ, capture_output=True, text=True, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode == code, f"{command}\n{output}"
        assert text in output, f"{command}: expected {text!r} in\n{output}"


def test_main_readme_links_every_walkthrough():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for example in EXAMPLES:
        assert f"examples/{example.name}/README.md" in readme
