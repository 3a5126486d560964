"""The server contract: every step kind against a real Qdrant, over REST and gRPC.

Run with `pytest -m server` and QMSPEC_TEST_URL (the GitHub workflow points it at a qdrant/qdrant service container
of the oldest supported and the latest version), or with Docker for testcontainers. Each test works under its own
name prefix; the embedder is the deterministic test plug-in, so these tests exercise Qdrant, not a model.
"""
from __future__ import annotations

import json
import random
import re

import pytest
import yaml
from qdrant_client import models

from qmspec.planning.capabilities import parse_version

from ..migration import PLUGIN
from .servers import unavailable
from ..run import ROOT, cli

pytestmark = pytest.mark.server
if unavailable():  # one line in the report, for the whole suite
    pytest.skip(unavailable(), allow_module_level=True)

POINTS = 300
SETTINGS = {
    "hnsw_config": models.HnswConfigDiff(m=24, ef_construct=120, payload_m=8),
    "optimizers_config": models.OptimizersConfigDiff(default_segment_number=2),
    "quantization_config": models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99)),
    "strict_mode_config": models.StrictModeConfig(enabled=True, unindexed_filtering_retrieve=False),
    "on_disk_payload": True,
}
INDEXES = {
    "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    "n": models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True),
    "text": models.TextIndexParams(type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True),
}


def model(name: str) -> dict:
    return {"name": name, "backend": PLUGIN, "options": {"size": 16}}


def stamp(name: str) -> dict:
    return {"qmspec": {"vectors": {"dense": {"model": name, "model_settings": model(name)}}}}


def points(count: int, start: int = 1) -> list[models.PointStruct]:
    rng = random.Random(start)
    return [models.PointStruct(id=i, vector={"dense": [rng.uniform(-1, 1) for _ in range(16)]},
                               payload={"text": f"passage {i} on topic {i % 11}", "n": i, "tenant": f"t{i % 3}"})
            for i in range(start, start + count)]


def source(client, name: str, alias: str, *, shard_number: int = 2, sharding: dict | None = None) -> None:
    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             shard_number=shard_number, metadata=stamp("hash-a"), **SETTINGS, **(sharding or {}))
    for field, schema in INDEXES.items():
        client.create_payload_index(name, field, field_schema=schema, wait=True)
    if not sharding:
        client.upsert(name, points=points(POINTS), wait=True)
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name=alias))])


def write_spec(folder, server, alias: str, collection: str, grpc: bool = False, **extra) -> str:
    spec = {"version": 1, "alias": alias, "collection": collection,
            "connection": {"url": server.url, "api_key_env": "QMSPEC_TEST_API_KEY", "prefer_grpc": grpc, "grpc_port": server.grpc_port},
            "vectors": {"dense": {"size": 16, "distance": "Cosine", "model": model("hash-b")}},
            "query": {"using": "dense", "model": "hash-b"}, "migration": {"batch_size": 64, "scroll_page": 100}} | extra
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return "spec.yaml"


def succeeded(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def payload_indexes(client, name: str) -> dict:
    return {field: info.data_type.value for field, info in client.get_collection(name).payload_schema.items()}


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_a_migration_keeps_every_setting_and_index_verifies_swaps_rolls_back_and_cleans_up(qdrant_server, names, tmp_path, grpc):
    client = qdrant_server.client()
    old, new, alias = f"{names}_v1", f"{names}_v2", f"{names}_docs"
    source(client, old, alias)
    spec = write_spec(tmp_path, qdrant_server, alias, new, grpc)

    plan = cli("plan", spec, "--format", "json", cwd=tmp_path)
    assert plan.returncode in (0, 2), plan.stderr
    steps = json.loads(plan.stdout)["steps"]
    assert [s["field"] for s in steps if s["kind"] == "set_payload_index"] == ["tenant", "n", "text"]  # tenant before the load
    assert {"hnsw", "quantization", "strict_mode", "shard_number", "on_disk_payload"} <= set(steps[0]["inherited"])

    applied = cli("apply", spec, "--auto-approve", cwd=tmp_path)
    succeeded(applied)
    assert re.search(r"settings\s+pass", applied.stdout)  # verify checked them, setting by setting, before the swap
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases}[alias] == new
    info, before = client.get_collection(new), client.get_collection(old)
    assert payload_indexes(client, new) == payload_indexes(client, old)
    assert info.config.hnsw_config.m == 24 and info.config.hnsw_config.payload_m == 8  # restored after the deferred load
    assert info.config.quantization_config == before.config.quantization_config
    assert info.config.strict_mode_config.unindexed_filtering_retrieve is False
    assert info.config.params.shard_number == 2 and info.config.params.on_disk_payload is True
    assert client.count(new, exact=True).count == POINTS

    assert cli("drift", spec, "--detailed-exitcode", cwd=tmp_path).returncode == 0
    succeeded(cli("rollback", spec, "--auto-approve", cwd=tmp_path))
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases}[alias] == old
    succeeded(cli("apply", spec, "--auto-approve", cwd=tmp_path))
    succeeded(cli("cleanup", spec, "--auto-approve", cwd=tmp_path))
    assert not client.collection_exists(old)
    client.close()


def test_settings_and_indexes_change_in_place_and_roll_back(qdrant_server, names, tmp_path):
    client = qdrant_server.client()
    name, alias = f"{names}_v1", f"{names}_docs"
    source(client, name, alias)
    spec = write_spec(tmp_path, qdrant_server, alias, name, vectors={"dense": {"size": 16, "distance": "Cosine", "model": model("hash-a")}},
                      query={"using": "dense", "model": "hash-a"}, hnsw={"m": 32}, optimizers={"indexing_threshold": 5000},
                      quantization={"binary": {"always_ram": True}}, strict_mode={"enabled": True, "max_query_limit": 500},
                      payload_indexes={"n": "none", "lang": "keyword"})
    succeeded(cli("apply", spec, "--auto-approve", cwd=tmp_path))
    info = client.get_collection(name)
    assert info.config.hnsw_config.m == 32 and info.config.optimizer_config.indexing_threshold == 5000
    assert isinstance(info.config.quantization_config, models.BinaryQuantization)
    assert info.config.strict_mode_config.max_query_limit == 500
    assert set(payload_indexes(client, name)) == {"tenant", "text", "lang"}
    assert cli("plan", spec, "--detailed-exitcode", cwd=tmp_path).returncode == 0  # nothing left to change

    succeeded(cli("rollback", spec, "--auto-approve", cwd=tmp_path))
    info = client.get_collection(name)
    assert info.config.hnsw_config.m == 24 and set(payload_indexes(client, name)) == {"tenant", "n", "text"}
    client.close()


def test_custom_sharding_copies_each_point_to_its_shard_key(qdrant_server, names, tmp_path):
    client = qdrant_server.client()
    old, new, alias = f"{names}_v1", f"{names}_v2", f"{names}_docs"
    source(client, old, alias, shard_number=1, sharding={"sharding_method": models.ShardingMethod.CUSTOM})
    for key, start in (("eu", 1), ("us", 1001)):
        client.create_shard_key(old, key)
        client.upsert(old, points=points(120 if key == "eu" else 80, start), shard_key_selector=key, wait=True)
    succeeded(cli("apply", write_spec(tmp_path, qdrant_server, alias, new), "--auto-approve", cwd=tmp_path))
    assert [k.key for k in client.list_shard_keys(new).shard_keys] == [k.key for k in client.list_shard_keys(old).shard_keys]
    for key, count in (("eu", 120), ("us", 80)):
        assert client.count(new, shard_key_selector=key, exact=True).count == count
    client.close()


def test_inspect_of_a_server_collection_plans_no_changes(qdrant_server, names, tmp_path):
    client = qdrant_server.client()
    source(client, f"{names}_v1", f"{names}_docs")
    inspected = cli("inspect", "--url", qdrant_server.url, "--alias", f"{names}_docs", cwd=tmp_path,
                    env={"QDRANT_API_KEY": qdrant_server.api_key or ""})
    succeeded(inspected)
    (tmp_path / "inspected.yaml").write_text(inspected.stdout, encoding="utf-8")
    written = yaml.safe_load(inspected.stdout)
    assert set(written["payload_indexes"]) == set(INDEXES) and written["strict_mode"]["enabled"] is True
    again = cli("plan", "inspected.yaml", "--url", qdrant_server.url, "--detailed-exitcode", cwd=tmp_path,
                env={"QDRANT_API_KEY": qdrant_server.api_key or ""})
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr
    client.close()


def test_state_kept_in_qdrant(qdrant_server, names, tmp_path):
    client = qdrant_server.client()
    source(client, f"{names}_v1", f"{names}_docs")
    spec = write_spec(tmp_path, qdrant_server, f"{names}_docs", f"{names}_v2")
    succeeded(cli("apply", spec, "--state", "qdrant", "--auto-approve", cwd=tmp_path))
    assert not (tmp_path / ".qmspec" / "state").exists()
    status = cli("status", spec, "--state", "qdrant", "--format", "json", cwd=tmp_path)
    assert json.loads(status.stdout)["last_apply"]["status"] == "succeeded"
    client.close()


def test_a_named_vector_is_added_in_place_where_the_server_can(qdrant_server, names, tmp_path):
    """The current guide's path: Qdrant 1.18+ adds the vector in place with no override (conditional update_vectors on
    a server, workers filling partitions themselves), verifies, switches the recorded query, and drops the old vector;
    older servers get RQ401 at plan time naming a new collection."""
    client = qdrant_server.client()
    name, alias = f"{names}_v1", f"{names}_docs"
    source(client, name, alias)
    check = {"search": {"queries": ["text 3"], "k": 5, "min_overlap": 0.0}}
    spec = write_spec(tmp_path, qdrant_server, alias, name, vectors={
        "dense": {"size": 16, "distance": "Cosine", "model": model("hash-a")},
        "extra": {"size": 16, "distance": "Cosine", "model": model("hash-b")}},
        query={"using": "extra", "model": "hash-b"}, verify=check, migration={"batch_size": 64, "partitions": 3})
    version = parse_version(client.info().version)
    result = cli("apply", spec, "--auto-approve", "--workers", "2", cwd=tmp_path)
    if version < (1, 18, 0):
        assert result.returncode == 3 and "RQ401" in result.stdout and f"collection: {names}_v2" in result.stdout
        client.close()
        return
    succeeded(result)
    having = models.Filter(must=[models.HasVectorCondition(has_vector="extra")])
    assert client.count(name, count_filter=having, exact=True).count == POINTS
    assert client.get_collection(name).config.metadata["qmspec"]["query"] == {"using": "extra"}
    drop = write_spec(tmp_path, qdrant_server, alias, name, vectors={"extra": {"size": 16, "distance": "Cosine", "model": model("hash-b")}},
                      query={"using": "extra", "model": "hash-b"}, verify=check, cleanup={"observe_for": "0s"})
    succeeded(cli("apply", drop, "--auto-approve", cwd=tmp_path))
    assert set(client.get_collection(name).config.params.vectors) == {"extra"}
    client.close()


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_workers_copy_partitions_themselves_against_a_server(qdrant_server, names, tmp_path, engine, monkeypatch):
    if engine == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import the test embedder
    client = qdrant_server.client()
    old, new, alias = f"{names}_v1", f"{names}_v2", f"{names}_docs"
    source(client, old, alias)
    spec = write_spec(tmp_path, qdrant_server, alias, new, migration={"batch_size": 64, "scroll_page": 50, "partitions": 6})
    state = ("--state", "qdrant") if engine == "ray" else ()  # Ray's workers record into the apply's records in Qdrant
    applied = cli("apply", spec, "--auto-approve", "--workers", "3", "--engine", engine, *state, cwd=tmp_path)
    succeeded(applied)
    assert "6 partition(s)" in applied.stderr
    assert client.count(new, exact=True).count == client.count(old, exact=True).count == POINTS
    client.close()
