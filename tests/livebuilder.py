"""Build a real embedded Qdrant store from a scenario's `live.yaml`, so scenario tests plan against state that
Qdrant itself reports, not against hand-written LiveState values.

live.yaml:
    server_version: 1.17.0        # optional: what the planner is told (embedded mode reports the client's version)
    collections:
      docs_v1:
        vectors: {dense: {size: 4, distance: Cosine}}   # the key "" makes a single unnamed vector
        sparse_vectors: {bm25: {modifier: idf}}
        points: 20
        models: {dense: sentence-transformers/all-MiniLM-L6-v2}   # stamped as qmspec metadata
        metadata: {...}                                   # raw metadata (`models` adds qmspec's record to it)
        settings: {payload_indexes: {...}, shard_number: 3, strict_mode: {...}}   # only with `server: true`
    aliases: {docs: docs_v1}
    server: true    # the state was recorded from a Qdrant server: the planner is told so, and each collection's
                    # `settings` (what the embedded store cannot hold: indexes, shards, strict mode) are laid over it
    observed_at: 2026-12-01T12:00:00Z   # when the state was read (default that instant): observation windows end there
    quota: {enabled: true, max_disk_percent: 90, disk_percent: 80, disk_bytes: 1000000}   # a 1.19 node's quota
"""
from __future__ import annotations

import calendar
import dataclasses
import random
import time

import yaml
from qdrant_client import QdrantClient, models

from qmspec.project import Target
from qmspec.live import observe
from qmspec.planning.livestate import METADATA_KEY, LiveState, Quota
from qmspec.planning.settings import CollectionSettings, index_schema


def build_store(path: str, description: dict) -> None:
    client = QdrantClient(path=path)
    try:
        for name, collection in (description.get("collections") or {}).items():
            create_collection(client, name, collection)
        actions = [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=alias))
                   for alias, target in (description.get("aliases") or {}).items()]
        if actions:
            client.update_collection_aliases(change_aliases_operations=actions)
    finally:
        client.close()


def create_collection(client: QdrantClient, name: str, collection: dict) -> None:
    vectors = {vector_name: _vector_params(params) for vector_name, params in (collection.get("vectors") or {}).items()}
    vectors_config = vectors.pop("") if "" in vectors else vectors
    sparse = {vector_name: models.SparseVectorParams(modifier=models.Modifier.IDF if params.get("modifier") == "idf" else None)
              for vector_name, params in (collection.get("sparse_vectors") or {}).items()}
    metadata = collection.get("metadata")
    if "models" in collection:  # laid over the raw metadata's own qmspec record (query, backfill, released, ...)
        metadata = dict(metadata or {})
        metadata[METADATA_KEY] = (metadata.get(METADATA_KEY) or {}) | {
            "vectors": {vector: _identity(model) for vector, model in collection["models"].items()}}
    client.create_collection(name, vectors_config=vectors_config, sparse_vectors_config=sparse or None, metadata=metadata,
                             on_disk_payload=collection.get("on_disk_payload"))
    _fill(client, name, collection, vectors_config, sparse)


def _identity(model) -> dict:
    return {"model": model} if isinstance(model, str) else dict(model)


def _vector_params(params: dict) -> models.VectorParams:
    multivector = params.get("multivector")
    return models.VectorParams(
        size=params["size"],
        distance=models.Distance(params["distance"]),
        on_disk=params.get("on_disk"),
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator(multivector)) if multivector else None,
    )


def _fill(client: QdrantClient, name: str, collection: dict, vectors_config, sparse: dict) -> None:
    count = collection.get("points", 0)
    if not count:
        return
    rng = random.Random(name)
    named = vectors_config if isinstance(vectors_config, dict) else {"": vectors_config}

    def dense(params: models.VectorParams):
        one = [rng.uniform(-1, 1) for _ in range(params.size)]
        return [one, [rng.uniform(-1, 1) for _ in range(params.size)]] if params.multivector_config else one

    points = []
    for point_id in range(1, count + 1):
        vector = {vector_name: dense(params) for vector_name, params in named.items()}
        vector |= {vector_name: models.SparseVector(indices=[point_id % 7, 10 + point_id % 5], values=[1.0, 0.5]) for vector_name in sparse}
        points.append(models.PointStruct(id=point_id, vector=vector.get("") if "" in vector else vector,
                                         payload={"text": f"document {point_id}", "n": point_id}))
    client.upsert(name, points=points)


OBSERVED_AT = "2026-12-01T12:00:00Z"


def observe_scenario(store_path: str, description: dict, files: tuple[str, ...] = ()) -> LiveState:
    live = observe(Target(path=store_path), files=files)
    observed = str(description.get("observed_at", OBSERVED_AT)).replace(" ", "T").replace("+00:00", "Z")
    live = dataclasses.replace(live, observed_at=float(calendar.timegm(time.strptime(observed, "%Y-%m-%dT%H:%M:%SZ"))))
    if "quota" in description:
        quota = dict(description["quota"])
        live = dataclasses.replace(live, quota=Quota(**quota | {"exceeded": tuple(quota.get("exceeded", ()))}))
    if "server_version" in description:
        live = dataclasses.replace(live, server_version=str(description["server_version"]))
    if description.get("server"):
        collections = {name: dataclasses.replace(collection, settings=recorded_settings(description["collections"][name].get("settings") or {}))
                       for name, collection in live.collections.items()}
        live = dataclasses.replace(live, embedded=False, collections=collections)
    return live


def recorded_settings(values: dict) -> CollectionSettings:
    indexes = {field: index_schema(schema) for field, schema in (values.get("payload_indexes") or {}).items()}
    return CollectionSettings(**values | {"payload_indexes": indexes, "shard_keys": tuple(values.get("shard_keys", ()))})


def load_description(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}
