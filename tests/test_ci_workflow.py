"""The example CI workflow, run as shipped: the shell of its own steps, taken from the YAML, against an embedded store."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .migration import hash_quickstart

pytestmark = pytest.mark.e2e  # real subprocesses
ROOT = Path(__file__).parent.parent
WORKFLOW = yaml.safe_load((ROOT / "examples" / "ci" / "qmspec.yml").read_text(encoding="utf-8"))


def step(job: str, name: str) -> dict:
    return next(s for s in WORKFLOW["jobs"][job]["steps"] if s.get("name", "").startswith(name))


def run_step(job: str, name: str, *specs: str, cwd: Path) -> subprocess.CompletedProcess:
    """The step's script as GitHub runs it (bash -e -o pipefail), with the changed specs in SPECS as its `env:` sets them
    and qmspec on PATH."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "SPECS": " ".join(specs)}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(job, name)["run"]], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)


def test_the_workflow_installs_qmspec_as_a_user_can_and_passes_file_names_through_env():
    plan, apply = WORKFLOW["jobs"]["plan"], WORKFLOW["jobs"]["apply"]
    install = step("plan", "Install qmspec")["run"]
    assert install.index("download.pytorch.org/whl/cpu") < install.index('pip install "$QMSPEC"')
    assert "git+https://" in WORKFLOW["env"]["QMSPEC"] and "secrets.QDRANT_API_KEY" in WORKFLOW["env"]["QDRANT_API_KEY"]
    assert all(job["timeout-minutes"] for job in (plan, apply))
    assert all(s["with"].get("cache") == "pip" for job in (plan, apply) for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    for job in (plan, apply):
        for each in job["steps"]:
            assert "${{" not in each.get("run", ""), each.get("name")  # expressions reach the shell through env:, never inline
            assert "bash examples/" not in each.get("run", "")  # nothing the user's repository does not have
    assert '"$BEFORE" "$AFTER"' in step("apply", "Find the specs")["run"] and "github.event.before" in str(step("apply", "Find the specs")["env"])
    assert step("plan", "Post the plans")["uses"].startswith("marocchino/sticky-pull-request-comment")


def test_pull_request_plans_then_merge_applies(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    good = tmp_path / "specs" / "docs.yaml"
    good.write_text(hash_quickstart())
    refused = tmp_path / "specs" / "refused.yaml"
    refused.write_text(good.read_text().replace("query:\n  using: dense\n  model: hash", "query:\n  using: dense\n  model: another"))
    broken = tmp_path / "specs" / "broken.yaml"
    broken.write_text("version: 1\nalias: docs\n")
    plan = lambda *specs: run_step("plan", "Validate and plan", *specs, cwd=tmp_path)  # noqa: E731

    planned = plan("specs/docs.yaml")
    assert planned.returncode == 0, planned.stderr
    comment = (tmp_path / "plan-comment.md").read_text()
    assert "## `specs/docs.yaml`" in comment and "### qmspec plan: `docs` → `docs_v1` (changes)" in comment

    assert plan("specs/docs.yaml", "specs/refused.yaml").returncode == 3
    assert "`BC201`" in (tmp_path / "plan-comment.md").read_text()
    broken_run = plan("specs/refused.yaml", "specs/broken.yaml")
    assert broken_run.returncode == 1 and "::error file=specs/broken.yaml,line=1," in broken_run.stdout  # annotations
    assert "missing required key 'collection'" in (tmp_path / "plan-comment.md").read_text()

    applied = run_step("apply", "Apply them", "specs/docs.yaml", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: alias docs serves docs_v1." in applied.stdout
    assert run_step("apply", "Apply them", "specs/docs.yaml", cwd=tmp_path).returncode == 0  # re-run on merge: a no-op
    assert plan("specs/docs.yaml").returncode == 0
    assert "(no changes)" in (tmp_path / "plan-comment.md").read_text()


def test_pre_commit_hook_validates_specs(tmp_path):
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    (tmp_path / "bad.yaml").write_text("version: 1\nalias: docs\n")
    entry = hook["entry"].split()
    result = subprocess.run([sys.executable, "-m", "qmspec", *entry[1:], "bad.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert entry[0] == "qmspec" and result.returncode == 1 and "bad.yaml:1" in result.stderr
