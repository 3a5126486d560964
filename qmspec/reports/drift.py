"""`qmspec drift`: where live state has moved away from the spec and from the last recorded apply (someone
re-pointed an alias or changed settings by hand). Pure: spec, live state and journal record in, findings out."""
from __future__ import annotations

from ..planning.diff import diff_collection
from ..planning.livestate import LiveState
from ..planning.record import AliasRecord
from ..planning.spec import Spec


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
            found.append({"against": "spec", "what": change.kind, "detail": f"{where}: live {change.old}, spec {change.new}"})
    last = record.active
    if last and last.status in ("succeeded", "rolled_back") and serving != last.alias_after:
        found.append({"against": "last apply", "what": "alias",
                      "detail": f"alias {spec.alias} serves {serving}; the last apply ({last.plan_hash}, {last.status}) left it on {last.alias_after}"})
    return found
