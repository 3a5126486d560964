"""Scenario tests: tests/scenarios/<name>/{live.yaml, spec.yaml, expected.txt}.

Each scenario builds its live state in a real embedded Qdrant, plans the spec against what Qdrant reports,
and compares the text plan with the golden file. A reviewer reads expected.txt to see what a change did.
Regenerate goldens after an intended change with QMSPEC_UPDATE_GOLDEN=1 and read the diff.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from qmspec.planning.plan import Plan
from qmspec.planning.planner import plan_migration
from qmspec.reports.render import render_markdown, render_text
from qmspec.planning.rules import RULES
from qmspec.planning.spec import load_spec

from .livebuilder import build_store, load_description, observe_scenario

SCENARIOS = Path(__file__).parent / "scenarios"
NAMES = sorted(path.name for path in SCENARIOS.iterdir() if (path / "spec.yaml").is_file())


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """Plan every scenario once; the tests below look at the results from different sides."""
    results = {}
    cwd = os.getcwd()
    try:
        for name in NAMES:
            folder = SCENARIOS / name
            description = load_description(folder / "live.yaml")
            store = str(tmp_path_factory.mktemp(name) / "qdrant")
            build_store(store, description)
            os.chdir(folder)  # source file paths in plans are relative to the working directory
            spec = load_spec("spec.yaml")
            live = observe_scenario(store, description, spec.source.files)
            results[name] = (plan_migration(spec, live, spec_file="spec.yaml"), live)
            os.chdir(cwd)
    finally:
        os.chdir(cwd)
    return results


@pytest.mark.parametrize("name", NAMES)
def test_plan_matches_golden(planned, name):
    plan, _ = planned[name]
    golden = SCENARIOS / name / "expected.txt"
    text = render_text(plan)
    if os.environ.get("QMSPEC_UPDATE_GOLDEN") or not golden.exists():
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
def test_plan_round_trips_through_json(planned, name):
    plan, live = planned[name]
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.hash == plan.hash
    assert again.stale_reason(live) is None
    assert render_markdown(again) == render_markdown(plan)


def test_every_rule_code_fires_in_some_scenario(planned):
    fired = {finding.code for plan, _ in planned.values() for finding in plan.findings}
    assert set(RULES) - fired == set()


def test_every_step_kind_appears_in_some_scenario(planned):
    from qmspec.planning.plan import STEP_TYPES

    seen = {step.kind for plan, _ in planned.values() for step in plan.steps}
    assert set(STEP_TYPES) - seen == set()
