"""Deciding what an `apply` does before it does anything: resume an unfinished apply, refuse a stale or
foreign plan, recognise an already applied one, or start fresh. Pure given the journal record and a way to
read live state, so the command line stays thin and this stays testable."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .livestate import LiveState
from .plan import Plan
from .planner import plan_migration
from .record import AliasRecord
from .spec import Spec


@dataclass(frozen=True)
class Decision:
    action: str  # fresh, resume, nothing, refused, stale, blocked
    plan: Plan | None
    message: str = ""


def decide(record: AliasRecord, spec: Spec | None, saved: Plan | None, read_live: Callable[[list[str], list[str]], LiveState],
           spec_file: str | None = None, models: dict | None = None) -> Decision:
    pending = record.unfinished()
    if pending:
        recorded = pending.plan
        same = saved.hash == pending.plan_hash if saved else spec.spec_hash == recorded.spec_hash
        if same:
            return Decision("resume", recorded, f"resuming plan {pending.plan_hash} ({pending.status} after {pending.steps_done} of "
                                                f"{len(recorded.steps)} steps)")
        return Decision("blocked", recorded,
                        f"an apply of plan {pending.plan_hash} (spec hash {recorded.spec_hash}) for alias {recorded.alias} is "
                        f"unfinished ({pending.status}); finish it by applying the same spec or plan again, "
                        "or undo it with `qmspec rollback`")
    if saved is not None:
        if record.already_applied(saved.hash):
            return Decision("nothing", saved, f"plan {saved.hash} was already applied; nothing to do")
        live = read_live(saved.prior["collections"], [saved.alias], _files(saved))
        reason = saved.stale_reason(live)
        if reason:
            return Decision("stale", saved, f"stale plan: {reason}; run `qmspec plan` again")
        return _fresh(saved)
    live = read_live([name for name in (spec.collection, spec.source.collection) if name], [spec.alias], spec.source.files)
    return _fresh(plan_migration(spec, live, spec_file=spec_file, models=models))


def _fresh(plan: Plan) -> Decision:
    if plan.refused:
        return Decision("refused", plan, "plan refused by a safety rule")
    if not plan.steps:
        return Decision("nothing", plan, "no changes: live state matches the spec")
    return Decision("fresh", plan)


def _files(plan: Plan) -> tuple[str, ...]:
    return tuple(f for step in plan.steps for f in getattr(step, "files", ()))
