"""Undo the latest apply of an alias (point it back, restore settings changed in place, optionally drop what it
created), or finish it: delete the collection the alias served before, once the apply was verified."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import QmspecError
from ..planning.plan import CreateCollection, SetPayloadIndex, UpdateCollection
from ..planning.record import ApplyRecord
from . import qdrant_ops
from .journal import Journal


class RollbackRefused(QmspecError):
    pass


@dataclass(frozen=True)
class Undo:
    """One thing a rollback does: said first (the preview a person approves), then done."""

    description: str
    perform: Callable[[], object]  # may return a note to add to the description


def plan_rollback(client, journal: Journal, drop_new: bool) -> list[Undo]:
    """What undoing the latest apply takes: point the alias back if it moved, restore settings changed in place,
    and delete the collections the apply created where no alias ever served them (an apply that failed or stopped
    before its swap), or, with `drop_new`, every collection it created that no alias serves now."""
    active = journal.active
    if not active or active.status == "rolled_back":
        raise RollbackRefused(f"nothing to roll back for alias {journal.alias}: no apply is recorded since the last rollback")
    plan = active.plan
    before = active.alias_before
    current = qdrant_ops.current_alias_target(client, plan.alias)
    existing = {c.name for c in client.get_collections().collections}
    undo = []
    moved = current == plan.collection and current != before
    if moved:
        if before is not None and before not in existing:
            raise RollbackRefused(f"alias {plan.alias} served {before} before this apply, and {before} no longer exists "
                                  "(deleted by cleanup?); there is nothing to point it back at. Plan a new migration instead")
        undo.append(Undo(f"alias {plan.alias}: {current} -> {before}" if before else f"alias {plan.alias} removed (it did not exist before)",
                         lambda: qdrant_ops.point_alias(client, plan.alias, current, before)))
    created_here = {step.collection for step in plan.steps if isinstance(step, CreateCollection)}
    for step, record in zip(plan.steps, active.steps):
        if record.status == "pending" or getattr(step, "collection", None) not in existing - created_here:
            continue
        if isinstance(step, UpdateCollection):
            undo.append(Undo(f"{step.collection}: settings restored", _restore(client, step)))
        elif isinstance(step, SetPayloadIndex):
            undo.append(Undo(f"{step.collection}: index on {step.field!r} restored to {step.previous or 'none'}",
                             lambda step=step: qdrant_ops.set_payload_index(client, step.collection, step.field, step.previous)))
    never_served = active.unfinished and not moved
    for step, record in zip(plan.steps, active.steps):
        created = (record.result or {}).get("created", record.status != "pending")
        if isinstance(step, CreateCollection) and created and step.collection in existing and (drop_new or never_served):
            serving = [alias for alias in qdrant_ops.aliases_of(client, step.collection) if not (moved and alias == plan.alias)]
            if serving:
                raise RollbackRefused(f"not dropping {step.collection}: alias(es) {', '.join(serving)} point at it")
            undo.append(Undo(f"collection {step.collection} deleted" + (" (created by this apply, never served)" if never_served else ""),
                             lambda name=step.collection: client.delete_collection(name)))
    return undo


def _restore(client, step: UpdateCollection) -> Callable[[], str]:
    def restore() -> str:
        return "" if qdrant_ops.update_collection(client, step.collection, step.previous) else " (Qdrant reported them not applied)"

    return restore


def rollback(journal: Journal, undo: list[Undo], log: Callable[[str], None]) -> None:
    """Do what plan_rollback listed, then close the apply as rolled back: its journal no longer holds the alias."""
    for action in undo:
        note = action.perform()
        log(action.description + (note if isinstance(note, str) else ""))
    journal.finish("rolled_back")


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
