"""Read live Qdrant state into a LiveState. Read-only: planning never writes to Qdrant."""
from __future__ import annotations

from contextlib import nullcontext

from .connect import open_client, scrub
from .errors import QdrantAccessError
from .planning.record import STATE_COLLECTION
from .planning.livestate import LiveCollection, LiveDenseVector, LiveSparseVector, LiveState
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
    collections = {name: read_collection(client, name, exact=name in focus_set, embedded=embedded) for name in names}
    return LiveState(
        server_version=server_version(client),
        embedded=embedded,
        collections=collections,
        aliases=dict(sorted(aliases.items())),
        files=files or {},
    )


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
    )


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
