"""The spec's hooks (plan.Hook): the application's own steps of a cutover, run around the plan's steps.

Each runs once per apply: its result is journaled, so a resumed apply (on this runner or another) does not run a
passed hook again. It runs in its own process group, from the spec's folder, with the apply's facts in QMSPEC_*
variables and only the parts of qmspec's environment a shell needs (PATH, HOME, the locale) plus the variables the
spec names: a hook is handed no key the spec did not give it. Its output goes to the log, scrubbed; at its timeout
the whole group is stopped.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ..errors import QmspecError, redact, remember_secret
from ..logs import event, logger
from ..planning.plan import Hook, Plan
from .journal import Journal, now

log = logger(__name__)
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class HookFailed(QmspecError):
    pass


def run_hook(plan: Plan, journal: Journal, point: str, step: str = "", error: str = "") -> None:
    """Run the plan's hook at `point` unless this apply already passed it; a failure raises HookFailed, except for
    `post_swap` and `on_failure`, whose failure is logged (the swap is done; the failure being reported is the news)."""
    hook = plan.hook(point)
    done = (journal.active.hooks or {}).get(point) if journal.active else None
    if hook is None or (point != "on_failure" and (done or {}).get("status") == "passed"):
        return
    facts = {"QMSPEC_HOOK": point, "QMSPEC_ALIAS": plan.alias, "QMSPEC_COLLECTION": plan.collection,
             "QMSPEC_PREVIOUS": plan.prior.alias_target or "", "QMSPEC_PLAN": plan.hash, "QMSPEC_STEP": step,
             "QMSPEC_SPEC": plan.spec_file} | ({"QMSPEC_ERROR": redact(error)} if error else {})
    event(log, "hook_started", f"hook {point}: {hook.run}", hook=point, run=hook.run)
    started = time.monotonic()
    status, code, output = _run(hook, facts, Path(plan.spec_file).resolve().parent if plan.spec_file else Path.cwd())
    for line in output.splitlines()[-50:]:
        log.info(f"      {point}| {line}")
    seconds = round(time.monotonic() - started, 3)
    journal.active.hooks = {**(journal.active.hooks or {}), point: {"status": status, "exit_code": code, "seconds": seconds, "at": now()}}
    journal.save()
    event(log, "hook_finished", f"      hook {point}: {status}" + (f" (exit {code})" if code not in (0, None) else "") + f" in {seconds:.1f}s",
          hook=point, status=status, exit_code=code, seconds=seconds)
    if status != "passed" and point in ("pre_apply", "pre_swap"):
        said = f"timed out after {hook.timeout_s:.0f}s" if status == "timed_out" else f"exited {code}"
        raise HookFailed(f"hook {point} ({hook.run}) {said}, so the apply stopped before {step or 'its first step'}; the apply is open: "
                         "fix the cause and run the same `qmspec apply` again (the hook runs again), or `qmspec rollback SPEC`")


def _run(hook: Hook, facts: dict, folder: Path) -> tuple[str, int | None, str]:
    environment = {name: os.environ[name] for name in (*PASSED_THROUGH, *hook.env) if name in os.environ}
    for name in hook.env:  # what the spec hands a hook is still never printed: its output is scrubbed of it
        if name in os.environ:
            remember_secret(name, os.environ[name])
    process = subprocess.Popen(hook.run, shell=True, cwd=folder, env=environment | facts, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=hook.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return "timed_out", None, redact(output or "")
    return ("passed" if process.returncode == 0 else "failed"), process.returncode, redact(output or "")
