"""The CI workflow's commands, run locally: the scripts the workflow calls, against an embedded store."""
from __future__ import annotations

import pytest

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

pytestmark = pytest.mark.e2e  # real subprocesses and real models
ROOT = Path(__file__).parent.parent
CI = ROOT / "examples" / "ci"
HASH_MODEL = "      name: hash\n      backend: tests.plugins.hash_embedder:HashEmbedder\n      options: {size: 384}\n"


def run(script: str, *specs: str, cwd: Path) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(CI / script), *specs], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_workflow_runs_the_scripts_and_posts_the_plan():
    workflow = yaml.safe_load((CI / "qmspec.yml").read_text(encoding="utf-8"))
    commands = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any("plan-changed-specs.sh" in c for c in commands) and any("apply-specs.sh" in c for c in commands)
    assert any("gh pr comment" in c and "plan-comment.md" in c for c in commands)
    assert "secrets.QDRANT_API_KEY" in workflow["env"]["QDRANT_API_KEY"]


def test_pull_request_plans_then_merge_applies(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    good = tmp_path / "specs" / "docs.yaml"
    good.write_text((ROOT / "specs" / "quickstart.yaml").read_text().replace(
        "      name: sentence-transformers/all-MiniLM-L6-v2\n", HASH_MODEL).replace("  model: sentence-transformers/all-MiniLM-L6-v2", "  model: hash"))
    refused = tmp_path / "specs" / "refused.yaml"
    refused.write_text(good.read_text().replace("query:\n  using: dense\n  model: hash", "query:\n  using: dense\n  model: another"))
    broken = tmp_path / "specs" / "broken.yaml"
    broken.write_text("version: 1\nalias: docs\n")

    planned = run("plan-changed-specs.sh", "specs/docs.yaml", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    comment = (tmp_path / "plan-comment.md").read_text()
    assert "## `specs/docs.yaml`" in comment and "### qmspec plan: `docs` → `docs_v1` (changes)" in comment

    assert run("plan-changed-specs.sh", "specs/docs.yaml", "specs/refused.yaml", cwd=tmp_path).returncode == 3
    assert "`BC201`" in (tmp_path / "plan-comment.md").read_text()
    broken_run = run("plan-changed-specs.sh", "specs/refused.yaml", "specs/broken.yaml", cwd=tmp_path)
    assert broken_run.returncode == 1 and "::error file=specs/broken.yaml,line=1," in broken_run.stdout  # annotations
    assert "missing required key 'collection'" in (tmp_path / "plan-comment.md").read_text()

    applied = run("apply-specs.sh", "specs/docs.yaml", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: alias docs serves docs_v1." in applied.stdout
    assert run("apply-specs.sh", "specs/docs.yaml", cwd=tmp_path).returncode == 0  # re-run on merge: a no-op
    assert run("plan-changed-specs.sh", "specs/docs.yaml", cwd=tmp_path).returncode == 0
    assert "(no changes)" in (tmp_path / "plan-comment.md").read_text()


def test_pre_commit_hook_validates_specs(tmp_path):
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    (tmp_path / "bad.yaml").write_text("version: 1\nalias: docs\n")
    entry = hook["entry"].split()
    result = subprocess.run([sys.executable, "-m", "qmspec", *entry[1:], "bad.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert entry[0] == "qmspec" and result.returncode == 1 and "bad.yaml:1" in result.stderr
