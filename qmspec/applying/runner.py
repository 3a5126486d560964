"""Walk a plan: run every step not yet done through its executor, journaling after every step and every batch
checkpoint, so that a crashed apply resumes where it stopped and never loses or duplicates a point.

Record progress after the effect, check for it before: every executor first looks at what Qdrant already has,
so running it twice gives the same result.
"""
from __future__ import annotations

import time
from typing import Callable

from ..errors import redact
from ..logs import event, logger
from ..planning.plan import CopyPoints, LoadFiles, Plan, Step, SwapAlias, SwitchQuery, Verify
from ..project import Target
from ..sourcefiles import check_source_files
from .engines import InlineEngine
from .hooks import HookFailed, run_hook
from .journal import Journal, fault_point, now
from .records import Records, RecordsMissing
from .steps import ApplyError, Run, execute
from .transfer import SerializedClient
from .verify import VerificationFailed

log = logger(__name__)


def apply_plan(plan: Plan, client, journal: Journal, embedded: bool, title: Callable[[Step], str] = lambda step: step.kind,
               stop_before_swap: bool = False, engine=None, target: Target | None = None) -> str:
    """Run every step not yet done, and return the apply's status: succeeded, or staged when `stop_before_swap`
    stopped it verified, before its alias swap. The caller holds the lock and has checked the plan is fresh or
    resumed; `title` names a step in the log (the workflow passes the plan renderer's titles)."""
    if any(record.status != "pending" for record in journal.active.steps):  # resumed: the files may have changed since
        check_files(plan)
    records, known = open_records(journal)
    if embedded:
        client = SerializedClient(client)
    if journal.active.status == "staged":  # promoted later: what was verified then is verified again now
        for index, step in enumerate(plan.steps):
            if isinstance(step, Verify):
                journal.step(index).status = "again"
    total = len(plan.steps)
    try:
        for index, step in enumerate(plan.steps):
            state = journal.step(index)
            if state.status == "done":
                continue
            if isinstance(step, (SwapAlias, SwitchQuery)) and stop_before_swap:
                journal.finish("staged")
                log.info(f"stopped before {title(step)}: " + ("the new collection is built and verified, the alias is untouched"
                                                              if isinstance(step, SwapAlias) else
                                                              "the new vectors are filled and verified, the recorded query is untouched"))
                return "staged"
            swaps = isinstance(step, (SwapAlias, SwitchQuery))
            try:
                run_hook(plan, journal, "pre_apply", title(step))
                if swaps:
                    run_hook(plan, journal, "pre_swap", title(step))
            except HookFailed as failed:
                journal.finish("failed")
                _on_failure(plan, journal, title(step), str(failed))
                raise
            event(log, "step_started", f"[{index + 1}/{total}] {title(step)}{' (resuming)' if state.checkpoint else ''}",
                  step=index + 1, steps=total, kind=step.kind, title=title(step), resuming=bool(state.checkpoint))
            resumed = state.status != "pending"  # begun before a crash, a failure or an interruption
            state.status, state.started_at = "running", now()
            journal.save()
            started = time.monotonic()
            run = Run(client, embedded, journal, index, records, known, resumed, engine or InlineEngine(), target)
            try:
                result = execute(step, run)
            except VerificationFailed as refused:
                state.status = "failed"
                journal.finish("verify_failed")
                _on_failure(plan, journal, title(step), str(refused))
                raise
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as CI sends on cancel: journal what was done, then stop
                state.status = "interrupted"
                journal.finish("interrupted")
                raise
            except Exception as error:  # noqa: BLE001 - Qdrant client errors are mostly plain ValueError / HTTP errors
                state.status, state.error = "failed", redact(str(error).splitlines()[0][:500] if str(error) else type(error).__name__)
                journal.finish("failed")
                _on_failure(plan, journal, title(step), state.error)
                raise ApplyError(_failure_message(title(step), index, error)) from None
            fault_point("effect")
            state.status, state.result, state.finished_at = "done", result or {}, now()
            journal.save()
            elapsed = time.monotonic() - started
            event(log, "step_finished", f"      done in {elapsed:.1f}s", step=index + 1, steps=total, kind=step.kind,
                  seconds=round(elapsed, 3), result=state.result)
            if swaps:
                run_hook(plan, journal, "post_swap", title(step))
        journal.finish("succeeded")
        records.discard()  # nothing reads them again: rollback points the alias back, cleanup deletes the old collection
        return "succeeded"
    finally:
        records.baseline.close()


def _on_failure(plan: Plan, journal: Journal, step: str, error: str) -> None:
    """The on_failure hook, whose own failure is only logged: the step's failure is what the caller reports."""
    try:
        run_hook(plan, journal, "on_failure", step, error)
    except Exception as failed:  # noqa: BLE001 - a broken notifier must not hide why the apply stopped
        log.warning(f"      hook on_failure could not run: {failed}")


def check_files(plan: Plan) -> None:
    """Read every source record once before anything is written: a bad line or a duplicate id fails at the start."""
    for step in plan.steps:
        if isinstance(step, LoadFiles):
            check_source_files(step.files, step.id_field, tuple(sorted({how.text_field for how in step.embed.values()})))


def open_records(journal: Journal) -> tuple[Records, bool]:
    """The active apply's records, and whether its baseline is known. An apply begun by qmspec 0.1.0 kept its baseline
    relative to the working directory: it is read into the records once. One begun before baselines existed has
    none: there the source wins at the cutover, as it did then. A baseline this apply kept that is gone now is
    refused: resuming without it could overwrite what the application wrote."""
    active, records = journal.active, journal.records()
    copied = any(isinstance(step, CopyPoints) and record.status != "pending" for step, record in zip(active.plan.steps, active.steps))
    if active.records is None:
        known = records.adopt_legacy() or not copied
        active.records = journal.store.kind
        journal.save()
        return records, known
    wrote = sum((record.checkpoint or {}).get("copied") or (record.result or {}).get("points", 0)
                for step, record in zip(active.plan.steps, active.steps) if isinstance(step, CopyPoints))
    if wrote and not records.baseline.exists:
        raise RecordsMissing(f"the baseline of plan {active.plan_hash} (what it copied into {active.plan.collection}, which the "
                             f"cutover needs to keep the application's writes) is not in {records.where}: this apply began where "
                             "its records are kept elsewhere (another working directory or --state-dir); resume it there, or "
                             "roll back and apply again")
    return records, True


def _failure_message(title: str, index: int, error: Exception) -> str:
    return (f"step {index + 1} ({title}) failed: {redact(str(error).splitlines()[0][:500] if str(error) else type(error).__name__)}\n"
            "steps before it are done and recorded; fix the cause and run the same `qmspec apply` again to resume, "
            "or `qmspec rollback SPEC` to go back")
