"""`qmspec inspect`: write a spec from live state, so collections made by hand come under management.

Pure: LiveState in, spec data out. Vectors whose model qmspec recorded get that model (its options as the spec
writes them), their text field, and the query the application runs; the others get `model: {}`, which fails
validation naming `qmspec import`: no tool can tell from vectors alone which model made them, so the person names
it and `qmspec import` checks the name against the stored vectors before anything is recorded. Planning the
written spec against the same state yields no changes.
"""
from __future__ import annotations

import yaml

from ..errors import QmspecError
from ..planning.livestate import METADATA_KEY, LiveCollection, LiveState
from ..planning.spec import DEFAULT_TEXT_FIELD, load_schema

HEADER = "# yaml-language-server: $schema={schema}\n# Written by `qmspec inspect` from live state. Review it, then keep it under version control.\n"


def spec_from_live(live: LiveState, alias: str) -> dict:
    if alias not in live.aliases:
        known = ", ".join(sorted(live.aliases)) or "none"
        raise QmspecError(f"alias {alias!r} does not exist (aliases: {known})")
    collection = live.collections[live.aliases[alias]]
    if collection.unnamed:
        raise QmspecError(f"{collection.name} has a single unnamed vector; specs name their vectors. Migrate it to a "
                          "collection with named vectors first (write that spec by hand: rule BC203 will warn)")
    spec = {"version": 1, "alias": alias, "collection": collection.name}
    dense = {vector.name: _dense(collection, vector) for vector in collection.vectors}
    sparse = {vector.name: _sparse(collection, vector) for vector in collection.sparse_vectors}
    if dense:
        spec["vectors"] = dense
    if sparse:
        spec["sparse_vectors"] = sparse
    query = _query(collection)
    return spec | ({"query": query} if query else {}) | _settings(collection)


def _query(collection: LiveCollection) -> dict:
    """The query qmspec recorded for the collection, as the spec writes it (with the query model of a single vector)."""
    recorded = (collection.metadata.get(METADATA_KEY) or {}).get("query") or {}
    if "prefetch" in recorded:
        return {"prefetch": [dict(entry) for entry in recorded["prefetch"]], "fusion": recorded.get("fusion", "rrf"),
                "limit": recorded.get("limit", 10)}
    if recorded.get("using"):
        model = (collection.recorded_model(recorded["using"]) or {}).get("model")
        return {"using": recorded["using"]} | ({"model": model} if model else {})
    return {}


def _settings(collection: LiveCollection) -> dict:
    """Every setting the store reports, as the schema spells it: options a newer server reports that this schema does
    not know are left out, so the written spec validates. The embedded store reports none."""
    schema = load_schema()
    written = {}
    for name, value in collection.settings.stated().items():
        if name == "payload_indexes":
            variants = {v["properties"]["type"]["const"]: v for v in schema["$defs"]["payload_index"]["anyOf"] if "properties" in v}
            value = {field: _known(index, variants[index["type"]]) for field, index in value.items() if index["type"] in variants}
        elif name == "quantization":
            methods = schema["$defs"]["quantization"]["anyOf"][1]["properties"]
            value = {method: _known(options, methods[method]) for method, options in value.items() if method in methods}
        elif isinstance(value, dict):
            node = schema["properties"][name]
            value = _known(value, schema["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node)
        written[name] = value
    return written


def _known(values: dict, node: dict) -> dict:
    return {key: value for key, value in values.items() if key in node["properties"]}


def _dense(collection: LiveCollection, vector) -> dict:
    entry = {"size": vector.size, "distance": vector.distance}
    if vector.on_disk:
        entry["on_disk"] = True
    if vector.datatype != "float32":
        entry["datatype"] = vector.datatype
    if vector.multivector:
        entry["multivector"] = {"comparator": vector.multivector}
    if vector.quantization:
        entry["quantization"] = vector.quantization
    return entry | _source(collection, vector.name)


def _sparse(collection: LiveCollection, vector) -> dict:
    entry = {"modifier": vector.modifier}
    if vector.on_disk:
        entry["on_disk"] = True
    return entry | _source(collection, vector.name)


def _source(collection: LiveCollection, name: str) -> dict:
    recorded = collection.recorded_model(name) or {}
    settings = recorded.get("model_settings")
    if not settings:  # a name recorded without settings is kept; none at all: validation asks for it, naming `qmspec import`
        return {"model": {"name": recorded["model"]} if recorded.get("model") else {}}
    model = {"name": settings["name"], "backend": settings["backend"]}
    for key in ("revision", "trust_remote_code", "max_seq_length", "prompts", "truncate_dim"):  # never a local path
        if settings.get(key):
            model[key] = settings[key]
    if recorded.get("matryoshka"):
        model["matryoshka"] = True
    if settings.get("normalize") is False:
        model["normalize"] = False
    model |= {key: value for key, value in (settings.get("options") or {}).items() if key in _model_keys()}  # as a spec writes them
    text_field = recorded.get("text_field")
    return {"model": model} | ({"text_field": text_field} if text_field and text_field != DEFAULT_TEXT_FIELD else {})


def _model_keys() -> set:
    return set(load_schema()["$defs"]["model"]["properties"])


def to_yaml(spec: dict, schema: str) -> str:
    """The spec as YAML under a modeline pointing editors at `schema` (a path from the file's folder, or a URL)."""
    return HEADER.format(schema=schema) + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
