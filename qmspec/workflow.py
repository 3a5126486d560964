"""What each command does, as library functions: the command line parses options and calls these, and so can an
Airflow task or a Dagster op (`qmspec.plan`, `qmspec.apply`, ... re-export them). Each returns a typed outcome with
the exit code the command line would end with; a failure is raised as a typed exception (errors.py) carrying the
message a user of the command line sees.

Confirmation and logging are passed in: `confirm(preview) -> bool` is asked before anything changes (the command
line prints the preview and reads `yes`; `auto_approve=True` approves without asking), and `log` receives the
progress lines (default: the `qmspec` logger, which the caller configures).

Exit codes: 0 success or no changes, 1 error, 2 changes pending (with detailed exit codes), 3 refused by a safety
rule or stopped before the swap by a verification gate, 4 a saved plan is stale, 130 interrupted.
"""
from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import PlanFileError, QmspecError, SpecError
from .logs import EVENT, ROOT, forwarded, logger
from .planning.plan import Plan, SwitchQuery
from .planning.spec import SCHEMA_PATH, Spec, load_spec, spec_environments
from .project import Connection, Target, resolve_target

_logger = logger(__name__)  # `log` is the name of the sink callers pass in

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_REFUSED, EXIT_STALE, EXIT_CANCELLED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
DEFAULT_STATE_DIR = ".qmspec/state"


class ApplyBlocked(QmspecError):
    """Another spec's apply of the alias is unfinished: finish it or roll it back first."""


class PlanTampered(PlanFileError):
    """A saved plan is not what its spec plans to on live state now."""


class NotConfirmed(QmspecError):
    """The change was not approved: nothing was done."""


class Cancelled(NotConfirmed):
    """Asked, and the answer was not yes: nothing was done (exit 5, as Terraform's "Apply cancelled.")."""


@dataclass(frozen=True)
class Preview:
    """What a command is about to do, shown before it asks: a plan to render, and lines to say."""

    question: str
    plan: Plan | None = None
    lines: tuple[str, ...] = ()


Confirm = Callable[[Preview], bool]


@dataclass(frozen=True)
class Review:
    """A plan and what the journal and the lock say of its alias (what `qmspec plan` and `qmspec show` print)."""

    plan: Plan
    notes: tuple[str, ...] = ()
    exit_code: int = EXIT_OK
    message: str = ""  # show: why a saved plan is stale or edited


@dataclass(frozen=True)
class ApplyResult:
    status: str  # succeeded, staged, nothing, refused, stale, verify_failed
    exit_code: int
    alias: str
    serving: str | None  # what the alias serves once the apply is over, read back from Qdrant
    plan: Plan | None
    message: str = ""
    report: object = None  # the verification report (applying.verify.Report) where verify ran
    report_files: tuple[str, ...] = ()
    way_out: tuple[str, ...] = ()  # commands that resume, accept or undo a stopped apply
    against: dict | None = None  # what it ran against (the server or the embedded store): see workflow.against

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK


@dataclass(frozen=True)
class RollbackResult:
    alias: str
    plan_hash: str
    done: tuple[str, ...]
    exit_code: int = EXIT_OK


@dataclass(frozen=True)
class CleanupResult:
    alias: str
    deleted: str | None
    exit_code: int = EXIT_OK


@dataclass(frozen=True)
class UnlockResult:
    alias: str
    released: dict | None  # the holder whose lock was released; None: it was not locked
    exit_code: int = EXIT_OK


@dataclass(frozen=True)
class Validation:
    files: tuple[tuple[str, tuple], ...]  # (path, problems)
    warnings: tuple = ()
    exit_code: int = EXIT_OK
    inputs: dict = field(default_factory=dict)  # path -> the files it reads (source records, judgments, queries): what CI watches


# ---------------------------------------------------------------- shared preamble


@dataclass(frozen=True)
class Where:
    """A command's connection and state options, with the command lines its hints name."""

    connection: Connection
    state: object  # applying.session.StateOptions

    def command(self, name: str, source: str) -> str:
        return shlex.join(["qmspec", name, str(source), *self.connection.options(), *self.state.options()])


def _where(env, path, url, api_key_env, state="file", state_dir=DEFAULT_STATE_DIR, lock_timeout=0.0) -> Where:
    from .applying.session import StateOptions

    return Where(Connection(path, url, api_key_env, env), StateOptions(state, state_dir, lock_timeout))


def _spec_and_target(spec_path, where: Where) -> tuple[Spec, Target]:
    spec = load_spec(spec_path, env=where.connection.env)
    return spec, where.connection.target(spec.connection)


def _observe(target: Target, **focus):
    from .live import observe

    return observe(target, **focus)


def against(target: Target, live=None, existed: bool | None = None) -> dict:
    """What a command ran against, as plans and reports open with it (render.against): the server's URL without
    credentials and its version, or the embedded store's absolute path and whether it existed, and the rule of the
    connection precedence that chose it (project.resolve_target)."""
    facts = {"kind": "embedded" if target.embedded else "server", "where": target.where, "chosen_by": target.chosen_by}
    if target.embedded:
        facts["existed"] = os.path.isdir(target.path) if existed is None else existed
    else:
        facts["version"] = live.server_version if live is not None else None
    return facts


class _Version:
    """The server version of an open client, as `against` reads it from live state."""

    def __init__(self, client):
        from .live import server_version

        self.server_version = server_version(client)


def _version_of(target: Target):
    from .connect import open_client

    if target.embedded:
        return None
    with open_client(target, read_only=True) as client:
        return _Version(client)


def _not_in_ci_against_nothing(target: Target) -> None:
    """In CI, the default embedded store that does not exist is a runner-local nothing: the job was meant to reach a
    server. A store named on purpose (--path, the spec's connection.path) is the user's choice, existing or not."""
    if os.environ.get("CI") and target.embedded and target.chosen_by == "the default" and not os.path.isdir(target.path):
        raise QmspecError(f"running in CI (CI is set) against the embedded store {target.where}, which does not exist: this job "
                          "would plan and apply against an empty store on the runner. Point it at your server: set QDRANT_URL "
                          "(and QDRANT_API_KEY) in the workflow, or pass --url, --env or the spec's connection.url; for an "
                          "embedded store in CI on purpose, name it: --path or the spec's connection.path")


def _for_spec(spec: Spec) -> dict:
    return {"focus": [name for name in (spec.collection, spec.source.collection) if name], "focus_aliases": [spec.alias],
            "files": spec.source.files}


def _confirmer(auto_approve: bool, confirm: Confirm | None, command: str) -> Confirm:
    def approve(preview: Preview) -> bool:
        if confirm is not None:
            approved = confirm(preview)
            if approved or not auto_approve:
                return approved
        if auto_approve:
            return True
        raise NotConfirmed(f"{command} needs confirmation: pass auto_approve=True or a confirm callback "
                           "(on the command line: answer yes, or pass --auto-approve)")

    return approve


def _asked(approve: Confirm, preview: Preview, command: str) -> None:
    if not approve(preview):
        raise Cancelled(f"{command.capitalize()} cancelled.")


# ---------------------------------------------------------------- validate, plan, show


def validate(*specs: str | os.PathLike, env: str | None = None) -> Validation:
    """Schema and semantic checks of each spec, alone and with each of its environment overlays (or only `env`).
    Touches no Qdrant."""
    results, warnings, inputs = [], [], {}
    for path in specs:
        problems = []
        for name in [env] if env else [None, *spec_environments(path)]:
            try:
                loaded = load_spec(path, env=name, deploying=False)
                warnings += [warning for warning in loaded.warnings if warning not in warnings]
                inputs[str(path)] = sorted(set(inputs.get(str(path), [])) | set(loaded.inputs))
            except SpecError as error:
                problems += [problem for problem in error.problems if problem not in problems]
        results.append((str(path), tuple(problems)))
    failed = any(problems for _, problems in results)
    return Validation(tuple(results), tuple(warnings), EXIT_ERROR if failed else EXIT_OK, inputs)


def plan(spec: str | os.PathLike, *, env: str | None = None, path: str | None = None, url: str | None = None,
         api_key_env: str | None = None, preflight: bool = True, log: Callable[[str], None] | None = None) -> Plan:
    """Diff the spec against live Qdrant and return the ordered plan (`.steps`; `.to_json()` is what `qmspec plan
    --format json` prints). Writes nothing."""
    return review(spec, env=env, path=path, url=url, api_key_env=api_key_env, preflight=preflight, log=log).plan


def review(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
           state_dir: str = DEFAULT_STATE_DIR, preflight: bool = True, detailed_exitcode: bool = False,
           log: Callable[[str], None] | None = None) -> Review:
    """`qmspec plan`: the plan, and what the journal and the lock say of the alias. Writes nothing, to Qdrant or to
    state: a pull-request job with a read-only key plans."""
    from .planning.planner import plan_migration

    where = _where(env, path, url, api_key_env, state, state_dir)
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        _not_in_ci_against_nothing(target)
        existed = os.path.isdir(target.path) if target.embedded else None
        _logger.info(f"reading live state from the {target.describe()} (chosen by {target.chosen_by})")
        live = _observe(target, **_for_spec(loaded))
        facts = against(target, live, existed)
        result = plan_migration(loaded, live, spec_file=str(spec), against=facts)
        if not result.refused and preflight:
            result = plan_migration(loaded, live, spec_file=str(spec), models=_check_models(result, loaded, target, None), against=facts)
        notes = _state_notes(target, where, loaded.alias, where.command("apply", spec))
    code = EXIT_REFUSED if result.refused else EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK
    return Review(result, tuple(notes), code)


def show(plan_file: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
         state_dir: str = DEFAULT_STATE_DIR, log: Callable[[str], None] | None = None) -> Review:
    """A saved plan, checked: exit 1 if it is not what its spec plans to (edited), 4 if live state moved since."""
    from .planning.decide import check_saved

    where = _where(env, path, url, api_key_env, state, state_dir)
    with forwarded(log):
        saved = read_plan(plan_file)
        target = where.connection.target(saved_connection(saved))
        existed = os.path.isdir(target.path) if target.embedded else None
        live_of = lambda focus, aliases, files: _observe(target, focus=focus, focus_aliases=aliases, files=files)  # noqa: E731
        checked = check_saved(saved, live_of, against=against(target, _version_of(target), existed))
        notes = _state_notes(target, where, saved.alias, where.command("apply", plan_file))
    code = {"stale": EXIT_STALE, "tampered": EXIT_ERROR}.get(checked.action, EXIT_OK)
    return Review(saved, tuple(notes), code, checked.message if code else "")


def saved_connection(saved: Plan):
    """The connection the spec a saved plan carries names (a saved plan runs where it was planned, as a Terraform plan
    keeps its backend); the command line still overrides it."""
    from .planning.spec import parse_spec

    return parse_spec(saved.spec_text, saved.spec_file, dict(os.environ), saved.env).connection


def read_plan(plan_file: str | os.PathLike) -> Plan:
    try:
        text = Path(plan_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file {plan_file}: {exc.strerror}") from None
    return Plan.from_json(text)


def _check_models(plan_: Plan, spec: Spec | None, target: Target, client) -> dict:
    from .applying.preflight import check_plan_models

    return check_plan_models(plan_, spec, target, client)


def _state_notes(target: Target, where: Where, alias: str, apply_command: str) -> list[str]:
    """What the journal and the lock say of the alias, for a plan reviewed in a pull request. Read only: no lock is
    taken and nothing is created."""
    from .applying.journal import describe_holder
    from .applying.session import file_store, session

    if where.state.kind == "file":
        store = file_store(target, where.state)
        record, holder = store.read(alias), store.lock_holder(alias)
    else:
        with session(target, where.state, alias) as opened:
            record, holder = opened.record(), opened.lock_holder()
    notes = []
    pending = record.unfinished()
    if pending:
        notes.append(f"an apply of plan {pending.plan_hash} for alias {alias} is unfinished ({pending.status} after "
                     f"{pending.steps_done} of {len(pending.steps)} steps): `{apply_command}` of the same spec resumes it, "
                     "`qmspec rollback` undoes it")
    if holder:
        notes.append(f"alias {alias} is locked by {describe_holder(holder)}")
    return notes


# ---------------------------------------------------------------- apply


def apply(source: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
          state_dir: str = DEFAULT_STATE_DIR, lock_timeout: float = 0.0, auto_approve: bool = False, confirm: Confirm | None = None,
          stop_before_swap: bool = False, accept_quality: str | None = None, abandon_staged: bool = False, workers: int = 1,
          engine: str = "local", ray_address: str | None = None, preflight: bool = True,
          log: Callable[[str], None] | None = None) -> ApplyResult:
    """Execute a spec (planned now) or a saved plan file (applied exactly as saved, refused if live state moved):
    create, copy, embed, verify, swap the alias. Resumes an unfinished apply of the same spec or plan.
    `abandon_staged`: a changed spec may delete the collection of an apply that was verified or staged."""
    where = _where(env, path, url, api_key_env, state, state_dir, lock_timeout)
    approve = _confirmer(auto_approve, confirm, "apply")
    with forwarded(log):
        return _apply(str(source), where, approve, stop_before_swap, accept_quality, abandon_staged, workers, engine, ray_address,
                      preflight)


REFUSED = {"refused": EXIT_REFUSED, "stale": EXIT_STALE}


def _apply(source: str, where: Where, approve: Confirm, stop_before_swap: bool, accept_quality: str | None, abandon_staged: bool,
           workers: int, engine: str, ray_address: str | None, preflight: bool) -> ApplyResult:
    from .applying.engines import engine_for
    from .applying.journal import now
    from .applying.qdrant_ops import current_alias_target
    from .applying.runner import apply_plan, check_files
    from .applying.session import session
    from .applying.verify import VerificationFailed
    from .planning.decide import decide
    from .reports.render import against as render_against, title

    from .planning.decide import saved_header_problem

    spec, saved = (None, read_plan(source)) if source.endswith(".json") else (load_spec(source, env=where.connection.env), None)
    if saved is not None and saved_header_problem(saved):  # its alias decides the lock and journal it runs under
        raise PlanTampered(f"{source} is not what its spec plans to: {saved_header_problem(saved)}; plan again and review the new file")
    target = where.connection.target(spec.connection if spec else saved_connection(saved))
    _not_in_ci_against_nothing(target)
    existed = os.path.isdir(target.path) if target.embedded else None
    alias = spec.alias if spec else saved.alias
    with session(target, where.state, alias, "qmspec apply " + source, where.command("unlock", source)) as opened:
        client, journal = opened.client, opened.journal
        read_live = lambda focus, aliases, files: _observe(target, focus=focus, focus_aliases=aliases, files=files, client=client)  # noqa: E731
        facts = against(target, _Version(client), existed)
        decision = decide(journal.record, spec, saved, read_live, spec_file=source, against=facts)
        if decision.action == "blocked" and not journal.active.swapped and current_alias_target(client, alias) == journal.active.alias_before:
            _abandon(client, journal, approve, abandon_staged, where.command("apply", source))
            decision = decide(journal.record, spec, saved, read_live, spec_file=source, against=facts)
        if decision.action == "fresh" and preflight:
            models = _check_models(decision.plan, spec, target, client)
            if spec is not None:  # plan again with what the preflight learned (the commit a name resolved to)
                decision = decide(journal.record, spec, saved, read_live, spec_file=source, models=models, against=facts)
        if decision.action == "blocked":
            raise ApplyBlocked(decision.message)
        if decision.action == "tampered":
            raise PlanTampered(decision.message)
        if decision.action in REFUSED or decision.action == "nothing":
            return ApplyResult(decision.action, REFUSED.get(decision.action, EXIT_OK), alias, current_alias_target(client, alias),
                               decision.plan, decision.message, against=facts)
        if engine == "ray" and where.state.kind == "file" and not target.embedded:
            raise QmspecError("--engine ray copies from workers that may run on other machines, and they record what they "
                              "write where the apply's records are: keep them in Qdrant with --state qdrant")
        if accept_quality and not (decision.action == "resume" and journal.active.status == "verify_failed"):
            raise QmspecError("--accept-quality accepts the failed quality gates of an open apply; there is none for alias "
                              f"{alias} (run the apply first; if its quality gates fail, it stops and says so)")
        if decision.action == "fresh":  # before the journal opens: a refused file leaves nothing to resume or roll back
            check_files(decision.plan)
        said = (f"apply against {render_against(facts)}",) if decision.action != "fresh" else ()  # a fresh plan says it itself
        _asked(approve, Preview("Apply this plan?", decision.plan if decision.action == "fresh" else None,
                                said + ((decision.message,) if decision.message else ())), "apply")
        runner = engine_for(engine, workers, ray_address)  # before the journal opens: starting Ray can take a while
        if decision.action == "fresh":
            journal.start(decision.plan)
        if accept_quality:
            journal.active.accepted = {"reason": accept_quality, "at": now()}
            journal.save()
        try:
            status = apply_plan(decision.plan, client, journal, target.embedded, title=title, stop_before_swap=stop_before_swap,
                                engine=runner, target=target)
        except VerificationFailed as failed:
            way_out = [f"fix the cause and run `{where.command('apply', source)}` again (it verifies again)",
                       f"or undo it: `{where.command('rollback', source)}`"]
            if failed.report.quality_failed:
                way_out.insert(1, f"or accept the quality drop: `{where.command('apply', source)} --accept-quality \"why\"` "
                                  "(the reason is journaled)")
            return ApplyResult("verify_failed", EXIT_REFUSED, alias, current_alias_target(client, alias), decision.plan, str(failed),
                               failed.report, opened.write_report(journal) or (), tuple(way_out), facts)
        finally:
            runner.close()
        files = opened.write_report(journal) or ()
        serving = current_alias_target(client, alias)  # what the apply did, read back, not what the plan meant to do
    report = _verification(journal)
    if status == "staged":
        staged = (f"the new vectors of {decision.plan.collection} are filled and verified; its recorded query is unchanged"
                  if any(isinstance(step, SwitchQuery) for step in decision.plan.steps) else
                  f"{decision.plan.collection} is built and verified; alias {alias} still serves {serving}")
        message = (f"Staged: {staged}. Review it (`qmspec compare`, the verification report), then promote it with "
                   f"`{where.command('apply', source)}`.")
        return ApplyResult("staged", EXIT_OK, alias, serving, decision.plan, message, report, files, against=facts)
    return ApplyResult("succeeded", EXIT_OK, alias, serving, decision.plan, f"Apply complete: alias {alias} serves {serving}.", report, files,
                       against=facts)


def _verification(journal):
    """The verify step's report as the journal kept it (text, JSON and Markdown), where the apply ran one."""
    from .applying.verify import KeptReport

    kept = journal.active.verification if journal.active else None
    return KeptReport(kept) if kept else None


def _abandon(client, journal, approve: Confirm, abandon_staged: bool, apply_command: str) -> None:
    """The spec changed after an apply failed or stopped before its swap: undo what that apply made (nothing served
    it), so the new spec plans from where things were. One that was verified or staged is a collection someone may
    be reviewing, and the application may have written to it: it is abandoned only when asked by name."""
    from .applying.rollback import plan_rollback, rollback as undo
    from .applying.verify import application_writes

    active = journal.active
    actions = plan_rollback(client, journal, drop_new=False)
    built = active.status == "staged" or active.succeeded("verify")
    written = application_writes(client, journal) if built else ""
    if built and not abandon_staged:
        raise ApplyBlocked(f"the apply of plan {active.plan_hash} built and verified {active.plan.collection} ({active.status}) and the "
                           f"spec changed since; abandoning it deletes {active.plan.collection}{written}. Promote it by applying the "
                           f"spec it was planned from, undo it with `qmspec rollback`, or abandon it on purpose: "
                           f"`{apply_command} --abandon-staged`")
    lines = (f"the apply of plan {active.plan_hash} stopped ({active.status}) before its swap; the spec changed since, "
             "so it is abandoned first" + (f" ({active.plan.collection}{written})" if built else "") + ":",
             *(f"  - {action.description}" for action in actions), *(() if actions else ("  - nothing to undo in Qdrant",)))
    _asked(approve, Preview("Abandon it?", None, lines), "apply")
    undo(journal, actions)


# ---------------------------------------------------------------- rollback, cleanup, unlock


def rollback(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
             state_dir: str = DEFAULT_STATE_DIR, lock_timeout: float = 0.0, drop_new: bool = False, auto_approve: bool = False,
             confirm: Confirm | None = None, log: Callable[[str], None] | None = None) -> RollbackResult:
    """Undo the last apply: point the alias back, restore settings changed in place, and delete what a failed or
    unfinished apply created that never served (with `drop_new`, what any apply created)."""
    where = _where(env, path, url, api_key_env, state, state_dir, lock_timeout)
    approve = _confirmer(auto_approve, confirm, "rollback")
    with forwarded(log):
        return _rollback(spec, where, approve, drop_new)


def _rollback(spec, where: Where, approve: Confirm, drop_new: bool) -> RollbackResult:
    from .applying.rollback import plan_rollback, rollback as undo
    from .applying.session import session

    loaded, target = _spec_and_target(spec, where)
    with session(target, where.state, loaded.alias, f"qmspec rollback {spec}", where.command("unlock", spec)) as opened:
        journal = opened.journal
        actions = plan_rollback(opened.client, journal, drop_new)
        lines = (f"Rollback of plan {journal.active.plan_hash} ({journal.active.status}) for alias {loaded.alias}:",
                 *([f"  - {action.description}" for action in actions] or ["  nothing to change in Qdrant; the journal is closed"]))
        _asked(approve, Preview("Roll back?", None, lines), "rollback")
        done = undo(journal, actions)
    return RollbackResult(loaded.alias, journal.active.plan_hash, tuple(done))


@dataclass(frozen=True)
class RehearsedStep:
    number: int
    title: str
    kind: str
    seconds: float
    extrapolated_s: float | None  # at the full collection's size; None: a step whose time does not grow with the points


@dataclass(frozen=True)
class Rehearsal:
    """What `apply --rehearse N` found on a scratch copy: each step's time there and extrapolated, the verification
    (with its gates), and the rollback after it. Nothing live was written."""

    alias: str
    sampled: dict  # collection -> (points copied, points live)
    steps: tuple[RehearsedStep, ...]
    applied: ApplyResult
    rolled_back: tuple[str, ...]
    exit_code: int

    @property
    def scale(self) -> float:
        return _scale(self.sampled)


def _scale(sampled: dict) -> float:
    """How many times the live collections outgrow their sample: the largest ratio of points live to points copied."""
    return max((live / copied for copied, live in sampled.values() if copied), default=1.0)


SCALES_WITH_POINTS = {"copy_points", "load_files", "embed_vectors", "backfill_vector", "catch_up", "catch_up_vector", "verify",
                      "learn_adapter"}


@dataclass(frozen=True)
class _ScratchConnection:
    """The rehearsal's embedded store, standing in for the target; the spec's environment overlay still applies."""

    path: str
    env: str | None = None

    def target(self, spec_connection=None) -> Target:
        return Target(path=self.path, chosen_by="the rehearsal")

    def options(self) -> list[str]:
        return ["--path", self.path]


def rehearse(spec: str | os.PathLike, *, sample: int = 1000, env=None, path=None, url=None, api_key_env=None, preflight: bool = True,
             log: Callable[[str], None] | None = None) -> Rehearsal:
    """Copy what the spec's plan touches (settings, `sample` random points and every judged one, the aliases) from
    live state into a scratch embedded store, and run the whole plan there: create, copy or embed, catch-up, verify
    and its gates, swap, then roll back. Live state is only read."""
    import tempfile

    from qdrant_client import QdrantClient

    from .applying.qdrant_ops import aliases as alias_map
    from .applying.rehearsal import copy_sample
    from .applying.session import StateOptions
    from .connect import open_client
    from .planning.judgments import load_judgments

    where = _where(env, path, url, api_key_env)
    with forwarded(log), tempfile.TemporaryDirectory(prefix="qmspec-rehearsal-") as scratch:
        loaded, target = _spec_and_target(spec, where)
        quality = loaded.verify.quality
        judged = {pid for grades in load_judgments(quality.judgments).relevant.values() for pid in grades} if quality else set()
        store = str(Path(scratch) / "qdrant")
        with open_client(target, read_only=True) as live:
            serving = alias_map(live).get(loaded.alias)
            touched = [name for name in dict.fromkeys((serving, loaded.source.collection, loaded.collection)) if name]
            copy = QdrantClient(path=store)
            try:
                sampled = copy_sample(live, copy, touched, sample, judged)
            finally:
                copy.close()
        rehearsal = Where(_ScratchConnection(store, env), StateOptions("file", str(Path(scratch) / "state"), 0.0))
        timings = _StepTimes()
        logging.getLogger(ROOT).addHandler(timings)
        try:
            applied = _apply(str(spec), rehearsal, lambda preview: True, False, None, False, 1, "local", None, preflight)
        finally:
            logging.getLogger(ROOT).removeHandler(timings)
        undone: tuple = ()
        if applied.status not in ("refused", "nothing"):
            try:
                undone = _rollback(spec, rehearsal, lambda preview: True, True).done
            except QmspecError as impossible:  # a finding of the rehearsal (a plan that deletes the old collection), not its failure
                undone = (f"not possible after this plan: {impossible}",)
    steps = tuple(RehearsedStep(number, title, kind, seconds, seconds * _scale(sampled) if kind in SCALES_WITH_POINTS else None)
                  for number, (title, kind, seconds) in sorted(timings.finished.items()))
    return Rehearsal(loaded.alias, sampled, steps, applied, tuple(undone), applied.exit_code)


class _StepTimes(logging.Handler):
    """The step events of the rehearsal's apply: number -> (title, kind, seconds)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.titles: dict = {}
        self.finished: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        tagged = getattr(record, EVENT, None) or {}
        if tagged.get("type") == "step_started":
            self.titles[tagged["step"]] = tagged["title"]
        elif tagged.get("type") == "step_finished":
            self.finished[tagged["step"]] = (self.titles.get(tagged["step"], tagged["kind"]), tagged["kind"], tagged["seconds"])


def cleanup(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
            state_dir: str = DEFAULT_STATE_DIR, lock_timeout: float = 0.0, auto_approve: bool = False, confirm: Confirm | None = None,
            log: Callable[[str], None] | None = None) -> CleanupResult:
    """Delete the collection the alias served before the last apply, once that apply was verified and swapped."""
    from .applying.rollback import cleanup as finish, replaced_collection
    from .applying.session import session

    where = _where(env, path, url, api_key_env, state, state_dir, lock_timeout)
    approve = _confirmer(auto_approve, confirm, "cleanup")
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        with session(target, where.state, loaded.alias, f"qmspec cleanup {spec}", where.command("unlock", spec)) as opened:
            journal = opened.journal
            old = replaced_collection(journal.active)
            if old:
                _asked(approve, Preview("Delete it?", None, (f"this deletes collection {old} and every point in it",)), "cleanup")
            deleted = finish(opened.client, journal)
    return CleanupResult(loaded.alias, deleted)


def unlock(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
           state_dir: str = DEFAULT_STATE_DIR, force: bool = False, auto_approve: bool = False, confirm: Confirm | None = None,
           log: Callable[[str], None] | None = None) -> UnlockResult:
    """Release the apply lock of an alias left behind by a process that died (with `force`, one that may still run)."""
    from contextlib import nullcontext

    from .applying.journal import holder_is_dead
    from .applying.session import file_store, session

    where = _where(env, path, url, api_key_env, state, state_dir)
    approve = _confirmer(auto_approve, confirm, "unlock")
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        # A file lock is released without opening Qdrant: the embedded store may be held by the very apply it names.
        opened = nullcontext(None) if where.state.kind == "file" else session(target, where.state, loaded.alias)
        with opened as live_session:
            store = live_session.store if live_session else file_store(target, where.state)
            holder = store.lock_holder(loaded.alias)
            if holder is None:
                return UnlockResult(loaded.alias, None)
            if not holder_is_dead(holder) and not force:
                raise QmspecError(f"the lock on {loaded.alias} is held by pid {holder.get('pid')} on {holder.get('host')}, which "
                                  "may still run; stop that process first, or pass --force if you know it is gone")
            _asked(approve, Preview("Release it?", None, (f"this releases the lock on alias {loaded.alias} held by pid "
                                                          f"{holder.get('pid')} on {holder.get('host')}",)), "unlock")
            store.break_lock(loaded.alias, holder)
    return UnlockResult(loaded.alias, holder)


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportResult:
    alias: str
    collection: str
    matches: tuple  # applying.adopt.Match per declared vector with a model
    candidates: tuple = ()  # Match per --candidates model, best first
    recorded: bool = False  # whether the models were recorded in the collection's metadata
    exit_code: int = EXIT_OK
    message: str = ""


def import_collection(spec: str | os.PathLike, *, threshold: float = 0.99, sample: int = 64, candidates: tuple[str, ...] = (),
                      env=None, path=None, url=None, api_key_env=None, state: str = "file", state_dir: str = DEFAULT_STATE_DIR,
                      lock_timeout: float = 0.0, auto_approve: bool = False, confirm: Confirm | None = None,
                      log: Callable[[str], None] | None = None) -> ImportResult:
    """`qmspec import`: take a live collection qmspec did not create under management. Each vector's declared model
    embeds the stored text of `sample` random points; where its vectors match the stored ones (mean cosine >=
    `threshold`), the models and the application's query are recorded in the collection's metadata, as an apply
    records them; a mismatch is refused (exit 3) and nothing is written. `candidates`: other model names to measure
    against the dense vectors, to find which one made them (reported, never recorded)."""
    from .applying import adopt
    from .applying.session import session
    from .planning.modelfacts import ModelFacts
    from .planning.planner import stamp
    from .planning.spec import SparseVectorSpec

    where = _where(env, path, url, api_key_env, state, state_dir, lock_timeout)
    approve = _confirmer(auto_approve, confirm, "import")
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        with session(target, where.state, loaded.alias, f"qmspec import {spec}", where.command("unlock", spec)) as opened:
            client = opened.client
            if not client.collection_exists(loaded.collection):
                raise QmspecError(f"collection {loaded.collection} does not exist in the {target.describe()}: import takes a "
                                  "collection that is already there; to create one, apply the spec")
            declared = [vector for vector in (*loaded.vectors, *loaded.sparse_vectors) if vector.model]
            if not declared:
                raise QmspecError(f"{spec} names no model for any vector: import checks declared models against the stored vectors")
            ids = adopt.sample(client, loaded.collection, sample)
            _logger.info(f"import: embedding the texts of {len(ids)} sampled points of {loaded.collection} with "
                         f"{', '.join(sorted({vector.model.name for vector in declared})) or 'no model'}")
            matches = tuple(adopt.measure(client, loaded.collection, vector.name, vector.model.settings, vector.text_field,
                                          isinstance(vector, SparseVectorSpec), ids, threshold) for vector in declared)
            tried = tuple(sorted((adopt.measure(client, loaded.collection, vector.name, vector.model.settings | {"name": name},
                                                vector.text_field, False, ids, threshold)
                                  for name in candidates for vector in loaded.vectors if vector.model),
                                 key=lambda match: -(match.mean if match.mean is not None else -2)))
            if not all(match.passed for match in matches):
                failed = [match for match in matches if not match.passed]
                return ImportResult(loaded.alias, loaded.collection, matches, tried, False, EXIT_REFUSED,
                                    "not imported, nothing was written: " + "; ".join(match.describe() for match in failed) +
                                    ". Check the model's name, revision, prompts and normalization; `--candidates NAME ...` measures "
                                    "others against the stored vectors")
            facts = {vector.model.name: ModelFacts(vector.model.name, commit=getattr(_embedder(vector.model.settings), "commit", None))
                     for vector in declared}
            stamped = stamp(loaded, models=facts)
            lines = (*(match.describe() for match in matches),
                     f"this records in the metadata of {loaded.collection}: " + ", ".join(
                         f"{name} <- {identity.get('model')}" for name, identity in stamped["qmspec"]["vectors"].items())
                     + (f"; the query {loaded.query_shape}" if loaded.query_shape else ""))
            _asked(approve, Preview("Import it?", None, lines), "import")
            adopt.record(client, loaded.collection, stamped)
    return ImportResult(loaded.alias, loaded.collection, matches, tried, True, EXIT_OK,
                        f"Imported: {loaded.collection} is managed by {spec}; `qmspec plan {spec}` plans from here")


def _embedder(settings: dict):
    from .embed import get_embedder

    return get_embedder(settings)


# ---------------------------------------------------------------- read-only reports


def status(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
           state_dir: str = DEFAULT_STATE_DIR, log: Callable[[str], None] | None = None) -> dict:
    """Where things stand: the alias's live target, the last apply and its steps, the lock (`status --format json`)."""
    from .applying.session import session
    from .reports.status import describe_status

    where = _where(env, path, url, api_key_env, state, state_dir)
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        with session(target, where.state, loaded.alias) as opened:
            live = _observe(target, focus=[], focus_aliases=[loaded.alias], client=opened.client)
            return describe_status(opened.record(), opened.lock_holder(), live)


@dataclass(frozen=True)
class Drift:
    alias: str
    found: tuple
    not_applicable: tuple
    clean: str  # what to say when nothing drifted

    @property
    def exit_code(self) -> int:
        return EXIT_CHANGES if self.found else EXIT_OK


def drift(spec: str | os.PathLike, *, env=None, path=None, url=None, api_key_env=None, state: str = "file",
          state_dir: str = DEFAULT_STATE_DIR, log: Callable[[str], None] | None = None) -> Drift:
    """Where live state moved away from the spec and from the last apply."""
    from .applying.session import session
    from .reports.drift import drift as find_drift, not_applicable

    where = _where(env, path, url, api_key_env, state, state_dir)
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        with session(target, where.state, loaded.alias) as opened:
            live = _observe(target, focus=[loaded.collection], focus_aliases=[loaded.alias], client=opened.client)
            found = find_drift(loaded, live, opened.record())
    return Drift(loaded.alias, tuple(found), tuple(not_applicable(loaded, live)),
                 f"no drift: {target.describe()} matches {spec} and the last apply")


def environment_diff(a: str, b: str, *, alias: str | None = None, log: Callable[[str], None] | None = None) -> list:
    """The differences between two environments of qmspec.yaml: alias targets, vector configs, models, counts."""
    from .reports.envdiff import compare_environments, facts

    with forwarded(log):
        return compare_environments(*[facts(_observe(resolve_target(env=name)), alias) for name in (a, b)])


def inspect(*, aliases: tuple[str, ...] = (), env=None, path=None, url=None, api_key_env=None,
            log: Callable[[str], None] | None = None) -> dict[str, str]:
    """A spec written from live state for each alias (all of them by default): alias -> YAML text."""
    from .reports.inspect import spec_from_live, to_yaml

    where = _where(env, path, url, api_key_env)
    with forwarded(log):
        target = where.connection.target()
        live = _observe(target, focus=[])
        chosen = list(aliases) or sorted(live.aliases)
        if not chosen:
            raise QmspecError(f"the {target.describe()} has no alias to inspect; qmspec manages collections behind aliases")
        return {alias: to_yaml(spec_from_live(live, alias), schema=SCHEMA_PATH.name) for alias in chosen}


def write_schema(folder: str | os.PathLike) -> Path:
    """qmspec.schema.json beside a user's specs, for editors (`# yaml-language-server: $schema=...`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCHEMA_PATH.name).write_text(SCHEMA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return folder / SCHEMA_PATH.name


def compare(spec: str | os.PathLike, *, side_a: str | None = None, side_b: str | None = None, queries_file: str | None = None,
            judgment_files: tuple[str, ...] = (), metrics: tuple[str, ...] = (), k: int = 10, env=None, path=None, url=None,
            api_key_env=None, log: Callable[[str], None] | None = None):
    """The same queries on two retrievers (default: what the alias serves now, and the spec's collection)."""
    from .applying.qdrant_ops import aliases as alias_map
    from .connect import open_client
    from .planning.judgments import load_judgments
    from .planning.spec import METRIC
    from .reports import compare as comparing

    where = _where(env, path, url, api_key_env)
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        quality = loaded.verify.quality
        files = judgment_files or (quality.judgments if quality and not queries_file else ())
        judgments = load_judgments(files) if files else None
        metrics = list(metrics) or (list(quality.metrics) if quality else [f"ndcg@{k}", f"recall@{k}"])
        unknown = [metric for metric in metrics if not METRIC.match(metric)]
        if unknown:
            raise QmspecError(f"--metric {unknown[0]}: use ndcg@K, recall@K, mrr@K, precision@K or map@K")
        queries = judgments.queries if judgments else query_lines(loaded, queries_file)
        with open_client(target, read_only=True) as client:
            serving = alias_map(client).get(loaded.alias, loaded.alias)
            a = comparing.resolve_side(client, side_a or serving, loaded.query_shape)
            b = comparing.resolve_side(client, side_b or loaded.collection, loaded.query_shape)
            _logger.info(f"compare: {len(queries)} queries on {a.label} and {b.label}")
            return comparing.compare(client, a, b, queries, k, judgments, metrics if judgments else [], models_here(loaded))


@dataclass(frozen=True)
class Candidates:
    records: tuple
    sides: tuple[str, ...]
    judged_by: str | None = None  # the LLM that graded them (UMBRELA), or None: candidates for a person to judge
    asked: int = 0  # requests sent to the LLM (0 when every answer was cached)


@dataclass(frozen=True)
class LlmJudge:
    """Who grades the candidates: an OpenAI-compatible chat-completions model, asked with UMBRELA's prompt; its key is
    read from the variable `api_key_env` names."""

    model: str
    base_url: str
    api_key_env: str | None = None
    concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    price_per_million: float | None = None  # input tokens, for the estimate printed before it starts
    max_retries: int = 6
    retry_wait_s: float = 1.0
    cache: str | None = None  # where answers are kept; default: beside the output, <out>.cache.jsonl
    generate: int = 0  # sampled passages to write one query each for (InPars style), instead of a query log


def judge(spec: str | os.PathLike, *, queries_file: str | None = None, sample: int = 50, k: int = 5, llm: LlmJudge | None = None,
          out: str | None = None, env=None, path=None, url=None, api_key_env=None, log: Callable[[str], None] | None = None) -> Candidates:
    """The same queries on what the alias serves now and on the spec's collection, their top `k` pooled: candidates for
    a person to judge, or with `llm`, graded 0-3 by that model (reports/grading.py) into judgments verify.quality reads.
    The queries: a query log (`queries_file`), `sample` sentences of random passages, or with `llm.generate`, one query
    the model writes per sampled passage."""
    from .applying.qdrant_ops import aliases as alias_map
    from .applying.search import sample_ids
    from .connect import open_client
    from .reports.compare import resolve_side
    from .reports.judge import candidates, sample_queries

    where = _where(env, path, url, api_key_env)
    with forwarded(log):
        loaded, target = _spec_and_target(spec, where)
        text_field = next((vector.text_field for vector in (*loaded.vectors, *loaded.sparse_vectors) if vector.model), "text")
        chat = cache = None
        if llm is not None:
            from .embed.chat import AnswerCache, ChatClient

            chat = ChatClient(llm.model, llm.base_url, llm.api_key_env, concurrency=llm.concurrency, max_retries=llm.max_retries,
                              requests_per_minute=llm.requests_per_minute, tokens_per_minute=llm.tokens_per_minute,
                              retry_wait_s=llm.retry_wait_s)
            cache = AnswerCache(llm.cache or f"{out or 'judgments.jsonl'}.cache.jsonl")
        with open_client(target, read_only=True) as client:
            serving = alias_map(client).get(loaded.alias)
            names = [name for name in dict.fromkeys((serving, loaded.collection)) if name and client.collection_exists(name)]
            if not names:
                raise QmspecError(f"neither the alias {loaded.alias} nor {loaded.collection} exists yet: apply a collection to judge first")
            known: dict = {}
            sampled = None
            if llm is not None and not queries_file:  # a re-run samples what the first sampled: its answers are cached
                count = llm.generate or sample
                sampled = cache.remember(["sample", names[-1], count], lambda: sample_ids(client, names[-1], count))
            if llm is not None and llm.generate:
                queries, known = _generated_queries(client, names[-1], text_field, llm, chat, cache, sampled)
            else:
                queries = query_lines(loaded, queries_file) if queries_file else sample_queries(client, names[-1], text_field, sample, sampled)
            sides = [resolve_side(client, name, loaded.query_shape) for name in names]
            records = candidates(client, sides, queries, k, text_field, models_here(loaded))
        labels = tuple(side.label for side in sides)
        if llm is None:
            return Candidates(tuple(records), labels)
        return _graded(records, list(queries), known, llm, chat, cache, labels)


def _generated_queries(client, collection: str, text_field: str, llm: LlmJudge, chat, cache, ids: list) -> tuple[dict, dict]:
    from .reports.grading import generate

    passages = {record.id: record.payload[text_field] for record in client.retrieve(collection, ids, with_payload=[text_field])
                if isinstance((record.payload or {}).get(text_field), str)}
    _logger.info(f"judge: asking {llm.model} for one query for each of {len(passages)} sampled passages (InPars style)")
    written = generate(chat, cache, passages, llm.concurrency)
    return {f"g{point_id}": text for point_id, text in written.items()}, {f"g{point_id}": point_id for point_id in written}


def _graded(records: list[dict], query_ids: list[str], known: dict, llm: LlmJudge, chat, cache, labels: tuple) -> Candidates:
    from .reports import grading

    pairs = [grading.Pair(query_id, record["query"], item["id"], item.get("text") or "") for query_id, record in zip(query_ids, records)
             for item in record["candidates"] if known.get(query_id) != item["id"]]
    prompts = [pair.prompt for pair in pairs]
    cached = sum(cache.get(chat.model, prompt) is not None for prompt in prompts)
    _logger.info("judge: " + grading.estimate([p for p in prompts if cache.get(chat.model, p) is None], cached,
                                               llm.price_per_million).describe(llm.model))
    try:
        grades = grading.grade(chat, cache, pairs, llm.concurrency)
    finally:
        chat.close()
    judged_by = f"umbrela:{llm.model}"
    return Candidates(tuple(grading.judged_records(records, query_ids, grades, known, judged_by)), labels, judged_by, chat.requests)


def models_here(spec: Spec) -> dict:
    """Model name -> the settings the spec runs it with on this machine (a local path, a device), for searching
    collections whose metadata records the model but not where it lies here."""
    return {vector.model.name: vector.model.settings for vector in (*spec.vectors, *spec.sparse_vectors) if vector.model}


def query_lines(spec: Spec, queries_file: str | None) -> dict:
    """Queries to run: one per line of a file, else the spec's verify.search queries."""
    if queries_file:
        try:
            lines = [line.strip() for line in Path(queries_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise QmspecError(f"cannot read the queries in {queries_file}: {exc}; give a UTF-8 text file, one query per line") from None
        if not lines:
            raise QmspecError(f"{queries_file} holds no query; give one query per line")
    elif spec.verify.search:
        lines = list(spec.verify.search.queries)
    else:
        raise QmspecError("no queries to compare: give --judgments or --queries-file, or verify.quality / verify.search in the spec")
    return {f"q{number}": text for number, text in enumerate(lines, 1)}


__all__ = ["ApplyBlocked", "ApplyResult", "Cancelled", "Candidates", "CleanupResult", "Drift", "ImportResult", "LlmJudge", "NotConfirmed", "PlanTampered",
           "Preview",
           "Rehearsal", "Review", "RollbackResult", "UnlockResult", "Validation", "apply", "cleanup", "compare", "drift", "environment_diff",
           "import_collection", "inspect", "judge", "plan", "rehearse", "review", "rollback", "show", "status", "unlock", "validate", "write_schema"]
