"""The JSON Schema of a plan (`qmspec plan --format json`, `--out PLAN.json`), made from the plan's own classes so it
cannot drift from them: schemas/plan.schema.json is this module's output, and a test checks that it still is.

What a policy (OPA/conftest, a CI script) may rely on: the step kinds and their fields, findings with their rule codes
and severities, the estimate, what the plan was made against. Within a major version, fields and kinds are only added.
"""
from __future__ import annotations

import dataclasses
import types
import typing

from .plan import PLAN_FORMAT, STEP_TYPES, Finding, Hook, Plan, Prior
from .rules import RULES

SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


def _type(hint) -> dict:
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type(argument) for argument in arguments if argument is not type(None)]
        found = options[0] if len(options) == 1 else {"anyOf": options}
        return {"anyOf": [found, {"type": "null"}]} if type(None) in arguments else found
    if origin in (tuple, list):
        items = [argument for argument in arguments if argument is not Ellipsis]
        return {"type": "array"} | ({"items": _type(items[0])} if len(items) == 1 else {})
    if origin is dict or hint is dict:
        return {"type": "object"}
    if hint in SCALARS:
        return {"type": SCALARS[hint]} if hint is not float else {"type": "number"}
    if dataclasses.is_dataclass(hint):
        return {"type": "object", "description": (hint.__doc__ or "").strip().split("\n")[0]}
    return {}


def _object(cls, extra: dict | None = None) -> dict:
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for field in dataclasses.fields(cls):
        schema = _type(hints[field.name])
        if field.metadata.get("json_when_none") is not None:  # an absent check is written {}
            schema = {"anyOf": [schema, {"type": "object", "maxProperties": 0}]}
        properties[field.name] = schema
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        if not has_default and not field.metadata.get("json_omit_default"):
            required.append(field.name)
    return {"type": "object", "properties": properties | (extra or {}), "required": required, "additionalProperties": False}


def plan_schema() -> dict:
    steps = []
    for kind, cls in STEP_TYPES.items():
        body = _object(cls, {"kind": {"const": kind}})
        steps.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                      "then": body | {"required": ["kind", *body["required"]],
                                      "description": (cls.__doc__ or "").strip().split("\n")[0]}})
    finding = _object(Finding)
    finding["properties"] |= {"code": {"enum": sorted(RULES)}, "severity": {"enum": ["error", "warning", "info"]}}
    plan = _object(Plan, {"hash": {"type": "string", "pattern": "^[0-9a-f]{16}$", "description": "Of the content: an edit shows."}})
    plan["properties"] |= {
        "format": {"const": PLAN_FORMAT},
        "prior": _object(Prior),
        "steps": {"type": "array", "items": {"type": "object", "required": ["kind"],
                                             "properties": {"kind": {"enum": list(STEP_TYPES)}}, "allOf": steps}},
        "findings": {"type": "array", "items": finding},
        "hooks": {"type": "array", "items": _object(Hook)},
        "estimate": {"type": "object", "description": "points_to_copy, points_to_load, vectors_to_embed, vectors_to_carry, and "
                                                      "per vector the preflight's measured embedding time (`embedding`)"},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://github.com/qmspec/qmspec/schemas/plan.schema.json",
            "title": "qmspec plan",
            "description": "What `qmspec plan --format json` prints and `--out` writes; made by qmspec/planning/plan_schema.py from the "
                           "plan's classes. A policy reads `steps[].kind`, `findings[].code` and `.severity`, `estimate`, `against`.",
            **plan}


if __name__ == "__main__":  # python -m qmspec.planning.plan_schema > schemas/plan.schema.json
    import json

    print(json.dumps(plan_schema(), indent=2))
