"""Every collection setting end to end: recorded server state -> inspect -> a spec that plans no changes; a migration
that keeps every index, shard key and setting and verifies them; honest notes where the embedded store ignores them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from qdrant_client import QdrantClient, models

from qmspec.applying.transfer import OnShardKey
from qmspec.applying.verify import check_settings
from qmspec.planning.plan import CreateCollection, CreateShardKeys, SetPayloadIndex, Verify
from qmspec.planning.planner import plan_migration
from qmspec.planning.spec import load_spec
from qmspec.reports.inspect import spec_from_live, to_yaml

from .livebuilder import build_store, load_description, observe_scenario
from .run import cli

ROOT = Path(__file__).parent.parent
RECORDED = ROOT / "tests" / "scenarios" / "server_settings_kept" / "live.yaml"


def recorded_server(tmp_path):
    description = load_description(RECORDED)
    build_store(str(tmp_path / "qdrant"), description)
    return observe_scenario(str(tmp_path / "qdrant"), description)


def test_inspect_of_a_server_collection_writes_every_setting_and_plans_no_changes(tmp_path):
    live = recorded_server(tmp_path)
    spec_file = tmp_path / "docs.yaml"
    spec_file.write_text(to_yaml(spec_from_live(live, "docs"), "qmspec.schema.json"), encoding="utf-8")
    written = yaml.safe_load(spec_file.read_text())
    assert written["payload_indexes"]["tenant_id"] == {"type": "keyword", "is_tenant": True}
    assert written["payload_indexes"]["body"] == {"type": "text", "tokenizer": "word", "lowercase": True}
    assert (written["shard_number"], written["sharding_method"], written["shard_keys"]) == (3, "custom", ["eu", "us"])
    assert written["strict_mode"] == {"enabled": True, "unindexed_filtering_retrieve": False}
    assert written["wal"]["wal_capacity_mb"] == 64 and written["replication_factor"] == 2

    plan = plan_migration(load_spec(spec_file), live)
    assert plan.steps == () and not plan.findings


def test_a_migration_keeps_every_index_shard_key_and_setting_and_verifies_them(tmp_path):
    live = recorded_server(tmp_path)
    spec = spec_from_live(live, "docs") | {"collection": "docs_v2"}
    spec["vectors"]["dense"] = {"size": 384, "distance": "Cosine", "model": {"name": "BAAI/bge-small-en-v1.5"}}
    (tmp_path / "docs.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    plan = plan_migration(load_spec(tmp_path / "docs.yaml"), live)
    old = live.collections["docs_v1"].settings

    create = plan.steps[0]
    assert isinstance(create, CreateCollection)
    for name in ("hnsw", "optimizers", "quantization", "strict_mode", "wal", "replication_factor", "shard_number", "sharding_method"):
        assert create.settings[name] == getattr(old, name), name
    indexes = {step.field: step.schema for step in plan.steps if isinstance(step, SetPayloadIndex)}
    assert indexes == old.payload_indexes
    kinds = [step.kind for step in plan.steps]
    assert kinds.index("create_shard_keys") < kinds.index("copy_points")
    tenant = next(i for i, step in enumerate(plan.steps) if isinstance(step, SetPayloadIndex) and step.field == "tenant_id")
    category = next(i for i, step in enumerate(plan.steps) if isinstance(step, SetPayloadIndex) and step.field == "category")
    assert tenant < kinds.index("copy_points") < category < kinds.index("restore_indexing")  # tenant first, the rest after the load
    assert next(s for s in plan.steps if isinstance(s, CreateShardKeys)).keys == ("eu", "us")
    assert next(s for s in plan.steps if s.kind == "copy_points").shard_keys == ("eu", "us")
    verify = next(step for step in plan.steps if isinstance(step, Verify))
    assert verify.settings["payload_indexes"] == old.payload_indexes and verify.settings["strict_mode"] == old.strict_mode
    assert not plan.refused


def test_verify_names_each_setting_the_target_lacks(tmp_path):
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    client.create_collection("docs_v2", vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)})
    step = Verify(None, (), "id", "docs_v2", 0, False, (), "off", 0, {}, {},
                  settings={"payload_indexes": {"category": {"type": "keyword"}}, "shard_keys": ["eu"], "hnsw": {"m": 16}})
    check = check_settings(client, step)
    assert not check.passed
    assert "payload index category: none (wanted {type: keyword})" in check.detail and "shard key eu: missing" in check.detail
    assert check_settings(client, Verify(None, (), "id", "docs_v2", 0, False, (), "off", 0, {}, {}, settings={"hnsw": {"m": 16}})).passed
    client.close()


def test_server_only_settings_on_the_embedded_store_are_not_applicable_not_done_nor_drift(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "quickstart.yaml"
    assert cli("apply", spec, "--auto-approve", "--no-preflight", cwd=tmp_path).returncode == 0
    spec.write_text(spec.read_text() + "quantization: {scalar: {type: int8}}\npayload_indexes: {lang: keyword}\nhnsw: {m: 32}\n")
    planned = cli("plan", spec, "--detailed-exitcode", "--no-preflight", cwd=tmp_path)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes" in planned.stdout
    assert "settings hnsw, payload_indexes, quantization: not applicable on the embedded store" in planned.stdout
    drifted = cli("drift", spec, "--detailed-exitcode", "--format", "json", cwd=tmp_path)
    assert drifted.returncode == 0 and json.loads(drifted.stdout)["drift"] == []
    assert "quantization: not applicable on the embedded store" in json.loads(drifted.stdout)["not_applicable"]


def test_an_invalid_payload_index_is_refused_with_its_line(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "quickstart.yaml"
    spec.write_text(spec.read_text() + "payload_indexes:\n  lang: {type: keyword, range: true}\n")
    result = cli("validate", spec, cwd=tmp_path)
    line = len(spec.read_text().splitlines())
    assert result.returncode == 1 and f"quickstart.yaml:{line}" in result.stdout + result.stderr


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, kwargs.get("shard_key_selector")))


def test_a_shard_keyed_client_addresses_every_point_read_and_write_to_its_key():
    client = Recorder()
    keyed = OnShardKey(client, "eu")
    for name in ("scroll", "count", "upsert", "update_vectors", "delete", "retrieve"):
        getattr(keyed, name)("docs")
    keyed.get_collection("docs")
    assert client.calls[:-1] == [(name, "eu") for name in ("scroll", "count", "upsert", "update_vectors", "delete", "retrieve")]
    assert client.calls[-1] == ("get_collection", None)
