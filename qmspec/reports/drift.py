"""`qmspec drift`: where live state has moved away from the spec and from the last recorded apply (someone
re-pointed an alias or changed settings by hand). Pure: spec, live state and journal record in, findings out."""
from __future__ import annotations

import json

from ..planning.capabilities import NOT_APPLICABLE_EMBEDDED
from ..planning.diff import applicable, diff_collection, setting_name
from ..planning.livestate import LiveState, recorded
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
            if applicable(change, live.embedded):
                found.append({"against": "spec", "what": change.kind, "detail": f"{_where(change)}: live {compact(change.old)}, spec {compact(change.new)}"})
        query, model = recorded(collection.metadata, "query"), recorded(collection.metadata, "query_model")
        if query and spec.query_shape and (query != spec.query_shape or (model and spec.query_model and model != spec.query_model)):
            found.append({"against": "spec", "what": "query", "detail": f"the application's recorded query is {compact(query)}"
                          f"{f' ({model})' if model else ''}, the spec says {compact(spec.query_shape)}"
                          f"{f' ({spec.query_model})' if spec.query_model else ''}: applying the spec switches it"})
    last = record.active
    if last and last.status in ("succeeded", "rolled_back") and serving != last.alias_after:
        found.append({"against": "last apply", "what": "alias",
                      "detail": f"alias {spec.alias} serves {serving}; the last apply ({last.plan_hash}, {last.status}) left it on {last.alias_after}"})
    return found


def not_applicable(spec: Spec, live: LiveState) -> list[str]:
    """Settings the spec states that the connected store ignores: said once, never reported as drift."""
    collection = live.collections.get(spec.collection)
    if collection is None:
        return []
    ignored = sorted({_where(change) for change in diff_collection(spec, collection) if not applicable(change, live.embedded)})
    return [f"{name}: {NOT_APPLICABLE_EMBEDDED}" for name in ignored]


def _where(change) -> str:
    parts = (change.vector, setting_name(change), change.field if setting_name(change) != change.field else None)
    return ".".join(part for part in parts if part) or change.kind


def render_drift(alias: str, found: list[dict], fmt: str, clean: str, notes: list[str] = ()) -> str:
    if fmt == "json":
        return json.dumps({"format": 1, "alias": alias, "drift": found, "not_applicable": list(notes)}, indent=2) + "\n"
    if fmt == "markdown":
        tail = "".join(f"\n- {note}" for note in notes)
        tail = f"\n{tail}\n" if tail else ""
        if not found:
            return f"### qmspec drift: `{alias}`\n\n{clean}\n{tail}"
        rows = [f"| {d['against']} | {d['what']} | {d['detail'].replace('|', chr(92) + '|')} |" for d in found]
        return "\n".join([f"### qmspec drift: `{alias}`", "", "| against | what | detail |", "|---|---|---|", *rows]) + "\n" + tail
    lines = [f"drift from the {d['against']}: {d['detail']}" for d in found] or [clean]
    return "\n".join(lines + [f"note: {note}" for note in notes]) + "\n"
