"""Read live Qdrant state into a LiveState. Read-only: planning never writes to Qdrant."""
from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext

from qdrant_client import models

from .connect import open_client, scrub
from .errors import QdrantAccessError
from .planning.record import STATE_COLLECTION
from .planning.livestate import LiveCollection, LiveDenseVector, LiveSparseVector, LiveState, Quota, recorded
from .planning.settings import CollectionSettings
from .project import Target
from .sourcefiles import count_records


def observe(target: Target, focus: list[str] | None = None, focus_aliases: list[str] = (), files: tuple[str, ...] = (),
            client=None) -> LiveState:
    """Read the live state at `target`. `focus` names collections whose points are counted exactly (the ones a
    plan touches), `focus_aliases` adds the collections those aliases serve; None counts every collection exactly.
    An embedded store that does not exist yet is empty: planning must not create it."""
    file_counts = {path: count_records(path) for path in files}
    context = nullcontext(client) if client is not None else open_client(target, read_only=True)
    with context as opened:
        try:
            return read_live_state(opened, embedded=target.embedded, focus=focus, focus_aliases=focus_aliases, files=file_counts)
        except QdrantAccessError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client raises many types; the user needs one message
            message = scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, target)
            raise QdrantAccessError(f"reading the {target.describe()} failed: {message}") from None


def read_live_state(client, embedded: bool, focus: list[str] | None = None, focus_aliases: list[str] = (),
                    files: dict | None = None) -> LiveState:
    # qmspec's own journal collection is bookkeeping, not state a spec manages
    names = sorted(c.name for c in client.get_collections().collections if c.name != STATE_COLLECTION)
    aliases = {alias.alias_name: alias.collection_name for alias in client.get_aliases().aliases}
    focus_set = set(names if focus is None else focus) | {aliases[a] for a in focus_aliases if a in aliases}
    observed_at = time.time()
    collections = {name: read_collection(client, name, exact=name in focus_set, embedded=embedded) for name in names}
    quota = None if embedded else read_quota(client)
    if quota is not None and quota.enabled:
        footprints = read_footprints(client)
        collections = {name: dataclasses.replace(collection, footprint=footprints.get(name)) for name, collection in collections.items()}
    return LiveState(
        server_version=server_version(client),
        embedded=embedded,
        collections=collections,
        aliases=dict(sorted(aliases.items())),
        files=files or {},
        observed_at=observed_at,
        quota=quota,
    )


RELEASE_MARGIN = 5  # percentage points Qdrant waits below a limit before it takes writes again, unless configured


def read_quota(client) -> Quota | None:
    """The node-wide quota (Qdrant 1.19+, `GET /quotas`) with the fullest peer's usage, and the capacities telemetry
    reports; None where the server has no quota API or this key may not read it (it needs global access)."""
    status = _get(client, "/quotas")
    if not status or not isinstance(status.get("config"), dict):
        return None
    config = status["config"]
    peers = list((status.get("peers") or {}).values())
    readings = peers or [status.get("usage") or {}]
    disk = [reading["disk_usage_percent"] for reading in readings if reading.get("disk_usage_percent") is not None]
    memory = [reading["resident_memory_percent"] for reading in readings if reading.get("resident_memory_percent") is not None]
    limits = {"disk": config.get("max_disk_usage_percent"), "memory": config.get("max_resident_memory_percent")}
    margin = RELEASE_MARGIN if config.get("release_margin_percent") is None else config["release_margin_percent"]
    exceeded: set[str] = set()
    for peer in (peer for peer in peers if peer.get("exceeded")):  # which resource: the one near its limit
        used = {"disk": peer.get("disk_usage_percent"), "memory": peer.get("resident_memory_percent")}
        over = {name for name, limit in limits.items() if limit and (used[name] or 0) >= limit - margin}
        exceeded |= over or {"disk or memory"}
    system = ((_get(client, "/telemetry", {"details_level": 0}) or {}).get("app") or {}).get("system") or {}
    return Quota(enabled=bool(config.get("enabled")), max_disk_percent=limits["disk"], max_memory_percent=limits["memory"],
                 disk_percent=max(disk) if disk else None, memory_percent=max(memory) if memory else None,
                 disk_bytes=system["disk_size"] * 1024 if system.get("disk_size") else None,  # KiB in telemetry
                 memory_bytes=system["ram_size"] * 1024 if system.get("ram_size") else None, exceeded=tuple(sorted(exceeded)))


def read_footprints(client) -> dict[str, int]:
    """collection -> bytes of its vectors and payloads on the node that answered, the server's own estimate (telemetry)."""
    collections = ((_get(client, "/telemetry", {"details_level": 3}) or {}).get("collections") or {}).get("collections") or []
    sizes = {}
    for entry in collections:
        total = sum((shard.get("local") or {}).get("vectors_size_bytes") or 0 for shard in entry.get("shards") or ()) + \
            sum((shard.get("local") or {}).get("payloads_size_bytes") or 0 for shard in entry.get("shards") or ())
        if total and entry.get("id"):
            sizes[entry["id"]] = total
    return sizes


def _get(client, path: str, params: dict | None = None) -> dict | None:
    """The `result` of a GET on the server's REST API as plain JSON: these answers grow fields from release to release,
    which a model of one client version would refuse. None where the call fails (absent before 1.19, forbidden to a
    collection-scoped key, a gRPC-only or embedded client)."""
    try:
        answer = client.http.client.request(type_=dict, method="GET", url=path, params=params or {})
    except Exception:  # noqa: BLE001 - any failure means: not known
        return None
    result = answer.get("result") if isinstance(answer, dict) else None
    return result if isinstance(result, dict) else None


def server_version(client) -> str | None:
    try:
        return client.info().version
    except Exception:  # noqa: BLE001 - an old server without /info: capabilities fall back to "assume current"
        return None


def read_collection(client, name: str, exact: bool, embedded: bool = False) -> LiveCollection:
    info = client.get_collection(name)
    params = info.config.params
    points = client.count(name, exact=True).count if exact else (info.points_count or 0)
    return LiveCollection(
        name=name,
        vectors=_dense_vectors(params.vectors),
        sparse_vectors=tuple(
            LiveSparseVector(
                name=vector_name,
                modifier=_value(sparse.modifier) or "none",
                on_disk=bool(sparse.index and sparse.index.on_disk),
                index={key: value for key, value in _plain(sparse.index).items() if key in ("full_scan_threshold", "datatype")},
            )
            for vector_name, sparse in sorted((params.sparse_vectors or {}).items())
        ),
        points=points,
        points_exact=exact,
        # the embedded store answers fixed defaults for the settings it ignores: reporting them would be invented state
        settings=CollectionSettings() if embedded else _settings(client, name, info),
        metadata=dict(info.config.metadata or {}),
        status=_value(info.status) or "green",
        lacking={vector: client.count(name, exact=True, count_filter=models.Filter(must_not=[models.HasVectorCondition(has_vector=vector)])).count
                 for vector in recorded(info.config.metadata, "backfill", {}) if vector in _names(params)} if exact else {},
    )


def _names(params) -> set[str]:
    vectors = params.vectors if isinstance(params.vectors, dict) else {}
    return set(vectors) | set(params.sparse_vectors or {})


def _settings(client, name: str, info) -> CollectionSettings:
    config, params = info.config, info.config.params
    sharding = _value(params.sharding_method)
    return CollectionSettings(
        hnsw=_plain(config.hnsw_config),
        optimizers=_plain(config.optimizer_config),
        quantization=_plain(config.quantization_config) or None,
        on_disk_payload=params.on_disk_payload,
        replication_factor=params.replication_factor,
        write_consistency_factor=params.write_consistency_factor,
        strict_mode=_plain(getattr(config, "strict_mode_config", None)),
        wal=_plain(config.wal_config),
        shard_number=params.shard_number,
        sharding_method=sharding,
        shard_keys=_shard_keys(client, name) if sharding == "custom" else (),
        payload_indexes={field: payload_index(index) for field, index in sorted((info.payload_schema or {}).items())},
    )


def payload_index(info) -> dict:
    """A live payload index in the spec's form: {"type": ..., options}; `points` is a count, not a setting."""
    params = _plain(info.params) if info.params is not None else {}
    return {"type": _value(info.data_type)} | {key: value for key, value in params.items() if key != "type"}


def _shard_keys(client, name: str) -> tuple:
    keys = client.list_shard_keys(name).shard_keys or []
    return tuple(sorted((getattr(key, "key", key) for key in keys), key=str))


def _dense_vectors(vectors) -> tuple[LiveDenseVector, ...]:
    if vectors is None:
        return ()
    if not isinstance(vectors, dict):  # a single unnamed vector
        vectors = {"": vectors}
    return tuple(
        LiveDenseVector(
            name=name,
            size=params.size,
            distance=_value(params.distance),
            on_disk=bool(params.on_disk),
            datatype=_value(params.datatype) or "float32",
            multivector=_value(params.multivector_config.comparator) if params.multivector_config else None,
            hnsw=_plain(params.hnsw_config),
            quantization=_plain(params.quantization_config) or None,
        )
        for name, params in sorted(vectors.items())
    )


def _value(enum_or_none):
    return getattr(enum_or_none, "value", enum_or_none)


def _plain(model) -> dict:
    """A pydantic config as a plain dict without unset (None) fields, enums as their values."""
    if model is None:
        return {}
    return model.model_dump(mode="json", exclude_none=True)


def sample_texts(client, collection: str, field: str, limit: int = 32) -> dict:
    """point id -> the value of `field` for the first points of `collection`: what a preflight embeds to time a model
    on real data, and checks is text."""
    points, _ = client.scroll(collection, limit=limit, with_payload=[field], with_vectors=False)
    return {point.id: (point.payload or {}).get(field) for point in points}
