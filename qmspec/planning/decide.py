"""Deciding what an `apply` does before it does anything: resume an unfinished apply, refuse a stale or
foreign plan, recognise an already applied one, or start fresh. Pure given the journal record and a way to
read live state, so the command line stays thin and this stays testable."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from .livestate import LiveState
from .plan import Plan
from .planner import plan_migration
from .modelfacts import ModelFacts
from .record import AliasRecord
from .spec import Spec, parse_spec


@dataclass(frozen=True)
class Decision:
    action: str  # fresh, resume, nothing, refused, stale, tampered, blocked
    plan: Plan | None
    message: str = ""


def decide(record: AliasRecord, spec: Spec | None, saved: Plan | None, read_live: Callable[[list[str], list[str]], LiveState],
           spec_file: str | None = None, models: dict | None = None, environ: dict | None = None, against: dict | None = None) -> Decision:
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
        return check_saved(saved, read_live, environ, against)
    return _fresh(plan_migration(spec, _read_for(spec, read_live), spec_file=spec_file, models=models, against=against))


def check_saved(saved: Plan, read_live: Callable, environ: dict | None = None, against: dict | None = None) -> Decision:
    """A saved plan is checked, not trusted: its spec is planned again against live state now, with the facts the
    preflight gave then, and it runs only if that yields exactly its steps (Terraform's saved plans). Findings and
    guards come from that planning, never from the file."""
    spec = parse_spec(saved.spec_text, saved.spec_file, os.environ if environ is None else environ, saved.env)
    if saved.against and against and saved.against["where"] != against["where"]:  # Terraform binds a plan to its backend
        return Decision("stale", saved, f"stale plan: it was made against {saved.against['kind']} {saved.against['where']}, and this "
                                        f"runs against {against['kind']} {against['where']}; plan again against this one")
    disagreement = header_disagreement(saved, spec)
    if disagreement:
        return Decision("tampered", saved, f"the saved plan is not what its spec plans to: {disagreement}; plan again and review the new file")
    live = _read_for(spec, read_live)
    replanned = plan_migration(spec, live, spec_file=saved.spec_file,
                               models={name: ModelFacts(**facts) for name, facts in saved.models.items()}, against=against)
    if live.fingerprint(replanned.prior.collections, saved.alias) != saved.prior.fingerprint:
        reason = saved.stale_reason(live) or "the collections it touches changed since it was made"
        return Decision("stale", saved, f"stale plan: {reason}; run `qmspec plan` again")
    difference = first_difference(saved.steps, replanned.steps)
    if difference:
        return Decision("tampered", saved, f"the saved plan is not what its spec plans to on this live state: {difference}; "
                                           "plan again and review the new file")
    return _fresh(replanned)


def header_disagreement(saved: Plan, spec: Spec) -> str | None:
    """What a saved plan says of itself (its alias, collection and spec hash: what decide the lock, the journal and the
    swap) against the spec it carries, or None where they agree."""
    for name, ours, theirs in (("alias", saved.alias, spec.alias), ("collection", saved.collection, spec.collection),
                               ("spec hash", saved.spec_hash, spec.spec_hash)):
        if ours != theirs:
            return f"its {name} is {ours!r}, the spec it carries says {theirs!r}"
    return None


def saved_header_problem(saved: Plan, environ: dict | None = None) -> str | None:
    """header_disagreement of a saved plan with its own spec, before anything is opened under its alias."""
    return header_disagreement(saved, parse_spec(saved.spec_text, saved.spec_file, os.environ if environ is None else environ, saved.env))


def first_difference(saved: tuple, planned: tuple) -> str | None:
    for number, (ours, theirs) in enumerate(zip(saved, planned), 1):
        if ours != theirs:
            return (f"step {number} is {ours.kind} on {', '.join(ours.collections) or '-'} in the file, {theirs.kind} on "
                    f"{', '.join(theirs.collections) or '-'} when planned")
    if len(saved) != len(planned):
        return f"the file has {len(saved)} steps, planning gives {len(planned)}"
    return None


def _read_for(spec: Spec, read_live: Callable) -> LiveState:
    return read_live([name for name in (spec.collection, spec.source.collection) if name], [spec.alias], spec.source.files)


def _fresh(plan: Plan) -> Decision:
    if plan.refused:
        return Decision("refused", plan, "plan refused by a safety rule")
    if not plan.steps:
        return Decision("nothing", plan, "no changes: live state matches the spec")
    return Decision("fresh", plan)

