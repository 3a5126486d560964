"""Undo the latest apply of an alias: point it back at the collection it served before, restore settings an
in-place update changed, and with drop_new delete the collections the apply created."""
from __future__ import annotations

from typing import Callable

from .apply import Journal, current_alias_target, point_alias, update_collection
from .errors import QmspecError
from .plan import CreateCollection, Plan, UpdateCollection


class RollbackRefused(QmspecError):
    pass


def rollback(client, journal: Journal, drop_new: bool, log: Callable[[str], None]) -> dict:
    active = journal.record.get("active")
    if not active or active["status"] == "rolled_back":
        raise RollbackRefused(f"nothing to roll back for alias {journal.alias}: no apply is recorded since the last rollback")
    plan = Plan.from_dict(active["plan"])
    done = {index for index, step in enumerate(active["steps"]) if step["status"] in ("done", "running", "failed")}
    before = active.get("previous_alias_target", active.get("alias_before"))
    current = current_alias_target(client, plan.alias)
    existing = {c.name for c in client.get_collections().collections}
    actions = []
    if current == plan.collection and current != before:
        if before is not None and before not in existing:
            raise RollbackRefused(f"alias {plan.alias} served {before} before this apply, and {before} no longer exists "
                                  "(deleted by cleanup?); there is nothing to point it back at. Plan a new migration instead")
        point_alias(client, plan.alias, current, before)
        actions.append(f"alias {plan.alias}: {current} -> {before}" if before else f"alias {plan.alias} removed (it did not exist before)")
    for index, step in enumerate(plan.steps):
        if isinstance(step, UpdateCollection) and index in done and step.collection in existing:
            applied = update_collection(client, step.collection, step.previous)
            actions.append(f"{step.collection}: settings restored" + ("" if applied else " (Qdrant reported them not applied)"))
    if drop_new:
        actions += _drop_created(client, plan, active, existing)
    journal.finish("rolled_back")
    for action in actions:
        log(action)
    return {"actions": actions}


def _drop_created(client, plan: Plan, active: dict, existing: set) -> list[str]:
    dropped = []
    for index, step in enumerate(plan.steps):
        created = (active["steps"][index].get("result") or {}).get("created", active["steps"][index]["status"] != "pending")
        if isinstance(step, CreateCollection) and created and step.collection in existing:
            serving = [a.alias_name for a in client.get_aliases().aliases if a.collection_name == step.collection]
            if serving:
                raise RollbackRefused(f"not dropping {step.collection}: alias(es) {', '.join(serving)} point at it")
            client.delete_collection(step.collection)
            dropped.append(f"collection {step.collection} deleted")
    return dropped
