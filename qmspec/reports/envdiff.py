"""`qmspec diff --env A --env B`: how two environments' live state differs, grouped for a person, exact for CI.

Each environment is reduced to comparable facts (alias targets, vector configs, models recorded in metadata,
exact point counts) and compared with DeepDiff. With --alias, the collections behind that alias are compared
whatever their names, since staging's docs_v3 and prod's docs_v2 may both be "the collection serving docs".
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ..planning.livestate import LiveCollection, LiveState
from .render import compact

GROUPS = (("aliases", "alias targets"), ("vectors", "vector configs"), ("sparse_vectors", "vector configs"),
          ("models", "models recorded in metadata"), ("settings", "collection settings"), ("payload_indexes", "payload indexes"),
          ("points", "point counts"), ("collections", "collections"))


@dataclass(frozen=True)
class Difference:
    group: str
    path: str
    a: object
    b: object


def facts(live: LiveState, alias: str | None = None) -> dict:
    if alias:
        target = live.aliases.get(alias)
        collections = {f"<{alias}>": live.collections[target]} if target in live.collections else {}
        return {"aliases": {alias: target}, "collections": {name: _collection(c) for name, c in collections.items()}}
    return {"aliases": dict(live.aliases), "collections": {name: _collection(c) for name, c in live.collections.items()}}


def _collection(collection: LiveCollection) -> dict:
    settings = collection.settings.stated()  # an embedded store reports none: there is nothing to compare
    return {
        "vectors": {v.name: {"size": v.size, "distance": v.distance, "on_disk": v.on_disk, "datatype": v.datatype,
                             "multivector": v.multivector} for v in collection.vectors},
        "sparse_vectors": {v.name: {"modifier": v.modifier, "on_disk": v.on_disk} | v.index for v in collection.sparse_vectors},
        "models": {name: (collection.recorded_model(name) or {}).get("model") for name in sorted(collection.vector_names())},
        "settings": {name: value for name, value in settings.items() if name != "payload_indexes"},
        "payload_indexes": settings.get("payload_indexes", {}),
        "points": collection.points,
    }


def compare_environments(a: dict, b: dict) -> list[Difference]:
    from deepdiff import DeepDiff

    found = DeepDiff(a, b, ignore_order=True, verbose_level=2, view="tree")
    differences = []
    for kind, items in found.items():
        for item in items:
            path = _dotted(item.path(output_format="list"))
            left = None if kind.endswith("_added") else item.t1
            right = None if kind.endswith("_removed") else item.t2
            differences.append(Difference(_group(path), path, _plain(left), _plain(right)))
    return sorted(differences, key=lambda d: ([g for _, g in GROUPS].index(d.group), d.path))


def _dotted(parts: list) -> str:
    return ".".join(str(part) for part in parts)


def _group(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "aliases":
        return "alias targets"
    key = parts[2] if len(parts) > 2 else "collections"
    return dict(GROUPS).get(key, "collections")


def _plain(value):
    return None if type(value).__name__ == "NotPresent" else value


def render_text(name_a: str, name_b: str, differences: list[Difference]) -> str:
    if not differences:
        return f"{name_a} and {name_b} match.\n"
    lines = [f"{name_a} vs {name_b}: {len(differences)} difference(s)"]
    group = None
    for difference in differences:
        if difference.group != group:
            group = difference.group
            lines.append(f"  {group}:")
        lines.append(f"    {difference.path}: {_show(difference.a)} ({name_a}) vs {_show(difference.b)} ({name_b})")
    return "\n".join(lines) + "\n"


def render_json(name_a: str, name_b: str, differences: list[Difference]) -> str:
    return json.dumps({"format": 1, "a": name_a, "b": name_b, "equal": not differences,
                       "differences": [asdict(d) for d in differences]}, indent=2, default=str) + "\n"


def _show(value) -> str:
    return "absent" if value is None else compact(value)


def render_markdown(name_a: str, name_b: str, differences: list[Difference]) -> str:
    if not differences:
        return f"### `{name_a}` vs `{name_b}`\n\nThey match.\n"
    rows = [f"| {d.group} | `{d.path}` | {_show(d.a)} | {_show(d.b)} |" for d in differences]
    return "\n".join([f"### `{name_a}` vs `{name_b}`: {len(differences)} difference(s)", "",
                      f"| group | path | {name_a} | {name_b} |", "|---|---|---|---|", *rows]) + "\n"


