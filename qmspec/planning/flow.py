"""Values as a spec writes them, for every message a person reads: plans, verify reports, drift, errors."""
from __future__ import annotations

import json


def compact(value) -> str:
    """A value as YAML flow style, the way specs write it: {m: 16}, true, "query: " (quoted where YAML would need it)."""
    if value is None:
        return "unset"
    if value == {}:
        return "none"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(compact, value)) + "]"
    if isinstance(value, str) and (not value or value != value.strip() or ": " in value or value[0] in "{[&*!|>'\"%@`#,"):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
