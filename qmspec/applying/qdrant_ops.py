"""Plan values -> qdrant_client calls: vector and collection parameters, in-place updates, alias operations, and
waiting for a collection to finish indexing. The only place that knows qdrant_client's model classes."""
from __future__ import annotations

import time

from qdrant_client import models

from ..errors import QmspecError
from ..live import payload_index
from ..planning.settings import PLAIN, subset_differs

READY_TIMEOUT_S = 600


def vector_params(config: dict) -> models.VectorParams:
    return models.VectorParams(
        size=config["size"],
        distance=models.Distance(config["distance"]),
        on_disk=config.get("on_disk") or None,
        datatype=models.Datatype(config["datatype"]) if config.get("datatype", "float32") != "float32" else None,
        multivector_config=multivector_config(config),
        hnsw_config=models.HnswConfigDiff(**config["hnsw"]) if config.get("hnsw") else None,
        quantization_config=quantization_config(config.get("quantization")),
    )


def multivector_config(config: dict) -> models.MultiVectorConfig | None:
    if not config.get("multivector"):
        return None
    return models.MultiVectorConfig(comparator=models.MultiVectorComparator(config["multivector"]))


def sparse_params(config: dict) -> models.SparseVectorParams:
    index = (config.get("index") or {}) | ({"on_disk": True} if config.get("on_disk") else {})
    return models.SparseVectorParams(
        modifier=models.Modifier.IDF if config.get("modifier") == "idf" else None,
        index=models.SparseIndexParams(**index) if index else None,
    )


INDEX_PARAMS = {
    "keyword": models.KeywordIndexParams, "integer": models.IntegerIndexParams, "float": models.FloatIndexParams,
    "bool": models.BoolIndexParams, "geo": models.GeoIndexParams, "datetime": models.DatetimeIndexParams,
    "uuid": models.UuidIndexParams, "text": models.TextIndexParams,
}


def payload_index_params(schema: dict):
    """{"type": "keyword", "is_tenant": true} -> KeywordIndexParams; a bare type stays a PayloadSchemaType."""
    if set(schema) == {"type"}:
        return models.PayloadSchemaType(schema["type"])
    return INDEX_PARAMS[schema["type"]](**schema)


def quantization_config(value: dict | None, for_update: bool = False):
    if value is None:
        return None
    if value == {}:
        return models.Disabled.DISABLED if for_update else None
    method, options = next(iter(value.items()))
    if method == "scalar":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, **{k: v for k, v in options.items() if k != "type"}))
    if method == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(**options))
    return models.ProductQuantization(product=models.ProductQuantizationConfig(
        compression=models.CompressionRatio(options["compression"]), always_ram=options.get("always_ram")))


def create_collection(client, name: str, vectors: dict, sparse_vectors: dict, settings: dict, deferred_indexing: dict,
                      metadata: dict) -> None:
    """Create with the deferred indexing settings laid over the spec's own, so the bulk load builds no index."""
    hnsw = dict(settings.get("hnsw") or {}) | deferred_indexing.get("hnsw", {})
    optimizers = dict(settings.get("optimizers") or {}) | deferred_indexing.get("optimizers", {})
    client.create_collection(
        name,
        vectors_config={vector: vector_params(config) for vector, config in vectors.items()},
        sparse_vectors_config={vector: sparse_params(config) for vector, config in sparse_vectors.items()} or None,
        hnsw_config=models.HnswConfigDiff(**hnsw) if hnsw else None,
        optimizers_config=models.OptimizersConfigDiff(**optimizers) if optimizers else None,
        quantization_config=quantization_config(settings.get("quantization")),
        strict_mode_config=models.StrictModeConfig(**settings["strict_mode"]) if settings.get("strict_mode") else None,
        wal_config=models.WalConfigDiff(**settings["wal"]) if settings.get("wal") else None,
        shard_number=settings.get("shard_number"),
        sharding_method=models.ShardingMethod(settings["sharding_method"]) if settings.get("sharding_method") else None,
        **{key: settings.get(key) for key in PLAIN},
        metadata=metadata,
    )


def set_payload_index(client, collection: str, field: str, schema: dict | None) -> bool:
    """Make `field`'s index `schema` (None: no index). Returns whether anything changed; an index of another kind is
    dropped first, since Qdrant keeps one index per field."""
    current = client.get_collection(collection).payload_schema.get(field)
    if current is not None:
        if schema is not None and not subset_differs(schema, payload_index(current)):
            return False
        client.delete_payload_index(collection, field, wait=True)
    if schema is not None:
        client.create_payload_index(collection, field, field_schema=payload_index_params(schema), wait=True)
    return current is not None or schema is not None


def create_shard_keys(client, collection: str, keys) -> list:
    """Create the keys the collection lacks; returns those created."""
    existing = {getattr(key, "key", key) for key in (client.list_shard_keys(collection).shard_keys or [])}
    missing = [key for key in keys if key not in existing]
    for key in missing:
        client.create_shard_key(collection, key)
    return missing


def vector_names(client, collection: str) -> set[str]:
    """Every vector name of a collection, dense and sparse; "" for a single unnamed vector."""
    params = client.get_collection(collection).config.params
    dense = set(params.vectors or {}) if isinstance(params.vectors, dict) else {""}
    return dense | set(params.sparse_vectors or {})


def distances(client, collection: str) -> dict:
    vectors = client.get_collection(collection).config.params.vectors or {}
    return {name: params.distance.value for name, params in vectors.items()} if isinstance(vectors, dict) else {}


def update_collection(client, collection: str, changes: dict) -> bool:
    """Send one update_collection call. Returns Qdrant's answer: embedded mode answers False for the settings
    it ignores (HNSW, optimizers, quantization), which the journal records as not applied."""
    params = {key: changes[key] for key in PLAIN if key in changes}
    vectors = {name: models.VectorParamsDiff(on_disk=diff.get("on_disk"),
                                             hnsw_config=models.HnswConfigDiff(**diff["hnsw"]) if diff.get("hnsw") else None,
                                             quantization_config=quantization_config(diff.get("quantization"), for_update=True))
               for name, diff in (changes.get("vectors") or {}).items()}
    sparse = {name: models.SparseVectorParams(
        modifier=(models.Modifier.IDF if diff["modifier"] == "idf" else models.Modifier.NONE) if "modifier" in diff else None,
        index=models.SparseIndexParams(**_sparse_index(diff)) if _sparse_index(diff) else None)
        for name, diff in (changes.get("sparse_vectors") or {}).items()}
    return bool(client.update_collection(
        collection,
        hnsw_config=models.HnswConfigDiff(**changes["hnsw"]) if changes.get("hnsw") else None,
        optimizers_config=models.OptimizersConfigDiff(**changes["optimizers"]) if changes.get("optimizers") else None,
        quantization_config=quantization_config(changes.get("quantization"), for_update=True),
        collection_params=models.CollectionParamsDiff(**params) if params else None,
        vectors_config=vectors or None,
        sparse_vectors_config=sparse or None,
        strict_mode_config=models.StrictModeConfig(**changes["strict_mode"]) if changes.get("strict_mode") else None,
        metadata=changes.get("metadata"),
    ))


def _sparse_index(diff: dict) -> dict:
    return (diff.get("index") or {}) | ({"on_disk": diff["on_disk"]} if "on_disk" in diff else {})


def create_vector(client, collection: str, vector: str, sparse: bool, config: dict) -> None:
    """create_vector_name takes only what defines the vector space (size, distance, multivector, datatype); where it is
    kept (on disk), its index and quantization are set right after, before anything is written to it."""
    if sparse:
        named = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(
            modifier=models.Modifier.IDF if config.get("modifier") == "idf" else None))
    else:
        datatype = config.get("datatype")
        named = models.DenseVectorNameConfig(dense=models.DenseVectorConfig(
            size=config["size"], distance=models.Distance(config["distance"]), multivector_config=multivector_config(config),
            datatype=models.VectorStorageDatatype(datatype) if datatype and datatype != "float32" else None))
    client.create_vector_name(collection, vector, named)
    placed = {key: config[key] for key in ("on_disk", "hnsw", "quantization") if config.get(key)}
    if placed and not sparse:
        update_collection(client, collection, {"vectors": {vector: placed}})


def wait_until_ready(client, collection: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    from .progress import phase

    deadline = time.monotonic() + timeout_s
    status = client.get_collection(collection).status
    if getattr(status, "value", status) == "green":
        return
    with phase(f"waiting for {collection} to turn green (indexing)"):
        while getattr(status, "value", status) != "green":
            if time.monotonic() > deadline:
                raise QmspecError(f"{collection} is still {status} after {timeout_s:.0f}s of indexing; re-run apply to keep waiting")
            time.sleep(1)
            status = client.get_collection(collection).status


def aliases(client) -> dict[str, str]:
    return {alias.alias_name: alias.collection_name for alias in client.get_aliases().aliases}


def aliases_of(client, collection: str) -> list[str]:
    return [alias for alias, target in aliases(client).items() if target == collection]


def current_alias_target(client, alias: str) -> str | None:
    return aliases(client).get(alias)


def point_alias(client, alias: str, current: str | None, to_collection: str | None) -> None:
    """Delete and create in one update_collection_aliases call, which Qdrant applies atomically."""
    operations = []
    if current:
        operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    if to_collection:
        operations.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=to_collection, alias_name=alias)))
    client.update_collection_aliases(change_aliases_operations=operations)
