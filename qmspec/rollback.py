"""Undo the latest apply of an alias (point it back, restore settings changed in place, optionally drop what it
created), or finish it: delete the collection the alias served before, once the apply was verified."""
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


def cleanup(client, journal: Journal, log: Callable[[str], None]) -> str | None:
    """Delete the collection the alias served before the last apply: only after that apply succeeded (so it was
    verified and swapped), while the alias still points at the new collection, and no other alias uses the old."""
    active = journal.record.get("active")
    if not active or active["status"] != "succeeded":
        raise RollbackRefused(f"nothing to clean up for alias {journal.alias}: the last apply "
                              f"{'is ' + active['status'] if active else 'is not recorded'}; cleanup follows a successful apply")
    plan = Plan.from_dict(active["plan"])
    old = active.get("previous_alias_target", active.get("alias_before"))
    if not any(step["kind"] == "verify" and step["status"] == "done" for step in active["steps"]):
        raise RollbackRefused(f"the last apply of {journal.alias} ran no verification; delete {old} by hand if you are sure")
    if old is None or old == plan.collection or not client.collection_exists(old):
        log(f"nothing to clean up: {old or 'no previous collection'} is gone or still serving")
        return None
    current = current_alias_target(client, plan.alias)
    if current != plan.collection:
        raise RollbackRefused(f"alias {plan.alias} serves {current}, not {plan.collection}: the migration was rolled back or moved")
    serving = [a.alias_name for a in client.get_aliases().aliases if a.collection_name == old]
    if serving:
        raise RollbackRefused(f"not deleting {old}: alias(es) {', '.join(serving)} still point at it (rule DS102)")
    client.delete_collection(old)
    active["cleaned_up"] = old
    journal.save()
    log(f"deleted collection {old} (served {plan.alias} before plan {active['plan_hash']}, verified and swapped)")
    return old
