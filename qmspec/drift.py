"""`qmspec drift`: where live state has moved away from the spec and from the last recorded apply (someone
re-pointed an alias or changed settings by hand). Pure: spec, live state and journal record in, findings out."""
from __future__ import annotations

from .diff import diff_collection
from .livestate import LiveState
from .spec import Spec


def drift(spec: Spec, live: LiveState, record: dict) -> list[dict]:
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
            found.append({"against": "spec", "what": change.kind, "detail": f"{where}: live {change.old}, spec {change.new}"})
    last = record.get("active")
    if last and last.get("status") in ("succeeded", "rolled_back"):
        expected = last.get("alias_before") if last["status"] == "rolled_back" else last["plan"]["collection"]
        if serving != expected:
            found.append({"against": "last apply", "what": "alias",
                          "detail": f"alias {spec.alias} serves {serving}; the last apply ({last['plan_hash']}, {last['status']}) left it on {expected}"})
    return found
