"""`qmspec drift`: where live state has moved away from the spec and from the last recorded apply (someone
re-pointed an alias or changed settings by hand). Pure: spec, live state and journal record in, findings out."""
from __future__ import annotations

import json

from ..planning.diff import diff_collection
from ..planning.livestate import LiveState
from ..planning.record import AliasRecord
from ..planning.spec import Spec
from .render import compact


def drift(spec: Spec, live: LiveState, record: AliasRecord) -> list[dict]:
    found = []
    serving = live.aliases.get(spec.alias)
    if serving != spec.collection:
        found.append({"against": "spec", "what": "alias", "detail": f"alias {spec.alias} serves {serving}, the spec says {spec.collection}"})
    collection = live.collections.get(spec.collection)
    if collection is None:
        found.append({"against": "spec", "what": "collection", "detail": f"collection {spec.collection} does not exist"})
    else:
        for change in diff_collection(spec, collection):
            where = ".".join(part for part in (change.vector, change.field) if part) or change.kind
            found.append({"against": "spec", "what": change.kind, "detail": f"{where}: live {compact(change.old)}, spec {compact(change.new)}"})
    last = record.active
    if last and last.status in ("succeeded", "rolled_back") and serving != last.alias_after:
        found.append({"against": "last apply", "what": "alias",
                      "detail": f"alias {spec.alias} serves {serving}; the last apply ({last.plan_hash}, {last.status}) left it on {last.alias_after}"})
    return found


def render_drift(alias: str, found: list[dict], fmt: str, clean: str) -> str:
    if fmt == "json":
        return json.dumps({"format": 1, "alias": alias, "drift": found}, indent=2) + "\n"
    if fmt == "markdown":
        if not found:
            return f"### qmspec drift: `{alias}`\n\n{clean}\n"
        rows = [f"| {d['against']} | {d['what']} | {d['detail'].replace('|', chr(92) + '|')} |" for d in found]
        return "\n".join([f"### qmspec drift: `{alias}`", "", "| against | what | detail |", "|---|---|---|", *rows]) + "\n"
    return ("\n".join(f"drift from the {d['against']}: {d['detail']}" for d in found) if found else clean) + "\n"
