"""The example CI workflow and qmspec's GitHub Action, run as a user's repository runs them: the action's script
(scripts/action.sh, with the environment action.yml gives it) in a git repository of specs, against the embedded
store and against a loopback endpoint standing for the server QDRANT_URL names; the workflow's own shell steps with
a stand-in for the `gh` CLI."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qdrant_client import QdrantClient

from .fake_qdrant import RecordingQdrant
from .migration import hash_quickstart

pytestmark = pytest.mark.e2e  # real subprocesses
ROOT = Path(__file__).parent.parent
WORKFLOW = yaml.safe_load((ROOT / "examples" / "ci" / "qmspec.yml").read_text(encoding="utf-8"))
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def uses(document: dict) -> list[str]:
    steps = [step for job in document.get("jobs", {}).values() for step in job["steps"]] if "jobs" in document else document["runs"]["steps"]
    return [step["uses"] for step in steps if "uses" in step]


def test_third_party_actions_are_pinned_by_commit_and_expressions_reach_shells_through_env():
    for reference in uses(WORKFLOW) + uses(ACTION):
        assert reference.startswith("qmspec/qmspec@") or PINNED.match(reference), reference
    steps = [step for job in WORKFLOW["jobs"].values() for step in job["steps"]] + ACTION["runs"]["steps"]
    for step in steps:
        assert "${{" not in step.get("run", ""), step.get("name")  # never pasted into a script
    assert ACTION["runs"]["using"] == "composite" and set(ACTION["outputs"]) == {"exit-code", "markdown", "specs"}


def test_the_workflow_plans_with_a_read_only_key_and_applies_the_reviewed_plans():
    plan, apply = WORKFLOW["jobs"]["plan"], WORKFLOW["jobs"]["apply"]
    triggers = WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["pull_request"]["paths"] == triggers["push"]["paths"] == ["specs/**", "qmspec.yaml"]  # specs, their data, judgments
    assert "READ_ONLY" in plan["env"]["QDRANT_API_KEY"] and "QDRANT_URL" in WORKFLOW["env"]
    assert all(job["timeout-minutes"] for job in (plan, apply)) and apply["concurrency"]["cancel-in-progress"] is False
    applied = next(step for step in apply["steps"] if step.get("id") == "apply")
    assert applied["with"]["command"] == "apply" and "reviewed.outputs.plans" in applied["with"]["specs"]
    assert any(step.get("uses", "").startswith("actions/upload-artifact@") for step in plan["steps"])


def action_environment(command: str, cwd: Path, **values) -> dict:
    """The environment action.yml's run step gives scripts/action.sh, qmspec on PATH and the output files a runner has."""
    run_step = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "run")
    assert set(run_step["env"]) == {"QMSPEC_COMMAND", "QMSPEC_SPECS", "QMSPEC_BASE", "QMSPEC_URL", "QMSPEC_API_KEY_ENV", "QMSPEC_STATE",
                                    "QMSPEC_PLANS"}
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "GITHUB_OUTPUT": str(cwd / "github-output"), "QMSPEC_COMMAND": command, "QMSPEC_STATE": "file"}
    (cwd / "github-output").write_text("")
    return environ | {key: str(value) for key, value in values.items()}


def run_action(command: str, cwd: Path, **values) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "action.sh")], cwd=cwd, env=action_environment(command, cwd, **values),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result, outputs(cwd / "github-output")


def outputs(path: Path) -> dict:
    """$GITHUB_OUTPUT as the runner reads it: name=value, or name<<DELIMITER ... DELIMITER."""
    found, lines = {}, path.read_text().splitlines()
    while lines:
        line = lines.pop(0)
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value = []
            while lines[0] != delimiter:
                value.append(lines.pop(0))
            lines.pop(0)
            found[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
    return found


@pytest.fixture()
def repository(tmp_path) -> Path:
    """A user's repository: specs/ with data, under git, as the workflow checks it out."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    (tmp_path / "specs" / "docs.yaml").write_text(hash_quickstart())
    for name in ("quickstart.yaml", "migrate-model.yaml", "dense-to-hybrid.yaml"):
        (tmp_path / "specs" / name).unlink()
    (tmp_path / "specs" / "other.yaml").write_text(hash_quickstart().replace("alias: docs", "alias: other").replace("docs_v1", "other_v1")
                                                   .replace("data/docs.jsonl", "data/other.jsonl"))
    shutil.copy(tmp_path / "specs" / "data" / "docs.jsonl", tmp_path / "specs" / "data" / "other.jsonl")
    git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "specs")
    return tmp_path


def commit(repository: Path) -> str:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "change"], cwd=repository, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=repository, capture_output=True, text=True, check=True).stdout.strip()


def test_changed_chooses_the_specs_whose_file_data_or_project_changed(repository):
    with open(repository / "specs" / "data" / "other.jsonl", "a") as data:
        data.write('{"id": 999, "text": "a new article"}\n')
    base = commit(repository)
    _, said = run_action("changed", repository, QMSPEC_BASE=base)
    assert said["specs"] == "specs/other.yaml"  # its data changed; docs.yaml reads other files
    (repository / "qmspec.yaml").write_text("environments: {}\n")
    subprocess.run(["git", "add", "qmspec.yaml"], cwd=repository, check=True)
    base = commit(repository)
    _, said = run_action("changed", repository, QMSPEC_BASE=base)
    assert said["specs"].split() == ["specs/docs.yaml", "specs/other.yaml"]


def test_plan_then_apply_exactly_the_reviewed_plans(repository):
    (repository / "specs" / "refused.yaml").write_text(hash_quickstart().replace("  model: hash\n", "  model: another\n"))
    (repository / "specs" / "broken.yaml").write_text("version: 1\nalias: docs\n")
    run, said = run_action("plan", repository, QMSPEC_SPECS="specs/docs.yaml specs/refused.yaml specs/broken.yaml")
    assert said["exit-code"] == "1" and "::error file=specs/broken.yaml,line=1," in run.stdout  # annotations on the spec's lines
    assert "`BC201`" in said["markdown"] and "missing required key 'collection'" in said["markdown"]
    run, said = run_action("plan", repository, QMSPEC_SPECS="specs/docs.yaml")
    assert said["exit-code"] == "0" and "### qmspec plan: `docs` → `docs_v1` (changes)" in said["markdown"]
    assert "Against the embedded store" in said["markdown"]  # the comment says what it planned against
    saved = repository / "qmspec-plans" / "specs__docs.yaml.plan.json"
    assert json.loads(saved.read_text())["alias"] == "docs"

    run, said = run_action("apply", repository, QMSPEC_SPECS=str(saved.relative_to(repository)))
    assert said["exit-code"] == "0" and "Apply complete: alias docs serves docs_v1." in said["markdown"], run.stdout
    run, said = run_action("apply", repository, QMSPEC_SPECS=str(saved.relative_to(repository)))
    assert said["exit-code"] == "0" and "already applied" in said["markdown"]  # a re-run on merge is a no-op


def test_the_plans_of_one_pull_request_apply_one_after_the_other_and_a_stale_one_is_refused_and_said(repository):
    _, said = run_action("plan", repository, QMSPEC_SPECS="specs/docs.yaml specs/other.yaml")
    assert said["exit-code"] == "0"
    plans = "qmspec-plans/specs__docs.yaml.plan.json qmspec-plans/specs__other.yaml.plan.json"
    client = QdrantClient(path=str(repository / ".qmspec" / "qdrant"))  # since the review, someone made other_v1 by hand
    client.create_collection("other_v1", vectors_config={})
    client.close()
    _, said = run_action("apply", repository, QMSPEC_SPECS=plans)
    assert said["exit-code"] == "4" and "Apply complete: alias docs serves docs_v1." in said["markdown"]  # the first still applies
    assert "**Not applied: the reviewed plan is stale**" in said["markdown"] and "other_v1" in said["markdown"]


def test_in_ci_the_plan_reaches_the_server_qdrant_url_names_never_a_local_store(repository):
    server = RecordingQdrant(status=503)
    try:
        run, said = run_action("plan", repository, QMSPEC_SPECS="specs/docs.yaml", CI="true", QDRANT_URL=server.url,
                               QDRANT_API_KEY="ro-key-93af0c", QMSPEC_RETRY_ATTEMPTS="2")
    finally:
        server.close()
    assert server.requests and server.keys_received() == ["ro-key-93af0c"] * len(server.requests)
    assert said["exit-code"] == "1" and f"the server {server.url}" in said["markdown"] and "HTTP 503" in said["markdown"]
    assert "ro-key-93af0c" not in run.stdout + run.stderr + said["markdown"]
    assert not (repository / ".qmspec" / "qdrant").exists()


def test_the_merge_job_fetches_the_plans_of_the_pull_requests_last_successful_run(repository, tmp_path):
    """Its shell, with a stand-in `gh` answering as GitHub would."""
    reviewed = tmp_path / "artifact"
    (reviewed / "nested").mkdir(parents=True)
    (reviewed / "nested" / "specs__docs.yaml.plan.json").write_text("{}")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "gh").write_text(f"""#!/usr/bin/env bash
case "$1 $2" in
  "api repos/acme/specs/commits/abc123/pulls") echo 42 ;;
  "pr view") echo def456 ;;
  "run list") [[ "$*" == *"--commit def456"* && "$*" == *"--status success"* ]] && echo 7001 ;;
  "run download") [[ "$*" == *"7001"* ]] && cp -r {reviewed}/. "${{@: -1}}" ;;
esac
""")
    (fake / "gh").chmod(0o755)
    step = next(s for s in WORKFLOW["jobs"]["apply"]["steps"] if s.get("id") == "reviewed")
    environ = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(tmp_path / "out"),
               "REPO": "acme/specs", "SHA": "abc123", "WORKFLOW": "qmspec", "GH_TOKEN": "t"}
    (tmp_path / "out").write_text("")
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=repository, env=environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    said = outputs(tmp_path / "out")
    assert said["pr"] == "42" and said["plans"].strip() == "qmspec-plans/nested/specs__docs.yaml.plan.json"


def test_pre_commit_hook_validates_specs(tmp_path):
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    (tmp_path / "bad.yaml").write_text("version: 1\nalias: docs\n")
    entry = hook["entry"].split()
    result = subprocess.run([sys.executable, "-m", "qmspec", *entry[1:], "bad.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert entry[0] == "qmspec" and result.returncode == 1 and "bad.yaml:1" in result.stderr
