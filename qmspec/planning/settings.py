"""The collection-wide settings, declared once for the spec and for live state, with how each is compared.

Only settings the spec states are compared (an unset `hnsw.m` is not managed), like Terraform's optional
attributes. Kinds of value: partial mappings (only the keys the spec states), quantization (absent: not managed;
`{}`: none wanted; `{method: options}`), plain values (None: not managed), payload indexes (field -> schema, or
None to drop it) and shard keys (the keys that must exist).

A new collection starts from the settings of the one it replaces (`over`), so nothing the old collection had is
lost unless the spec says so, as Qdrant's own migration tool re-creates a target from its source.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Iterator

PARTIAL = ("hnsw", "optimizers", "strict_mode", "wal")
QUANTIZATION = "quantization"
PLAIN = ("on_disk_payload", "replication_factor", "write_consistency_factor")  # sent as collection params
CREATE_ONLY = ("shard_number", "sharding_method", "wal")  # fixed when a collection is created: no update_collection for them
PAYLOAD_INDEXES = "payload_indexes"
SHARD_KEYS = "shard_keys"
PINNED_WHEN_SET = ("strict_mode", "wal", "shard_number", "sharding_method", "shard_keys", "payload_indexes")  # added after plans were first saved: see livestate._pinned


@dataclass(frozen=True)
class CollectionSettings:
    hnsw: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    quantization: dict | None = None
    on_disk_payload: bool | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    strict_mode: dict = field(default_factory=dict)
    wal: dict = field(default_factory=dict)
    shard_number: int | None = None
    sharding_method: str | None = None
    shard_keys: tuple = ()  # custom sharding: keys that must exist (keys the spec leaves out are kept)
    payload_indexes: dict = field(default_factory=dict)  # field -> {"type": ..., params} or None: drop it

    def stated(self) -> dict:
        """The settings given a value, in declaration order: what a new collection is created with. Payload
        indexes the spec drops (None) are left out: there is nothing to create."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values[PAYLOAD_INDEXES] = {name: schema for name, schema in self.payload_indexes.items() if schema is not None}
        values[SHARD_KEYS] = list(self.shard_keys)
        return {name: value for name, value in values.items()
                if value is not None and not (name in (*PARTIAL, PAYLOAD_INDEXES, SHARD_KEYS) and not value)}

    def differences(self, live: CollectionSettings) -> Iterator[tuple[str, object, object]]:
        """(name, live value, wanted value) for each stated setting that live state does not have. Payload indexes
        and shard keys are compared one by one: see index_differences and missing_shard_keys."""
        for name in PARTIAL:
            wanted, actual = getattr(self, name), getattr(live, name)
            if subset_differs(wanted, actual):
                yield name, actual, wanted
        if quantization_differs(self.quantization, live.quantization):
            yield QUANTIZATION, live.quantization, self.quantization
        for name in (*PLAIN, "shard_number", "sharding_method"):
            wanted, actual = getattr(self, name), getattr(live, name)
            if wanted is not None and wanted != actual:
                yield name, actual, wanted

    def index_differences(self, live: CollectionSettings) -> Iterator[tuple[str, dict | None, dict | None]]:
        """(field, live schema, wanted schema) for each payload index the spec states differently; wanted None drops it."""
        for name, wanted in self.payload_indexes.items():
            actual = live.payload_indexes.get(name)
            if wanted is None:
                if actual is not None:
                    yield name, actual, None
            elif actual is None or actual.get("type") != wanted.get("type") or subset_differs(wanted, actual):
                yield name, actual, wanted

    def missing_shard_keys(self, live: CollectionSettings) -> list:
        return [key for key in self.shard_keys if key not in live.shard_keys]

    def over(self, base: CollectionSettings) -> CollectionSettings:
        """These settings laid over `base` (the collection being replaced): what the spec states wins, the rest is
        inherited. Indexes the spec drops and quantization it sets to none are removed."""
        merged = {name: _merged(getattr(base, name), getattr(self, name)) for name in PARTIAL}
        indexes = {name: schema for name, schema in (base.payload_indexes | self.payload_indexes).items() if schema is not None}
        plain = {name: getattr(self, name) if getattr(self, name) is not None else getattr(base, name)
                 for name in (*PLAIN, "shard_number", "sharding_method")}
        keys = tuple(dict.fromkeys((*base.shard_keys, *self.shard_keys)))
        quantization = self.quantization if self.quantization is not None else base.quantization
        return replace(self, **merged, **plain, quantization=quantization or None, payload_indexes=indexes, shard_keys=keys)

    def inherited_from(self, base: CollectionSettings) -> list[str]:
        """Names of the settings `over(base)` takes from base because the spec does not state them."""
        names = [name for name in (*PARTIAL, QUANTIZATION, *PLAIN, "shard_number", "sharding_method")
                 if _blank(getattr(self, name)) and not _blank(getattr(base, name))]
        names += [f"{PAYLOAD_INDEXES}.{name}" for name in base.payload_indexes if name not in self.payload_indexes]
        names += [SHARD_KEYS] * any(key not in self.shard_keys for key in base.shard_keys)
        return names


def index_schema(value) -> dict | None:
    """A payload index as the spec writes it (`keyword`, `{type: text, tokenizer: word}`, or `none` to drop it)."""
    if value is None or value == "none":
        return None
    return {"type": value} if isinstance(value, str) else dict(value)


def _blank(value) -> bool:
    return value is None or value == {} or value == ()


def _merged(base: dict, stated: dict) -> dict:
    merged = dict(base or {})
    for key, value in (stated or {}).items():
        merged[key] = _merged(merged.get(key), value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


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
