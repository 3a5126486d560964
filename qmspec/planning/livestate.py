"""The live state of Qdrant as plain values: what the planner diffs against and what a saved plan pins.

Pure data; `live.py` fills it from a client. Keeping the types here lets diff, rules and planner stay
free of qdrant_client and be tested with hand-built values.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from .settings import PINNED_WHEN_SET, CollectionSettings

METADATA_KEY = "qmspec"  # collection metadata qmspec stamps: {"qmspec": {"spec_hash", "alias", "vectors": {...}}}


def recorded_vectors(metadata: dict | None) -> dict:
    """vector name -> the model identity qmspec stamped for it, from a collection's metadata."""
    return ((metadata or {}).get(METADATA_KEY) or {}).get("vectors") or {}


def recorded(metadata: dict | None, key: str, default=None):
    """One entry of qmspec's record in a collection's metadata:
    - `query`, `query_model`: the query the application runs there ({"using"} or {"prefetch", "fusion", "limit"});
    - `query_since`: when that query was recorded (ISO 8601, UTC);
    - `released`: vector -> when the recorded query stopped using it (what an in-place drop waits on);
    - `backfill`: vector -> {"text_field"}: vectors added in place that the application's query does not use yet, which
      every apply catches up (the application still writes only the old vectors);
    - `deleted`: vector -> when qmspec deleted it in place (Qdrant 1.18 must not re-create that name, qdrant#9317)."""
    value = ((metadata or {}).get(METADATA_KEY) or {}).get(key)
    return default if value is None else value


def query_vectors(query: dict | None) -> set[str]:
    """The vectors a query (Qdrant's Query API shape) searches."""
    if not query:
        return set()
    return {entry["using"] for entry in query["prefetch"]} if "prefetch" in query else {query["using"]}


@dataclass(frozen=True)
class Quota:
    """A node-wide resource quota (Qdrant 1.19+, `GET /quotas`): the limits in percent, the highest usage any peer
    reports, what those are percentages of (from telemetry, where the server tells it), and the resources a peer is
    refusing writes over now. Enforced with or without strict mode."""

    enabled: bool
    max_disk_percent: int | None = None
    max_memory_percent: int | None = None
    disk_percent: int | None = None
    memory_percent: int | None = None
    disk_bytes: int | None = None
    memory_bytes: int | None = None
    exceeded: tuple[str, ...] = ()  # "disk", "memory"


@dataclass(frozen=True)
class LiveDenseVector:
    name: str  # "" for a collection's single unnamed vector
    size: int
    distance: str
    on_disk: bool = False
    datatype: str = "float32"
    multivector: str | None = None
    hnsw: dict = field(default_factory=dict)
    quantization: dict | None = None


@dataclass(frozen=True)
class LiveSparseVector:
    name: str
    modifier: str = "none"
    on_disk: bool = False
    index: dict = field(default_factory=dict)  # full_scan_threshold, datatype


@dataclass(frozen=True)
class LiveCollection:
    name: str
    vectors: tuple[LiveDenseVector, ...] = ()
    sparse_vectors: tuple[LiveSparseVector, ...] = ()
    points: int = 0
    points_exact: bool = False
    settings: CollectionSettings = CollectionSettings()
    metadata: dict = field(default_factory=dict)
    status: str = "green"
    lacking: dict = field(default_factory=dict)  # vector backfilled in place -> points without it (read for those only)
    footprint: int | None = None  # bytes of vectors and payloads, the server's estimate (telemetry); None: not known

    @property
    def unnamed(self) -> bool:
        return any(vector.name == "" for vector in self.vectors)

    def vector(self, name: str) -> LiveDenseVector | LiveSparseVector | None:
        for vector in (*self.vectors, *self.sparse_vectors):
            if vector.name == name:
                return vector
        return None

    def vector_names(self) -> set[str]:
        return {vector.name for vector in (*self.vectors, *self.sparse_vectors)}

    def recorded_model(self, vector: str) -> dict | None:
        """The model identity qmspec stamped for `vector`, or None where the collection was not made by qmspec."""
        return recorded_vectors(self.metadata).get(vector)

    @property
    def managed(self) -> bool:
        return METADATA_KEY in self.metadata


@dataclass(frozen=True)
class LiveState:
    server_version: str | None
    embedded: bool
    collections: dict = field(default_factory=dict)  # name -> LiveCollection
    aliases: dict = field(default_factory=dict)  # alias -> collection
    files: dict = field(default_factory=dict)  # source file path -> record count
    observed_at: float | None = None  # when it was read (epoch seconds): observation windows end against it
    quota: Quota | None = None  # None: no quota API (embedded store, servers before 1.19) or not readable with this key

    def aliases_of(self, collection: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == collection)

    def fingerprint(self, collections: list[str], alias: str | None = None) -> str:
        """What a saved plan depends on: server version, config and exact counts of the collections it touches, and the
        aliases that concern it (its own, and those serving a collection it touches). Any change here makes a saved
        plan stale; an alias elsewhere moving does not (the plans of a pull request apply one after the other)."""
        touched = set(collections)
        pinned = {
            "server_version": self.server_version,
            "aliases": {name: target for name, target in sorted(self.aliases.items()) if name == alias or target in touched},
            "collections": {
                name: _pinned(self.collections[name]) if name in self.collections else None for name in sorted(set(collections))
            },
            "files": dict(sorted(self.files.items())),
        }
        return _digest(pinned)

    def pins(self, collections: list[str]) -> dict:
        """One digest per collection a plan touches (None: it does not exist): what tells a stale plan's reader which one
        moved."""
        return {name: _digest(_pinned(self.collections[name])) if name in self.collections else None for name in sorted(set(collections))}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _pinned(collection: LiveCollection) -> dict:
    """A collection's values with its settings at the top level, as plans saved before settings were grouped pin them;
    settings added later are pinned only when set, so saved plans of collections without them stay valid."""
    values = asdict(collection)
    for moving in ("lacking", "footprint"):  # change with every write: a saved plan does not depend on them
        values.pop(moving)
    settings = values.pop("settings")
    return values | {name: value for name, value in settings.items() if name not in PINNED_WHEN_SET or value not in (None, {}, (), [])}
