"""What earlier versions of qmspec wrote still works: saved plans load with their hashes intact and serialize back
byte for byte, and applies stopped mid-way under the 0.1.0 `.qmspec/` layout resume (tests/fixtures/README.md)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from qmspec.planning.plan import Plan

from . import migration
from .run import cli

FIXTURES = Path(__file__).parent / "fixtures"
SAVED_PLANS = sorted((FIXTURES / "plans-0.1").glob("*.json"))


@pytest.mark.parametrize("path", SAVED_PLANS, ids=[path.stem for path in SAVED_PLANS])
def test_a_plan_saved_by_0_1_loads_with_its_hash_and_writes_back_the_same(path):
    text = path.read_text(encoding="utf-8")
    plan = Plan.from_json(text)  # refuses a plan whose content no longer matches its hash
    assert plan.to_json() == text


LAYOUTS = ["copy-stopped", "adapter-stopped"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_apply_stopped_under_the_0_1_layout_resumes_to_what_an_uninterrupted_apply_makes(layout, tmp_path):
    """The journal in `.qmspec/state/store/`, the baseline in `.qmspec/baselines/`, an adapter's matrix in
    `.qmspec/adapters/`: the resumed apply reads them where 0.1.0 left them."""
    stopped = tmp_path / "stopped"
    shutil.copytree(FIXTURES / "legacy-0.1" / layout, stopped)
    resumed = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=stopped)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming plan" in resumed.stdout and "read the baseline an earlier qmspec kept" in resumed.stderr

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    migration.build_source(fresh / "store", 120)
    shutil.copy(stopped / "spec.yaml", fresh / "spec.yaml")
    assert cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=fresh).returncode == 0
    assert migration.snapshot(stopped / "store") == migration.snapshot(fresh / "store")


def test_the_cutover_of_a_0_1_apply_keeps_the_application_writes_its_baseline_tells_apart(tmp_path):
    """The 0.1.0 baseline is what tells a source edit from the application's own write to the new collection."""
    stopped = tmp_path / "stopped"
    shutil.copytree(FIXTURES / "legacy-0.1" / "copy-stopped", stopped)
    client = QdrantClient(path=str(stopped / "store"))
    client.set_payload("docs_v1", payload={"text": "edited in the old collection"}, points=[5])
    client.set_payload("docs_v2", payload={"text": "written by the application to the new one"}, points=[8])
    client.close()
    assert cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=stopped).returncode == 0
    points = migration.snapshot(stopped / "store")["collections"]["docs_v2"]
    assert points[5][0]["text"] == "edited in the old collection"
    assert points[8][0]["text"] == "written by the application to the new one"
