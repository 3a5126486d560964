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


def test_a_vector_whose_model_nothing_recorded_fails_validation_naming_import(tmp_path):
    """No tool can tell from vectors alone which model made them: inspect leaves the name to a person, and the spec
    does not validate until it is given (then `qmspec import` checks it against the stored vectors)."""
    build_store(str(tmp_path / "qdrant"), load_description(SCENARIOS / "ds103_vector_deleted_in_place" / "live.yaml"))
    assert cli("inspect", "--path", "qdrant", "--out", "specs", cwd=tmp_path).returncode == 0
    checked = cli("validate", "specs/docs.yaml", cwd=tmp_path)
    assert checked.returncode == 1 and "vectors.legacy.model: no model named" in checked.stderr
    assert "then run `qmspec import SPEC`" in checked.stderr and "vectors.dense" not in checked.stderr  # MiniLM is recorded


@pytest.mark.parametrize("scenario", ["no_changes", "matryoshka_truncation"])
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


def test_inspect_out_writes_the_schema_its_modeline_names_and_schema_out_does_the_same(tmp_path):
    build_store(str(tmp_path / "qdrant"), load_description(SCENARIOS / "no_changes" / "live.yaml"))
    assert cli("inspect", "--path", "qdrant", "--out", "specs", cwd=tmp_path).returncode == 0
    first_line = (tmp_path / "specs" / "docs.yaml").read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=qmspec.schema.json"
    assert (tmp_path / "specs" / "qmspec.schema.json").read_text() == (ROOT / "schemas" / "qmspec.schema.json").read_text()
    assert cli("schema", "--out", "elsewhere", cwd=tmp_path).returncode == 0
    assert (tmp_path / "elsewhere" / "qmspec.schema.json").is_file()


def test_every_schema_property_is_described_and_closed_choices_are_enums():
    import json

    schema = json.loads((ROOT / "schemas" / "qmspec.schema.json").read_text())
    undescribed = []

    def walk(node, path):
        for name, sub in (node.get("properties") or {}).items():
            if not (sub.get("description") or sub.get("title")) and "$ref" not in sub:
                undescribed.append(".".join(path + (name,)))
            walk(sub, path + (name,))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], path)

    walk(schema, ())
    for name, definition in schema["$defs"].items():
        walk(definition, (f"$defs.{name}",))
    assert undescribed == []
