"""Spec x live collection -> Changes. Pure: compares values, decides nothing about order or safety.

Each kind of change is a type (alembic's operation classes are the model), so rules and the planner select
them by type. Only settings the spec states are compared (see settings.py); vector shape and the recorded model
are always compared, since they decide whether stored vectors are still valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .livestate import LiveCollection, LiveDenseVector, LiveSparseVector
from .capabilities import applies
from .flow import compact
from .settings import CREATE_ONLY, PAYLOAD_INDEXES, SHARD_KEYS, quantization_differs, subset_differs
from .spec import IDENTITY_KEYS, DenseVectorSpec, Spec, SparseVectorSpec

SHAPE_FIELDS = ("size", "distance", "multivector", "datatype")  # Qdrant cannot change these in place


@dataclass(frozen=True)
class Change:
    kind: ClassVar[str] = ""  # the name reports print
    vector: str | None = None
    field: str | None = None
    old: object = None
    new: object = None
    sparse: bool = False


@dataclass(frozen=True)
class UnnamedVector(Change):
    kind: ClassVar[str] = "unnamed_vector"


@dataclass(frozen=True)
class VectorAdded(Change):
    kind: ClassVar[str] = "vector_added"


@dataclass(frozen=True)
class VectorRemoved(Change):
    kind: ClassVar[str] = "vector_removed"


@dataclass(frozen=True)
class VectorShape(Change):
    """Size, distance, multivector, datatype, or dense/sparse: only a new collection can change it."""

    kind: ClassVar[str] = "vector_shape"


@dataclass(frozen=True)
class ModelChanged(Change):
    kind: ClassVar[str] = "model_changed"


@dataclass(frozen=True)
class ModelUnrecorded(Change):
    kind: ClassVar[str] = "model_unrecorded"


@dataclass(frozen=True)
class VectorSetting(Change):
    kind: ClassVar[str] = "vector_setting"


@dataclass(frozen=True)
class CollectionSetting(Change):
    kind: ClassVar[str] = "collection_setting"


@dataclass(frozen=True)
class CreateOnlySetting(Change):
    """Shard number, sharding method, WAL: Qdrant fixes them when the collection is created."""

    kind: ClassVar[str] = "create_only_setting"


@dataclass(frozen=True)
class PayloadIndexChanged(Change):
    """`field` is the payload field; old/new are index schemas, None where there is no index (new None: drop it)."""

    kind: ClassVar[str] = "payload_index"


@dataclass(frozen=True)
class ShardKeysMissing(Change):
    kind: ClassVar[str] = "shard_keys"


def setting_name(change: Change) -> str:
    """The setting a change is about, as capabilities.applies knows it."""
    if isinstance(change, PayloadIndexChanged):
        return PAYLOAD_INDEXES
    return change.field or ""


def applicable(change: Change, embedded: bool) -> bool:
    """False for changes the connected store would ignore (see capabilities.NOT_ON_EMBEDDED)."""
    if isinstance(change, (CollectionSetting, CreateOnlySetting, PayloadIndexChanged, ShardKeysMissing)):
        return applies(setting_name(change), embedded)
    if isinstance(change, VectorSetting):
        return applies(change.field, embedded, vector=True)
    return True


def diff_collection(spec: Spec, live: LiveCollection) -> list[Change]:
    changes: list[Change] = []
    if live.unnamed:
        changes.append(UnnamedVector(vector="", old="unnamed", new="named"))
    changes += _vector_set_changes(spec, live)
    for vector in spec.vectors:
        current = live.vector(vector.name)
        if isinstance(current, LiveDenseVector):
            changes += _dense_changes(vector, current, live)
    for vector in spec.sparse_vectors:
        current = live.vector(vector.name)
        if isinstance(current, LiveSparseVector):
            changes += _sparse_changes(vector, current, live)
    changes += settings_changes(spec, live)
    return changes


def settings_changes(spec: Spec, live: LiveCollection) -> list[Change]:
    wanted, actual = spec.settings, live.settings
    changes: list[Change] = [(CreateOnlySetting if name in CREATE_ONLY else CollectionSetting)(field=name, old=old, new=new)
                             for name, old, new in wanted.differences(actual)]
    changes += [PayloadIndexChanged(field=name, old=old, new=new) for name, old, new in wanted.index_differences(actual)]
    missing = wanted.missing_shard_keys(actual)
    if missing:
        changes.append(ShardKeysMissing(field=SHARD_KEYS, old=list(actual.shard_keys), new=missing))
    return changes


def _vector_set_changes(spec: Spec, live: LiveCollection) -> list[Change]:
    changes: list[Change] = []
    for vector in (*spec.vectors, *spec.sparse_vectors):
        sparse = isinstance(vector, SparseVectorSpec)
        current = live.vector(vector.name)
        if current is None:
            changes.append(VectorAdded(vector=vector.name, new=vector.name, sparse=sparse))
        elif sparse != isinstance(current, LiveSparseVector):
            kinds = ("dense", "sparse")
            changes.append(VectorShape(vector=vector.name, field="kind", old=kinds[not sparse], new=kinds[sparse], sparse=sparse))
    wanted = {vector.name for vector in (*spec.vectors, *spec.sparse_vectors)}
    for current in (*live.vectors, *live.sparse_vectors):
        if current.name and current.name not in wanted:
            changes.append(VectorRemoved(vector=current.name, old=current.name, sparse=isinstance(current, LiveSparseVector)))
    return changes


def _dense_changes(vector: DenseVectorSpec, current: LiveDenseVector, live: LiveCollection) -> list[Change]:
    changes: list[Change] = []
    for name in SHAPE_FIELDS:
        wanted, actual = getattr(vector, name), getattr(current, name)
        if wanted != actual:
            changes.append(VectorShape(vector=vector.name, field=name, old=actual, new=wanted))
    changes += _model_changes(vector, live)
    if vector.on_disk != current.on_disk:
        changes.append(VectorSetting(vector=vector.name, field="on_disk", old=current.on_disk, new=vector.on_disk))
    if subset_differs(vector.hnsw, current.hnsw):
        changes.append(VectorSetting(vector=vector.name, field="hnsw", old=current.hnsw, new=vector.hnsw))
    if quantization_differs(vector.quantization, current.quantization):
        changes.append(VectorSetting(vector=vector.name, field="quantization", old=current.quantization, new=vector.quantization))
    return changes


def _sparse_changes(vector: SparseVectorSpec, current: LiveSparseVector, live: LiveCollection) -> list[Change]:
    changes = _model_changes(vector, live)
    if vector.modifier != current.modifier:
        changes.append(VectorSetting(vector=vector.name, field="modifier", old=current.modifier, new=vector.modifier, sparse=True))
    if vector.on_disk != current.on_disk:
        changes.append(VectorSetting(vector=vector.name, field="on_disk", old=current.on_disk, new=vector.on_disk, sparse=True))
    if subset_differs(vector.index, current.index):
        changes.append(VectorSetting(vector=vector.name, field="index", old=current.index, new=vector.index, sparse=True))
    return changes


def _model_changes(vector, live: LiveCollection) -> list[Change]:
    if vector.model is None:  # carried vectors keep whatever model made them
        return []
    sparse = isinstance(vector, SparseVectorSpec)
    recorded = live.recorded_model(vector.name)
    if recorded is None:
        return [ModelUnrecorded(vector=vector.name, new=vector.model.identity, sparse=sparse)]
    if not same_model(recorded, vector.model.identity):
        return [ModelChanged(vector=vector.name, old=recorded, new=vector.model.identity, sparse=sparse)]
    return []


def same_model(recorded: dict | None, identity: dict | None) -> bool:
    """Whether stored vectors recorded as `recorded` come from the model `identity` describes: same name, revision,
    prompts, truncation, API dimensions and tokenization (a key neither states is equal), and the same resolved
    commit where both know it (a name without a revision follows the hub: its weights may have moved)."""
    if not recorded or not identity:
        return False
    committed = recorded.get("commit") and identity.get("commit")
    return all(recorded.get(key) == identity.get(key) for key in IDENTITY_KEYS) and (not committed or recorded["commit"] == identity["commit"])


IDENTITY_WORDS = {"model": "model", "revision": "revision", "prompts": "prompts", "truncate_dim": "truncation",
                  "dimensions": "API dimensions", "tokenizer": "tokenization", "commit": "resolved commit"}


def identity_change(recorded: dict | None, identity: dict) -> str:
    """What differs between the model stored vectors came from and the spec's, said part by part, for plans and rule
    messages: `revision main -> 5c38ec7, prompts none -> {query: "query: "}`."""
    if not recorded:
        return "no model is recorded for the stored vectors"
    keys = [key for key in IDENTITY_WORDS if key != "commit" or (recorded.get("commit") and identity.get("commit"))]
    changed = [f"{IDENTITY_WORDS[key]} {_said(recorded.get(key))} -> {_said(identity.get(key))}" for key in keys
               if recorded.get(key) != identity.get(key)]
    return ", ".join(changed) or "the same model"


def _said(value) -> str:
    return "none" if value is None else compact(value)
