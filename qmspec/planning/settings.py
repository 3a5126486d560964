"""The collection-wide settings, declared once for the spec and for live state, with how each is compared.

Only settings the spec states are compared (an unset `hnsw.m` is not managed), like Terraform's optional
attributes. Three kinds of value: partial mappings (only the keys the spec states), quantization (absent: not
managed; `{}`: none wanted; `{method: options}`), and plain values (None: not managed).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterator

PARTIAL = ("hnsw", "optimizers")
QUANTIZATION = "quantization"
PLAIN = ("on_disk_payload", "replication_factor", "write_consistency_factor")  # sent as collection params


@dataclass(frozen=True)
class CollectionSettings:
    hnsw: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)
    quantization: dict | None = None
    on_disk_payload: bool | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None

    def stated(self) -> dict:
        """The settings given a value, in declaration order: what a new collection is created with."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items()
                if value is not None and not (name in PARTIAL and not value)}  # quantization {} asks for none

    def differences(self, live: CollectionSettings) -> Iterator[tuple[str, object, object]]:
        """(name, live value, wanted value) for each stated setting that live state does not have."""
        for name in PARTIAL:
            wanted, actual = getattr(self, name), getattr(live, name)
            if subset_differs(wanted, actual):
                yield name, actual, wanted
        if quantization_differs(self.quantization, live.quantization):
            yield QUANTIZATION, live.quantization, self.quantization
        for name in PLAIN:
            wanted, actual = getattr(self, name), getattr(live, name)
            if wanted is not None and wanted != actual:
                yield name, actual, wanted


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
