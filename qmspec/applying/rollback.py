"""Undo the latest apply of an alias (point it back, restore settings changed in place, optionally drop what it
created), or finish it: delete the collection the alias served before, once the apply was verified.

Each step type has its reverse (alembic's `reverse()`), registered in the `reverse` table; a rollback walks the
applied plan backwards and asks each step what undoes it, so the alias goes back first and what the apply created
goes last."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import QmspecError
from ..logs import logger
from ..planning.livestate import METADATA_KEY
from ..planning.plan import (BackfillVector, CatchUp, CatchUpVector, CopyPoints, CreateCollection, CreateShardKeys, CreateVector,
                             DeleteCollection, DeleteVector, EmbedVectors, LearnAdapter, LoadFiles, RestoreIndexing, SetPayloadIndex, Step,
                             StepTable, SwapAlias, SwitchQuery, UpdateCollection, Verify)
from ..planning.record import ApplyRecord, StepRecord
from . import qdrant_ops
from .journal import Journal

log = logger(__name__)


class RollbackRefused(QmspecError):
    pass


@dataclass(frozen=True)
class Undo:
    """One thing a rollback does: said first (the preview a person approves), then done."""

    description: str
    perform: Callable[[], object]  # may return a note to add to the description


@dataclass(frozen=True)
class Undoing:
    """What every reverse needs to know: the client, the apply, the collections that exist now, where the alias is."""

    client: object
    active: ApplyRecord
    existing: frozenset
    alias_now: str | None
    drop_new: bool
    records: object = None  # the apply's records: the ledgers of vectors it added in place

    @property
    def moved(self) -> bool:
        """Whether this apply moved the alias (its swap ran, even if its crash kept the journal from saying so)."""
        plan = self.active.plan
        return self.alias_now == plan.collection and self.alias_now != self.active.alias_before

    @property
    def created_here(self) -> set:
        return {step.collection for step in self.active.plan.steps if isinstance(step, CreateCollection)}

    def changed_in_place(self, step: Step, record: StepRecord) -> bool:
        """A step that changed a collection this apply did not create (and that still exists)."""
        return record.status != "pending" and step.collection in self.existing - self.created_here


reverse = StepTable("reverse")  # (step, its journal record, Undoing) -> the Undo actions that take it back


@reverse.register(SwapAlias)
def _reverse_swap(step: SwapAlias, record: StepRecord, undoing: Undoing) -> list[Undo]:
    if not undoing.moved:
        return []
    before, client = undoing.active.alias_before, undoing.client
    if before is not None and before not in undoing.existing:
        raise RollbackRefused(f"alias {step.alias} served {before} before this apply, and {before} no longer exists "
                              "(deleted by cleanup?); there is nothing to point it back at. Plan a new migration instead")
    current = undoing.alias_now
    return [Undo(f"alias {step.alias}: {current} -> {before}" if before else f"alias {step.alias} removed (it did not exist before)",
                 lambda: qdrant_ops.point_alias(client, step.alias, current, before))]


@reverse.register(UpdateCollection)
def _reverse_update(step: UpdateCollection, record: StepRecord, undoing: Undoing) -> list[Undo]:
    if not undoing.changed_in_place(step, record):
        return []

    def restore() -> str:
        return "" if qdrant_ops.update_collection(undoing.client, step.collection, step.previous) else " (Qdrant reported them not applied)"

    return [Undo(f"{step.collection}: settings restored", restore)]


@reverse.register(SetPayloadIndex)
def _reverse_index(step: SetPayloadIndex, record: StepRecord, undoing: Undoing) -> list[Undo]:
    if not undoing.changed_in_place(step, record):
        return []
    return [Undo(f"{step.collection}: index on {step.field!r} restored to {step.previous or 'none'}",
                 lambda: qdrant_ops.set_payload_index(undoing.client, step.collection, step.field, step.previous))]


@reverse.register(CreateCollection)
def _reverse_create(step: CreateCollection, record: StepRecord, undoing: Undoing) -> list[Undo]:
    """Delete what the apply created where no alias ever served it (it failed or stopped before its swap), or with
    `--drop-new` whatever it created that no alias serves now."""
    never_served = undoing.active.unfinished and not undoing.moved
    created = (record.result or {}).get("created", record.status != "pending")
    if not (created and step.collection in undoing.existing and (undoing.drop_new or never_served)):
        return []
    alias = undoing.active.plan.alias
    serving = [name for name in qdrant_ops.aliases_of(undoing.client, step.collection) if not (undoing.moved and name == alias)]
    if serving:
        raise RollbackRefused(f"not dropping {step.collection}: alias(es) {', '.join(serving)} point at it")
    return [Undo(f"collection {step.collection} deleted" + (" (created by this apply, never served)" if never_served else ""),
                 lambda: undoing.client.delete_collection(step.collection))]


@reverse.register(SwitchQuery)
def _reverse_switch(step: SwitchQuery, record: StepRecord, undoing: Undoing) -> list[Undo]:
    """The query recorded before, and with it the vectors backfilled and released then, as they were."""
    before = (record.result or {}).get("before", (record.checkpoint or {}).get("before"))
    if before is None or step.collection not in undoing.existing:
        return []
    shown = f"{step.previous.get('using') or 'fused'}" if step.previous else "none"
    return [Undo(f"{step.collection}: recorded query restored ({shown}); deploy the application's query back with it",
                 lambda: qdrant_ops.update_collection(undoing.client, step.collection, {"metadata": {METADATA_KEY: before or None}}))]


@reverse.register(CreateVector)
def _reverse_create_vector(step: CreateVector, record: StepRecord, undoing: Undoing) -> list[Undo]:
    """A vector this apply added in place is deleted with what was backfilled into it; the collection's other vectors
    and the points are untouched."""
    created = (record.result or {}).get("created", (record.checkpoint or {}).get("creating", False))
    if not created or step.collection not in undoing.existing or step.vector not in qdrant_ops.vector_names(undoing.client, step.collection):
        return []

    def remove() -> None:
        undoing.client.delete_vector_name(step.collection, step.vector)
        if undoing.records is not None:
            undoing.records.ledger(step.collection, step.vector).discard()

    return [Undo(f"{step.collection}: vector {step.vector} deleted (added in place by this apply)", remove)]


@reverse.register(CreateShardKeys, LoadFiles, LearnAdapter, CopyPoints, EmbedVectors, CatchUp, BackfillVector, CatchUpVector, DeleteVector,
                  RestoreIndexing, Verify, DeleteCollection)
def _nothing_to_reverse(step: Step, record: StepRecord, undoing: Undoing) -> list[Undo]:
    """Points written into a collection the apply created go with it, vectors backfilled in place with their vector; a
    deleted collection or vector cannot come back."""
    return []


def plan_rollback(client, journal: Journal, drop_new: bool) -> list[Undo]:
    """What undoing the latest apply takes, step by step from the last: point the alias back if it moved, restore
    settings changed in place, and delete the collections the apply created where no alias ever served them."""
    active = journal.active
    if not active or active.status == "rolled_back":
        raise RollbackRefused(f"nothing to roll back for alias {journal.alias}: no apply is recorded since the last rollback")
    existing = frozenset(c.name for c in client.get_collections().collections)
    undoing = Undoing(client, active, existing, qdrant_ops.current_alias_target(client, active.plan.alias), drop_new, journal.records())
    return [undo for step, record in reversed(list(zip(active.plan.steps, active.steps))) for undo in reverse(step, record, undoing)]


def rollback(journal: Journal, undo: list[Undo]) -> list[str]:
    """Do what plan_rollback listed, then close the apply as rolled back: its journal no longer holds the alias, and
    its records are dropped. Returns what was done, one line each."""
    done = []
    for action in undo:
        note = action.perform()
        done.append(action.description + (note if isinstance(note, str) else ""))
        log.info(done[-1])
    journal.finish("rolled_back")
    journal.records().discard()
    return done


def replaced_collection(active: ApplyRecord | None) -> str | None:
    """The collection an apply moved the alias away from: what `qmspec cleanup` would delete."""
    if active is None or active.alias_before == active.plan.collection:
        return None
    return active.alias_before


def cleanup(client, journal: Journal) -> str | None:
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
        log.info(f"nothing to clean up: {old or 'no previous collection'} is gone or still serving")
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
    log.info(f"deleted collection {old} (served {plan.alias} before plan {active.plan_hash}, verified and swapped)")
    return old
