"""Hooks around the apply (spec `hooks:`): the team's own commands, with the apply's facts, journaled, stopped at
their timeout, handed no key the spec does not name."""
from __future__ import annotations

from . import migration
from .run import cli

APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")
HOOKS = """\
hooks:
  pre_apply: echo ran >> pre_apply.count
  pre_swap: {run: "env | grep -E '^(QMSPEC_|QDRANT_API_KEY|DEPLOY_TOKEN)' | sort > facts.txt; echo token=$DEPLOY_TOKEN; test -f deployed", env: [DEPLOY_TOKEN]}
  post_swap: echo swapped > post_swap.txt
  on_failure: echo "$QMSPEC_STEP" > failed.txt
"""


def alias_target(project) -> str:
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(project / "store"))
    try:
        return {alias.alias_name: alias.collection_name for alias in client.get_aliases().aliases}["docs"]
    finally:
        client.close()


def test_a_failing_pre_swap_stops_before_the_swap_resumably_and_a_passed_hook_is_not_run_again(tmp_path, monkeypatch):
    project = migration.template(tmp_path, 30)
    (project / "spec.yaml").write_text(migration.SPEC + HOOKS)
    monkeypatch.setenv("QDRANT_API_KEY", "qk-not-for-hooks-1234")
    monkeypatch.setenv("DEPLOY_TOKEN", "dt-handed-on-purpose-5678")
    planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert "Hooks (the team's own commands, run around the steps):" in planned.stdout
    assert "pre_swap: env | grep" in planned.stdout and "(timeout 5m00s; also gets DEPLOY_TOKEN)" in planned.stdout

    stopped = cli(*APPLY, cwd=project)
    assert stopped.returncode == 1 and "hook pre_swap" in stopped.stderr and "exited 1, so the apply stopped before swap alias docs" in stopped.stderr
    assert alias_target(project) == "docs_v1" and (project / "failed.txt").read_text().strip() == "swap alias docs: docs_v1 -> docs_v2 (atomic)"
    facts = dict(line.split("=", 1) for line in (project / "facts.txt").read_text().splitlines())
    assert facts["QMSPEC_ALIAS"] == "docs" and facts["QMSPEC_COLLECTION"] == "docs_v2" and facts["QMSPEC_PREVIOUS"] == "docs_v1"
    assert facts["QMSPEC_HOOK"] == "pre_swap" and len(facts["QMSPEC_PLAN"]) == 16 and facts["DEPLOY_TOKEN"] == "dt-handed-on-purpose-5678"
    assert "QDRANT_API_KEY" not in facts  # not named by the spec: not handed on
    assert "token=***" in stopped.stderr and "dt-handed-on-purpose-5678" not in stopped.stdout + stopped.stderr

    (project / "deployed").write_text("")  # the application's deploy went through: resume
    resumed = cli(*APPLY, cwd=project)
    assert resumed.returncode == 0, resumed.stderr
    assert alias_target(project) == "docs_v2" and (project / "post_swap.txt").read_text().strip() == "swapped"
    assert (project / "pre_apply.count").read_text().count("ran") == 1  # passed before the stop: journaled, not run again


def test_a_hook_that_hangs_is_stopped_at_its_timeout(tmp_path):
    project = migration.template(tmp_path, 30)
    (project / "spec.yaml").write_text(migration.SPEC + "hooks:\n  pre_apply: {run: 'sleep 60; touch late', timeout: 1s}\n")
    stopped = cli(*APPLY, cwd=project)
    assert stopped.returncode == 1 and "hook pre_apply (sleep 60; touch late) timed out after 1s" in stopped.stderr
    assert alias_target(project) == "docs_v1" and not (project / "late").exists()
