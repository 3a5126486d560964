"""The journal record of one alias, as typed values: the apply in progress (its plan, each step's status and batch
checkpoint, the collection the alias served before) and the history of finished applies.

Pure data with JSON in and out; `applying/journal.py` saves it after every change. One name per fact: the
collection the alias served before an apply is `alias_before`, whoever reads it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

from ..errors import QmspecError
from .plan import Plan

STATE_FORMAT = 1
STATE_COLLECTION = "qmspec_state"  # where records are kept with `--state qdrant`: bookkeeping, never managed state
UNFINISHED = ("running", "failed", "verify_failed", "interrupted", "staged")  # staged: verified, stopped before the swap


def slug(text: str) -> str:
    """A name for a file: an alias, a store's path or a server URL (without credentials)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "default"


class RecordError(QmspecError):
    """A journal record that this qmspec cannot read."""


@dataclass
class StepRecord:
    kind: str
    status: str = "pending"  # pending, running, done, failed, interrupted
    checkpoint: dict | None = None  # where a batch step stands: scroll offset or file line, and counts
    result: dict | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


@dataclass
class ApplyRecord:
    plan: Plan
    plan_hash: str
    status: str  # running, succeeded, failed, verify_failed, interrupted, staged, rolled_back
    started_at: str
    alias_before: str | None  # the collection the alias served before this apply
    steps: list[StepRecord]
    finished_at: str | None = None
    verification: dict | None = None  # {"passed", "json", "markdown"}: the report of the verify step
    cleaned_up: str | None = None  # the old collection `qmspec cleanup` deleted
    accepted: dict | None = None  # {"reason", "at"}: a person accepted the failed quality gates (apply --accept-quality)
    records: str | None = None  # where its baseline and learned maps are kept (file, qdrant); None: by qmspec 0.1.0
    hooks: dict | None = None  # point -> {"status", "exit_code", "seconds", "at"}: a passed hook is not run again on resume

    @classmethod
    def begin(cls, plan: Plan, at: str, records: str | None = None) -> ApplyRecord:
        return cls(plan=plan, plan_hash=plan.hash, status="running", started_at=at, alias_before=plan.prior.alias_target,
                   steps=[StepRecord(step.kind) for step in plan.steps], records=records)

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    @property
    def steps_done(self) -> int:
        return sum(step.status == "done" for step in self.steps)

    @property
    def swapped(self) -> bool:
        """Whether the alias moved or the old collection went: then only rollback undoes this apply."""
        return self.succeeded("swap_alias") or self.succeeded("delete_collection")

    def succeeded(self, kind: str) -> bool:
        return any(step.kind == kind and step.status == "done" for step in self.steps)

    @property
    def alias_after(self) -> str | None:
        """Where this apply left the alias (or, rolled back, put it back)."""
        return self.alias_before if self.status == "rolled_back" else self.plan.collection


@dataclass
class HistoryEntry:
    plan_hash: str
    spec_hash: str
    status: str
    started_at: str
    finished_at: str | None
    alias_before: str | None
    alias_after: str | None


@dataclass
class AliasRecord:
    alias: str
    active: ApplyRecord | None = None
    history: list[HistoryEntry] = field(default_factory=list)

    def unfinished(self) -> ApplyRecord | None:
        return self.active if self.active and self.active.unfinished else None

    def already_applied(self, plan_hash: str) -> bool:
        return any(entry.plan_hash == plan_hash and entry.status == "succeeded" for entry in self.history)

    def close(self, status: str, at: str) -> None:
        """End the active apply; a succeeded or rolled-back one joins the history."""
        active = self.active
        active.status, active.finished_at = status, at
        if status in ("succeeded", "rolled_back"):
            self.history.append(HistoryEntry(active.plan_hash, active.plan.spec_hash, status, active.started_at,
                                             active.finished_at, active.alias_before, active.alias_after))

    def to_dict(self) -> dict:
        active = None
        if self.active:
            active = {"plan_hash": self.active.plan_hash, "spec_hash": self.active.plan.spec_hash, "plan": self.active.plan.to_dict()}
            active |= {f.name: getattr(self.active, f.name) for f in fields(ApplyRecord) if f.name not in ("plan", "plan_hash", "steps")}
            active["steps"] = [asdict(step) for step in self.active.steps]
        return {"format": STATE_FORMAT, "alias": self.alias, "active": active, "history": [asdict(entry) for entry in self.history]}

    @classmethod
    def from_dict(cls, data: dict) -> AliasRecord:
        if data.get("format") != STATE_FORMAT:
            raise RecordError(f"state format {data.get('format')!r} is not {STATE_FORMAT}: written by another qmspec")
        try:
            active = _active(data["active"]) if data.get("active") else None
            history = [HistoryEntry(**entry) for entry in data.get("history", [])]
        except (KeyError, TypeError) as exc:
            raise RecordError(f"the journal record of alias {data.get('alias')!r} is damaged ({exc})") from None
        return cls(data["alias"], active, history)


def _active(data: dict) -> ApplyRecord:
    known = {f.name for f in fields(ApplyRecord)}
    # journals written before one name per fact kept the swap's own copy of the previous target
    before = data.get("previous_alias_target", data.get("alias_before"))
    values = {key: value for key, value in data.items() if key in known}
    steps = [StepRecord(**{key: value for key, value in step.items() if key in {f.name for f in fields(StepRecord)}})
             for step in data["steps"]]
    return ApplyRecord(**values | {"plan": Plan.from_dict(data["plan"]), "alias_before": before, "steps": steps})
