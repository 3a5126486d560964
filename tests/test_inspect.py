"""`qmspec inspect` writes specs that validate and plan to no changes against the state they came from."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qmspec.planning.planner import plan_migration
from qmspec.planning.spec import load_spec

from .livebuilder import build_store, load_description, observe_scenario
from .run import cli

ROOT = Path(__file__).parent.parent
SCENARIOS = ROOT / "tests" / "scenarios"


@pytest.mark.parametrize("scenario", ["no_changes", "ds103_vector_deleted_in_place", "matryoshka_truncation"])
def test_inspected_spec_round_trips_to_no_changes(tmp_path, scenario):
    description = load_description(SCENARIOS / scenario / "live.yaml")
    build_store(str(tmp_path / "qdrant"), description)
    result = cli("inspect", "--path", "qdrant", "--out", "specs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spec = load_spec(tmp_path / "specs" / "docs.yaml")
    plan = plan_migration(spec, observe_scenario(str(tmp_path / "qdrant"), description))
    assert plan.steps == () and not plan.findings


@pytest.mark.e2e
def test_applied_collection_is_inspected_with_its_models(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    run = lambda *args: cli(*args, cwd=tmp_path)  # noqa: E731 - a real model embeds the quickstart
    assert run("apply", "specs/quickstart.yaml", "--auto-approve").returncode == 0
    inspected = run("inspect", "--alias", "docs")
    assert "name: sentence-transformers/all-MiniLM-L6-v2" in inspected.stdout
    (tmp_path / "inspected.yaml").write_text(inspected.stdout, encoding="utf-8")
    again = run("plan", "inspected.yaml", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout
    missing = run("inspect", "--alias", "nope")
    assert missing.returncode == 1 and "alias 'nope' does not exist" in missing.stderr
