"""What earlier versions of qmspec wrote still works: saved plans load with their hashes intact and serialize back
byte for byte, and applies stopped mid-way under the 0.1.0 `.qmspec/` layout resume (tests/fixtures/README.md)."""
from __future__ import annotations

from pathlib import Path

import pytest

from qmspec.planning.plan import Plan

FIXTURES = Path(__file__).parent / "fixtures"
SAVED_PLANS = sorted((FIXTURES / "plans-0.1").glob("*.json"))


@pytest.mark.parametrize("path", SAVED_PLANS, ids=[path.stem for path in SAVED_PLANS])
def test_a_plan_saved_by_0_1_loads_with_its_hash_and_writes_back_the_same(path):
    text = path.read_text(encoding="utf-8")
    plan = Plan.from_json(text)  # refuses a plan whose content no longer matches its hash
    assert plan.to_json() == text
