"""schemas/plan.schema.json is what qmspec/planning/plan_schema.py makes from the plan's classes (conftest validates
every plan the suite writes against it), and a policy written against it reads a saved plan as conftest would."""
from __future__ import annotations

import json
from pathlib import Path

from qmspec.planning.plan_schema import plan_schema

from . import migration
from .run import cli

ROOT = Path(__file__).parent.parent


def test_the_committed_schema_is_the_one_the_plan_classes_make():
    committed = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    assert committed == plan_schema(), "regenerate it: python -m qmspec.planning.plan_schema > schemas/plan.schema.json"


def re_embedded_points(plan: dict) -> int:
    """The README's example policy, in Python: points a plan re-embeds, from its steps' fields."""
    return sum(step.get("points", 0) for step in plan["steps"] if step["kind"] in ("copy_points", "embed_vectors", "backfill_vector")
               and step.get("embed"))


def test_a_saved_plan_answers_the_questions_a_policy_asks(tmp_path):
    project = migration.template(tmp_path, 30)
    assert cli("plan", "spec.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    plan = json.loads((project / "plan.json").read_text())
    assert [step["kind"] for step in plan["steps"]] == migration.STEP_KINDS
    assert re_embedded_points(plan) == 30 and plan["against"]["kind"] == "embedded"
    assert [finding["code"] for finding in plan["findings"] if finding["severity"] == "error"] == []
