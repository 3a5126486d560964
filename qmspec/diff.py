"""Spec x live collection -> Changes. Pure: compares values, decides nothing about order or safety.

Only settings the spec states are compared (an unset `hnsw.m` is not managed), like Terraform's optional
attributes; vector shape and the recorded model are always compared, since they decide whether stored
vectors are still valid.
"""
from __future__ import annotations

from dataclasses import dataclass

from .livestate import LiveCollection, LiveDenseVector, LiveSparseVector
from .spec import DenseVectorSpec, Spec, SparseVectorSpec

SHAPE_FIELDS = ("size", "distance", "multivector", "datatype")  # Qdrant cannot change these in place


@dataclass(frozen=True)
class Change:
    kind: str  # vector_added, vector_removed, vector_shape, model_changed, model_unrecorded, vector_setting, collection_setting, unnamed_vector
    vector: str | None = None
    field: str | None = None
    old: object = None
    new: object = None
    sparse: bool = False


def diff_collection(spec: Spec, live: LiveCollection) -> list[Change]:
    changes: list[Change] = []
    if live.unnamed:
        changes.append(Change("unnamed_vector", vector="", old="unnamed", new="named"))
    changes += _vector_set_changes(spec, live)
    for vector in spec.vectors:
        current = live.vector(vector.name)
        if isinstance(current, LiveDenseVector):
            changes += _dense_changes(vector, current, live)
    for vector in spec.sparse_vectors:
        current = live.vector(vector.name)
        if isinstance(current, LiveSparseVector):
            changes += _sparse_changes(vector, current, live)
    changes += _collection_changes(spec, live)
    return changes


def _vector_set_changes(spec: Spec, live: LiveCollection) -> list[Change]:
    changes = []
    for vector in (*spec.vectors, *spec.sparse_vectors):
        sparse = isinstance(vector, SparseVectorSpec)
        current = live.vector(vector.name)
        if current is None:
            changes.append(Change("vector_added", vector=vector.name, new=vector.name, sparse=sparse))
        elif sparse != isinstance(current, LiveSparseVector):
            kinds = ("dense", "sparse")
            changes.append(Change("vector_shape", vector=vector.name, field="kind", old=kinds[not sparse], new=kinds[sparse], sparse=sparse))
    wanted = {vector.name for vector in (*spec.vectors, *spec.sparse_vectors)}
    for current in (*live.vectors, *live.sparse_vectors):
        if current.name and current.name not in wanted:
            changes.append(Change("vector_removed", vector=current.name, old=current.name, sparse=isinstance(current, LiveSparseVector)))
    return changes


def _dense_changes(vector: DenseVectorSpec, current: LiveDenseVector, live: LiveCollection) -> list[Change]:
    changes = []
    for name in SHAPE_FIELDS:
        wanted, actual = getattr(vector, name), getattr(current, name)
        if wanted != actual:
            changes.append(Change("vector_shape", vector=vector.name, field=name, old=actual, new=wanted))
    changes += _model_changes(vector, live)
    if vector.on_disk != current.on_disk:
        changes.append(Change("vector_setting", vector=vector.name, field="on_disk", old=current.on_disk, new=vector.on_disk))
    if subset_differs(vector.hnsw, current.hnsw):
        changes.append(Change("vector_setting", vector=vector.name, field="hnsw", old=current.hnsw, new=vector.hnsw))
    if quantization_differs(vector.quantization, current.quantization):
        changes.append(Change("vector_setting", vector=vector.name, field="quantization", old=current.quantization, new=vector.quantization))
    return changes


def _sparse_changes(vector: SparseVectorSpec, current: LiveSparseVector, live: LiveCollection) -> list[Change]:
    changes = _model_changes(vector, live)
    if vector.modifier != current.modifier:
        changes.append(Change("vector_setting", vector=vector.name, field="modifier", old=current.modifier, new=vector.modifier, sparse=True))
    if vector.on_disk != current.on_disk:
        changes.append(Change("vector_setting", vector=vector.name, field="on_disk", old=current.on_disk, new=vector.on_disk, sparse=True))
    return changes


def _model_changes(vector, live: LiveCollection) -> list[Change]:
    if vector.model is None:  # carried vectors keep whatever model made them
        return []
    sparse = isinstance(vector, SparseVectorSpec)
    recorded = live.recorded_model(vector.name)
    if recorded is None:
        return [Change("model_unrecorded", vector=vector.name, new=vector.model.identity, sparse=sparse)]
    if not same_model(recorded, vector.model.identity):
        return [Change("model_changed", vector=vector.name, old=recorded, new=vector.model.identity, sparse=sparse)]
    return []


def same_model(recorded: dict | None, identity: dict | None) -> bool:
    if not recorded or not identity:
        return False
    return recorded.get("model") == identity.get("model") and recorded.get("truncate_dim") == identity.get("truncate_dim")


def _collection_changes(spec: Spec, live: LiveCollection) -> list[Change]:
    changes = []
    for name in ("hnsw", "optimizers"):
        wanted, actual = getattr(spec, name), getattr(live, name)
        if subset_differs(wanted, actual):
            changes.append(Change("collection_setting", field=name, old=actual, new=wanted))
    if quantization_differs(spec.quantization, live.quantization):
        changes.append(Change("collection_setting", field="quantization", old=live.quantization, new=spec.quantization))
    for name in ("on_disk_payload", "replication_factor", "write_consistency_factor"):
        wanted, actual = getattr(spec, name), getattr(live, name)
        if wanted is not None and wanted != actual:
            changes.append(Change("collection_setting", field=name, old=actual, new=wanted))
    return changes


def subset_differs(wanted: dict, actual: dict) -> bool:
    """True where a key the spec states has another value live (nested dicts compared the same way)."""
    for key, value in (wanted or {}).items():
        current = (actual or {}).get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            if subset_differs(value, current):
                return True
        elif value != current:
            return True
    return False


def quantization_differs(wanted: dict | None, actual: dict | None) -> bool:
    """None: not managed. {}: no quantization wanted. {"scalar": {...}}: that method, with the stated options."""
    if wanted is None:
        return False
    if not wanted:
        return bool(actual)
    if not actual or set(wanted) != set(actual):
        return True
    return subset_differs(wanted, actual)
