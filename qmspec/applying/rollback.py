"""Undo the latest apply of an alias (point it back, restore settings changed in place, optionally drop what it
created), or finish it: delete the collection the alias served before, once the apply was verified."""
from __future__ import annotations

from typing import Callable

from ..errors import QmspecError
from ..planning.plan import CreateCollection, UpdateCollection
from ..planning.record import ApplyRecord
from . import qdrant_ops
from .journal import Journal


class RollbackRefused(QmspecError):
    pass


def rollback(client, journal: Journal, drop_new: bool, log: Callable[[str], None]) -> dict:
    active = journal.active
    if not active or active.status == "rolled_back":
        raise RollbackRefused(f"nothing to roll back for alias {journal.alias}: no apply is recorded since the last rollback")
    plan = active.plan
    before = active.alias_before
    current = qdrant_ops.current_alias_target(client, plan.alias)
    existing = {c.name for c in client.get_collections().collections}
    actions = []
    if current == plan.collection and current != before:
        if before is not None and before not in existing:
            raise RollbackRefused(f"alias {plan.alias} served {before} before this apply, and {before} no longer exists "
                                  "(deleted by cleanup?); there is nothing to point it back at. Plan a new migration instead")
        qdrant_ops.point_alias(client, plan.alias, current, before)
        actions.append(f"alias {plan.alias}: {current} -> {before}" if before else f"alias {plan.alias} removed (it did not exist before)")
    for step, record in zip(plan.steps, active.steps):
        if isinstance(step, UpdateCollection) and record.status != "pending" and step.collection in existing:
            applied = qdrant_ops.update_collection(client, step.collection, step.previous)
            actions.append(f"{step.collection}: settings restored" + ("" if applied else " (Qdrant reported them not applied)"))
    if drop_new:
        actions += _drop_created(client, active, existing)
    journal.finish("rolled_back")
    for action in actions:
        log(action)
    return {"actions": actions}


def _drop_created(client, active: ApplyRecord, existing: set) -> list[str]:
    dropped = []
    for step, record in zip(active.plan.steps, active.steps):
        created = (record.result or {}).get("created", record.status != "pending")
        if isinstance(step, CreateCollection) and created and step.collection in existing:
            serving = qdrant_ops.aliases_of(client, step.collection)
            if serving:
                raise RollbackRefused(f"not dropping {step.collection}: alias(es) {', '.join(serving)} point at it")
            client.delete_collection(step.collection)
            dropped.append(f"collection {step.collection} deleted")
    return dropped


def replaced_collection(active: ApplyRecord | None) -> str | None:
    """The collection an apply moved the alias away from: what `qmspec cleanup` would delete."""
    if active is None or active.alias_before == active.plan.collection:
        return None
    return active.alias_before


def cleanup(client, journal: Journal, log: Callable[[str], None]) -> str | None:
    """Delete the collection the alias served before the last apply: only after that apply succeeded (so it was
    verified and swapped), while the alias still points at the new collection, and no other alias uses the old."""
    active = journal.active
    if not active or active.status != "succeeded":
        raise RollbackRefused(f"nothing to clean up for alias {journal.alias}: the last apply "
                              f"{'is ' + active.status if active else 'is not recorded'}; cleanup follows a successful apply")
    plan = active.plan
    old = active.alias_before
    if not active.succeeded("verify"):
        raise RollbackRefused(f"the last apply of {journal.alias} ran no verification; delete {old} by hand if you are sure")
    if old is None or old == plan.collection or not client.collection_exists(old):
        log(f"nothing to clean up: {old or 'no previous collection'} is gone or still serving")
        return None
    current = qdrant_ops.current_alias_target(client, plan.alias)
    if current != plan.collection:
        raise RollbackRefused(f"alias {plan.alias} serves {current}, not {plan.collection}: the migration was rolled back or moved")
    serving = qdrant_ops.aliases_of(client, old)
    if serving:
        raise RollbackRefused(f"not deleting {old}: alias(es) {', '.join(serving)} still point at it (rule DS102)")
    client.delete_collection(old)
    active.cleaned_up = old
    journal.save()
    log(f"deleted collection {old} (served {plan.alias} before plan {active.plan_hash}, verified and swapped)")
    return old
