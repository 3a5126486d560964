"""Command line: parse, call the library, render, choose the exit code. No logic a library test cannot reach.

Every command that reaches Qdrant starts the same way: load the spec, resolve the target (`--path`, `--url`,
`--env` or the spec's `connection:`), then open a session (client, state store, and for commands that change
things the alias's lock).

Exit codes: 0 success or no changes, 1 error, 2 changes pending (with --detailed-exitcode),
3 plan refused by a safety rule, 4 a saved plan is stale.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shlex
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__
from .applying.journal import DEFAULT_STATE_DIR, FileStateStore, Journal, holder_is_dead, now, slug
from .errors import QmspecError, SpecError, redact
from .planning.plan import Plan
from .planning.planner import plan_migration
from .planning.record import STATE_COLLECTION
from .planning.rules import CLASSES, RULES
from .planning.spec import SCHEMA_PATH, Spec, load_spec
from .project import Target, redact_url, resolve_target
from .reports.render import render, title

# qdrant_client takes ~2 s to import: commands that never reach Qdrant (validate, schema, rules) must not pay it,
# so the modules that touch Qdrant are imported inside the commands that need them.

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_REFUSED, EXIT_STALE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Connection:
    """The connection options of one command line, resolved to a Target together with a spec's `connection:`."""

    path: str | None
    url: str | None
    api_key_env: str | None
    env: str | None

    def target(self, spec: Spec | None = None) -> Target:
        return resolve_target(self.path, self.url, self.api_key_env, spec.connection if spec else None, env=self.env)

    def spec_and_target(self, spec_path: str) -> tuple[Spec, Target]:
        spec = load_spec(spec_path, env=self.env)
        return spec, self.target(spec)

    def options(self) -> list[str]:
        """These options as typed, for the exact commands that hints name (a URL without its credentials)."""
        given = [("--path", self.path), ("--url", self.url and redact_url(self.url)), ("--api-key-env", self.api_key_env),
                 ("--env", self.env)]
        return [part for flag, value in given if value for part in (flag, value)]


@dataclass(frozen=True)
class StateOptions:
    """Where the journal and lock live (--state, --state-dir) and how long to wait for the lock."""

    kind: str
    folder: str
    lock_timeout: float = 0.0

    def options(self) -> list[str]:
        return (["--state", self.kind] if self.kind != "file" else []) + \
               (["--state-dir", self.folder] if self.folder != DEFAULT_STATE_DIR else [])


def command_line(name: str, spec_path: str, connection: Connection, state: StateOptions) -> str:
    """The exact command a hint tells the user to run, with the options that reach the same store and journal."""
    return shlex.join(["qmspec", name, spec_path, *connection.options(), *state.options()])


def connection_options(command):
    """--path, --url, --api-key-env and --env, handed to the command as one `connection` argument."""
    @functools.wraps(command)
    def with_connection(*args, path, url, api_key_env, env, **kwargs):
        return command(*args, connection=Connection(path, url, api_key_env, env), **kwargs)

    with_connection = click.option("--env", "env", metavar="NAME", help="Environment named in qmspec.yaml (its path or URL and key variable).")(with_connection)
    with_connection = click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (default QDRANT_API_KEY).")(with_connection)
    with_connection = click.option("--url", metavar="URL", help="Qdrant server URL.")(with_connection)
    return click.option("--path", metavar="DIR", help="Embedded Qdrant store (default .qmspec/qdrant).")(with_connection)


def state_options(command):
    """--state, --state-dir and --lock-timeout, handed to the command as one `state` argument."""
    @functools.wraps(command)
    def with_state(*args, state, state_dir, lock_timeout, **kwargs):
        return command(*args, state=StateOptions(state, state_dir, lock_timeout), **kwargs)

    with_state = click.option("--lock-timeout", type=Duration(), default="0s", show_default=True, metavar="DURATION",
                              help="Wait this long (30s, 5m, 1h) for another apply's lock before giving up.")(with_state)
    with_state = click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True, metavar="DIR",
                              help="Where file state (journal, locks) is kept.")(with_state)
    return click.option("--state", "state", type=click.Choice(["file", "qdrant"]), default="file", show_default=True,
                        help=f"Keep the journal and lock in local files, or in Qdrant ({STATE_COLLECTION}) so CI runners share them.")(with_state)


class Duration(click.ParamType):
    name = "duration"
    UNITS = {"s": 1, "m": 60, "h": 3600}

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        try:
            return float(text[:-1]) * self.UNITS[text[-1]] if text and text[-1] in self.UNITS else float(text)
        except ValueError:
            self.fail(f"{value!r} is not a duration: write 30s, 5m or 1h", param, ctx)


@contextmanager
def session(target: Target, state: StateOptions, alias: str, command: str | None, unlock_hint: str = ""):
    """Open the client and the state store; with a command, hold the alias's apply lock throughout. The file lock
    is taken before the client opens, so a second apply hears about the lock, not about a busy embedded store."""
    from .applying.journal import QdrantStateStore
    from .connect import open_client

    if state.kind == "file":
        with _held(FileStateStore.for_target(target.key, state.folder, target.legacy_key), alias, command, state, unlock_hint) as store, \
                open_client(target) as client:
            yield client, store
    else:
        with open_client(target) as client, _held(QdrantStateStore(client), alias, command, state, unlock_hint) as store:
            yield client, store


@contextmanager
def _held(store, alias: str, command: str | None, state: StateOptions, unlock_hint: str):
    """Hold the alias's lock: wait up to --lock-timeout for a live holder, take over from one proven dead."""
    from .applying.journal import LockHeld, describe_holder

    if command:
        deadline = time.monotonic() + state.lock_timeout
        while True:
            try:
                dead = store.acquire(alias, command)
                break
            except LockHeld as held:
                if time.monotonic() >= deadline:
                    raise QmspecError(f"{held}; wait for it to finish (or pass --lock-timeout), and if it hangs, stop it, "
                                      f"then `{unlock_hint}`") from None
                time.sleep(1)
        if dead:
            click.echo(f"took over the lock on alias {alias} from {describe_holder(dead)}: that process is gone", err=True)
    try:
        yield store
    finally:
        if command:
            store.release(alias)


def _observe(target: Target, **focus):
    from .live import observe

    return observe(target, **focus)


def _check_models(plan: Plan, spec: Spec | None, target: Target, client) -> dict:
    from .applying.preflight import check_plan_models

    return check_plan_models(plan, spec, target, client, lambda line: click.echo(line, err=True))


def preflight_option(command):
    return click.option("--no-preflight", is_flag=True,
                        help="Do not load the models and embed a sample before planning (an API that must not be called).")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qmspec")
def cli():
    """Declarative embedding-model migrations for Qdrant."""


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--env", metavar="NAME", help="Validate with this environment's values merged in (default: the spec alone and "
                                            "with each of its environments).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text", show_default=True,
              help="github: workflow annotations that mark the file and line in a pull request.")
def validate(specs, env, fmt):
    """Check spec files against the schema and the semantic rules. Touches no Qdrant."""
    from .planning.spec import spec_environments

    results, warnings = [], []
    for path in specs:
        problems = []
        for name in [env] if env else [None, *spec_environments(path)]:
            try:
                warnings += [warning for warning in load_spec(path, env=name).warnings if warning not in warnings]
            except SpecError as error:
                problems += [problem for problem in error.problems if problem not in problems]
        results.append((path, problems))
    click.echo(_render_validation(results, fmt, warnings), nl=False, err=fmt == "text" and any(p for _, p in results))
    sys.exit(EXIT_ERROR if any(problems for _, problems in results) else EXIT_OK)


def _render_validation(results: list, fmt: str, warnings: list) -> str:
    """Problems fail validation; warnings (a gate that cannot fail) are said and fail nothing."""
    if fmt == "json":
        return json.dumps({"format": 1, "files": [{"file": path, "ok": not problems, "problems": [dataclasses.asdict(p) for p in problems],
                                                   "warnings": [dataclasses.asdict(w) for w in warnings if w.file == path]}
                                                  for path, problems in results]}, indent=2) + "\n"
    if fmt == "github":
        annotate = lambda level, p: (f"::{level} file={p.file}{f',line={p.line}' if p.line else ''},title=qmspec {p.key or 'spec'}::"  # noqa: E731
                                     f"{p.message} (fix: {p.fix})\n")
        errors = "".join(annotate("error", p) for _, problems in results for p in problems)
        return errors + "".join(annotate("warning", w) for w in warnings) + \
            ("" if errors else "".join(f"::notice file={path}::valid\n" for path, _ in results))
    if fmt == "markdown":
        rows = [f"| `{p.file}` | {p.line or ''} | `{p.key}` | {p.message} | {p.fix} |" for _, problems in results for p in problems]
        rows += [f"| `{w.file}` | {w.line or ''} | `{w.key}` | warning: {w.message} | {w.fix} |" for w in warnings]
        header = ["| file | line | key | problem | fix |", "|---|---|---|---|---|"]
        return "\n".join(header + rows if rows else [f"`{path}`: valid" for path, _ in results]) + "\n"
    said = "".join(f"ok: {path}\n" if not problems else "\n".join(map(str, problems)) + "\n" for path, problems in results)
    return said + "".join(f"warning: {w}\n" for w in warnings)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan as JSON, to apply exactly as saved.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes to make.")
@preflight_option
@state_options
@connection_options
def plan(spec_path, out, fmt, detailed_exitcode, no_preflight, state, connection):
    """Diff the spec against live Qdrant and print the ordered plan. Writes nothing to Qdrant."""
    spec, target = connection.spec_and_target(spec_path)
    click.echo(f"reading live state from the {target.describe()}", err=True)
    live = _observe(target, focus=[name for name in (spec.collection, spec.source.collection) if name],
                    focus_aliases=[spec.alias], files=spec.source.files)
    result = plan_migration(spec, live, spec_file=spec_path)
    if not result.refused and not no_preflight:
        result = plan_migration(spec, live, spec_file=spec_path, models=_check_models(result, spec, target, None))
    click.echo(render(result, fmt), nl=False)
    for note in _state_notes(target, state, spec.alias, command_line("apply", spec_path, connection, state)):
        click.echo(f"> **Note:** {note}" if fmt == "markdown" else f"note: {note}", err=fmt == "json")
    if out and result.refused:
        click.echo(f"not saving {out}: a refused plan cannot be applied", err=True)
    elif out:
        Path(out).write_text(result.to_json(), encoding="utf-8")
        click.echo(f"saved plan {result.hash} to {out}", err=True)
    if result.refused:
        sys.exit(EXIT_REFUSED)
    sys.exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@state_options
@connection_options
def show(plan_path, fmt, state, connection):
    """Print a saved plan after checking it: exit 1 if it is not what its spec plans to (edited), 4 if live state
    moved since it was made."""
    from .planning.decide import check_saved

    saved = Plan.from_json(Path(plan_path).read_text(encoding="utf-8"))
    target = connection.target()
    checked = check_saved(saved, lambda focus, aliases, files: _observe(target, focus=focus, focus_aliases=aliases, files=files))
    click.echo(render(saved, fmt), nl=False)
    for note in _state_notes(target, state, saved.alias, command_line("apply", plan_path, connection, state)):
        click.echo(f"> **Note:** {note}" if fmt == "markdown" else f"note: {note}", err=fmt == "json")
    if checked.action in ("stale", "tampered"):
        click.echo(checked.message, err=True)
        sys.exit(EXIT_STALE if checked.action == "stale" else EXIT_ERROR)


def _load_spec_or_plan(source: str, env: str | None):
    if source.endswith(".json"):
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise QmspecError(f"cannot read plan file {source}: {exc.strerror}") from None
        return None, Plan.from_json(text)
    return load_spec(source, env=env), None


@cli.command()
@click.argument("source", metavar="SPEC|PLAN.json", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking (CI).")
@click.option("--stop-before-swap", is_flag=True,
              help="Build and verify the new collection, then stop with the apply open; a later `qmspec apply` promotes it.")
@click.option("--accept-quality", metavar="REASON",
              help="Accept failed quality gates of the open apply, for the reason given (journaled), and go on.")
@click.option("--workers", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Run the partitions of a copy or backfill on this many workers (local processes, or Ray tasks with --engine ray).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: processes on this machine; ray: a Ray cluster (needs qmspec[ray]).")
@click.option("--ray-address", metavar="ADDRESS", help="Ray cluster to join (default: RAY_ADDRESS, else a local cluster).")
@preflight_option
@state_options
@connection_options
def apply(source, auto_approve, stop_before_swap, accept_quality, workers, engine, ray_address, no_preflight, state, connection):
    """Execute the plan: create, copy, embed, verify, swap the alias; resumable after a crash."""
    from .applying.engines import engine_for
    from .applying.runner import apply_plan
    from .applying.verify import VerificationFailed
    from .planning.decide import decide

    spec, saved = _load_spec_or_plan(source, connection.env)
    target = connection.target(spec)
    alias = spec.alias if spec else saved.alias
    with session(target, state, alias, "qmspec apply " + source, command_line("unlock", source, connection, state)) as (client, store):
        journal = Journal.read(store, alias)
        read_live = lambda focus, aliases, files: _observe(target, focus=focus, focus_aliases=aliases, files=files, client=client)  # noqa: E731
        decision = decide(journal.record, spec, saved, read_live, spec_file=source)
        if decision.action == "blocked" and not journal.active.swapped and \
                _serving(client, alias) == journal.active.alias_before:
            _abandon(client, journal, auto_approve)
            decision = decide(journal.record, spec, saved, read_live, spec_file=source)
        if decision.action == "fresh" and not no_preflight:
            models = _check_models(decision.plan, spec, target, client)
            if spec is not None:  # plan again with what the preflight learned (the commit a name resolved to)
                decision = decide(journal.record, spec, saved, read_live, spec_file=source, models=models)
        if decision.action in ("refused", "fresh"):
            click.echo(render(decision.plan, "text"), nl=False)
        if decision.message:
            click.echo(decision.message, err=decision.action in REFUSALS)
        if decision.action == "nothing":
            sys.exit(EXIT_OK)
        if decision.action in REFUSALS:
            sys.exit(REFUSALS[decision.action])
        if accept_quality and not (decision.action == "resume" and journal.active.status == "verify_failed"):
            raise QmspecError("--accept-quality accepts the failed quality gates of an open apply; there is none for alias "
                              f"{alias} (run the apply first; if its quality gates fail, it stops and says so)")
        _confirm(auto_approve)
        if decision.action == "fresh":
            journal.start(decision.plan)
        if accept_quality:
            journal.active.accepted = {"reason": accept_quality, "at": now()}
            journal.save()
        runner = engine_for(engine, workers, ray_address)
        try:
            status = apply_plan(decision.plan, client, journal, target.embedded, click.echo, title=title,
                                stop_before_swap=stop_before_swap, engine=runner, target=target)
        except VerificationFailed as failed:
            _write_report(journal, state.folder)
            way_out = [f"fix the cause and run `{command_line('apply', source, connection, state)}` again (it verifies again)",
                       f"or undo it: `{command_line('rollback', source, connection, state)}`"]
            if failed.report.quality_failed:
                way_out.insert(1, f"or accept the quality drop: `{command_line('apply', source, connection, state)} --accept-quality \"why\"` "
                                  "(the reason is journaled)")
            click.echo(f"{failed}\n" + "\n".join(f"  - {line}" for line in way_out), err=True)
            sys.exit(EXIT_REFUSED)
        finally:
            runner.close()
        _write_report(journal, state.folder)
        serving = _serving(client, alias)  # what the apply did, read back, not what the plan meant to do
    if status == "staged":
        click.echo(f"Staged: {decision.plan.collection} is built and verified; alias {alias} still serves {serving}. Review it "
                   f"(`qmspec compare`, the verification report), then promote it with `{command_line('apply', source, connection, state)}`.")
        return
    click.echo(f"Apply complete: alias {alias} serves {serving}.")


REFUSALS = {"refused": EXIT_REFUSED, "stale": EXIT_STALE, "tampered": EXIT_ERROR, "blocked": EXIT_ERROR}


def _state_notes(target: Target, state: StateOptions, alias: str, apply_command: str) -> list[str]:
    """What the journal and the lock say of the alias, for a plan reviewed in a pull request."""
    if state.kind == "file":
        store = FileStateStore.for_target(target.key, state.folder, target.legacy_key)
        record, holder = store.read(alias), store.lock_holder(alias)
    else:
        with session(target, state, alias, None) as (_, store):
            record, holder = store.read(alias), store.lock_holder(alias)
    notes = []
    pending = record.unfinished()
    if pending:
        notes.append(f"an apply of plan {pending.plan_hash} for alias {alias} is unfinished ({pending.status} after "
                     f"{pending.steps_done} of {len(pending.steps)} steps): `{apply_command}` of the same spec resumes it, "
                     "`qmspec rollback` undoes it")
    if holder:
        from .applying.journal import describe_holder

        notes.append(f"alias {alias} is locked by {describe_holder(holder)}")
    return notes


def _serving(client, alias: str) -> str | None:
    from .applying.qdrant_ops import current_alias_target

    return current_alias_target(client, alias)


def _abandon(client, journal: Journal, auto_approve: bool) -> None:
    """The spec changed after an apply failed or stopped before its swap: undo what that apply made (nothing served
    it), so the new spec plans from where things were."""
    from .applying.rollback import plan_rollback, rollback as undo

    active = journal.active
    actions = plan_rollback(client, journal, drop_new=False)
    click.echo(f"the apply of plan {active.plan_hash} stopped ({active.status}) before its swap; the spec changed since, "
               "so it is abandoned first:")
    click.echo("\n".join(f"  - {action.description}" for action in actions) or "  - nothing to undo in Qdrant")
    _confirm(auto_approve, "Abandon it?")
    undo(journal, actions, lambda line: None)


def _confirm(auto_approve: bool, question: str = "Apply this plan?") -> None:
    """Every command that changes Qdrant asks the same way: `yes` at a terminal or piped in, or --auto-approve."""
    if auto_approve:
        return
    command = click.get_current_context().info_name
    if sys.stdin.isatty():
        answer = click.prompt(f"{question} Only 'yes' is accepted", default="", show_default=False)
    else:
        answer = sys.stdin.readline()
    if answer.strip() != "yes":
        raise QmspecError(f"{command} needs confirmation: answer yes at a terminal or on standard input, or pass "
                          "--auto-approve (CI)")


def _write_report(journal: Journal, state_dir: str) -> None:
    verification = journal.active.verification if journal.active else None
    if not verification:
        return
    folder = Path(state_dir).parent / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{slug(journal.alias)}-{journal.active.plan_hash}"
    Path(f"{stem}.json").write_text(verification["json"], encoding="utf-8")
    Path(f"{stem}.md").write_text(verification["markdown"], encoding="utf-8")
    click.echo(f"verification report: {stem}.json, {stem}.md", err=True)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--drop-new", is_flag=True, help="Also delete the collections the apply created.")
@click.option("--auto-approve", is_flag=True, help="Roll back without asking (CI).")
@state_options
@connection_options
def rollback(spec_path, drop_new, auto_approve, state, connection):
    """Undo the last apply: point the alias back, restore settings changed in place, and delete what a failed or
    unfinished apply created that never served (with --drop-new, what any apply created)."""
    from .applying.rollback import plan_rollback, rollback as undo

    spec, target = connection.spec_and_target(spec_path)
    with session(target, state, spec.alias, "qmspec rollback " + spec_path, command_line("unlock", spec_path, connection, state)) as (client, store):
        journal = Journal.read(store, spec.alias)
        actions = plan_rollback(client, journal, drop_new)
        click.echo(f"Rollback of plan {journal.active.plan_hash} ({journal.active.status}) for alias {spec.alias}:")
        click.echo("\n".join(f"  - {action.description}" for action in actions) or "  nothing to change in Qdrant; the journal is closed")
        _confirm(auto_approve, "Roll back?")
        undo(journal, actions, click.echo)
    click.echo(f"Rollback complete for alias {spec.alias}.")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Delete without asking (CI).")
@state_options
@connection_options
def cleanup(spec_path, auto_approve, state, connection):
    """Delete the collection the alias served before the last apply, once that apply was verified and swapped."""
    from .applying.rollback import cleanup as finish, replaced_collection

    spec, target = connection.spec_and_target(spec_path)
    with session(target, state, spec.alias, "qmspec cleanup " + spec_path, command_line("unlock", spec_path, connection, state)) as (client, store):
        journal = Journal.read(store, spec.alias)
        old = replaced_collection(journal.active)
        if old and not auto_approve:
            click.echo(f"this deletes collection {old} and every point in it")
        _confirm(auto_approve or not old)
        finish(client, journal, click.echo)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@state_options
@connection_options
def status(spec_path, fmt, state, connection):
    """Where things stand: the alias's live target, the last apply and its steps, the lock."""
    from .reports.status import describe_status, render_status, render_status_markdown

    spec, target = connection.spec_and_target(spec_path)
    with session(target, state, spec.alias, None) as (client, store):
        live = _observe(target, focus=[], focus_aliases=[spec.alias], client=client)
        report = describe_status(store.read(spec.alias), store.lock_holder(spec.alias), live)
    click.echo({"json": lambda: json.dumps(report, indent=2), "markdown": lambda: render_status_markdown(report),
                "text": lambda: render_status(report)}[fmt]())


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Release even a lock whose holder may still run.")
@click.option("--auto-approve", is_flag=True, help="Release without asking (CI).")
@state_options
@connection_options
def unlock(spec_path, force, auto_approve, state, connection):
    """Release the apply lock of an alias left behind by a process that died."""
    spec, target = connection.spec_and_target(spec_path)
    # A file lock is released without opening Qdrant: the embedded store may be held by the very apply it names.
    opened = nullcontext((None, FileStateStore.for_target(target.key, state.folder, target.legacy_key))) if state.kind == "file" else \
        session(target, state, spec.alias, None)
    with opened as (_, store):
        holder = store.lock_holder(spec.alias)
        if holder is None:
            click.echo(f"alias {spec.alias} is not locked")
            return
        if not holder_is_dead(holder) and not force:
            raise QmspecError(f"the lock on {spec.alias} is held by pid {holder.get('pid')} on {holder.get('host')}, which "
                              "may still run; stop that process first, or pass --force if you know it is gone")
        click.echo(f"this releases the lock on alias {spec.alias} held by pid {holder.get('pid')} on {holder.get('host')}")
        _confirm(auto_approve, "Release it?")
        store.release(spec.alias)
    click.echo(f"released the lock on {spec.alias} (was pid {holder.get('pid')} on {holder.get('host')})")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--a", "side_a", metavar="COLLECTION[:VECTOR]",
              help="First side (default: what the alias serves now). A bare collection runs the query recorded for it, fused ones included.")
@click.option("--b", "side_b", metavar="COLLECTION[:VECTOR]", help="Second side (default: the spec's collection, with the spec's query).")
@click.option("--queries-file", type=click.Path(exists=True, dir_okay=False), help="One query per line (default: the judged queries).")
@click.option("--judgments", "judgment_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help='JSON Lines {"query", "relevant"}, or BEIR queries.jsonl and qrels .tsv (give both) '
                   "(default: the spec's verify.quality judgments).")
@click.option("--metric", "metrics", multiple=True, metavar="NAME@K", help="ndcg@10, recall@100, mrr@10, precision@5, map@100 "
              "(default: the spec's verify.quality metrics, or ndcg@K and recall@K).")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Results per query for the overlap.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Also draw per-query wins and losses and the means to this PNG.")
@connection_options
def compare(spec_path, side_a, side_b, queries_file, judgment_files, metrics, k, fmt, plot_path, connection):
    """Run the same queries on two retrievers (old and new model, dense and hybrid) and compare them."""
    from .applying.qdrant_ops import aliases
    from .connect import open_client
    from .judgments import load_judgments
    from .planning.spec import METRIC
    from .reports import compare as comparing

    spec, target = connection.spec_and_target(spec_path)
    quality = spec.verify.quality
    files = judgment_files or (quality.judgments if quality and not queries_file else ())
    judgments = load_judgments(files) if files else None
    metrics = list(metrics) or (list(quality.metrics) if quality else [f"ndcg@{k}", f"recall@{k}"])
    unknown = [metric for metric in metrics if not METRIC.match(metric)]
    if unknown:
        raise QmspecError(f"--metric {unknown[0]}: use ndcg@K, recall@K, mrr@K, precision@K or map@K")
    queries = judgments.queries if judgments else _compare_queries(spec, queries_file)
    local = _models_here(spec)
    with open_client(target) as client:
        serving = aliases(client).get(spec.alias, spec.alias)
        a = comparing.resolve_side(client, side_a or serving, spec.query_shape)
        b = comparing.resolve_side(client, side_b or spec.collection, spec.query_shape)
        click.echo(f"compare: {len(queries)} queries on {a.label} and {b.label}", err=True)
        result = comparing.compare(client, a, b, queries, k, judgments, metrics if judgments else [], local)
    renderers = {"text": comparing.render_text, "markdown": comparing.render_markdown, "json": lambda r: r.to_json()}
    click.echo(renderers[fmt](result), nl=False)
    if plot_path:
        comparing.plot(result, plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="JSON Lines file of candidates to judge.")
@click.option("--queries-file", type=click.Path(exists=True, dir_okay=False), help="A query log, one query per line (best: real queries).")
@click.option("--sample", "sample_count", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Without --queries-file: this many pseudo-queries, a sentence of random points' text.")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Top results of each side to judge.")
@connection_options
def judge(spec_path, out_path, queries_file, sample_count, k, connection):
    """Write candidate results for a person to judge: the same queries on what the alias serves now and on the
    spec's collection. Fill each record's `relevant` ids, then use the file as verify.quality.judgments."""
    from .applying.qdrant_ops import aliases
    from .connect import open_client
    from .reports.compare import resolve_side
    from .reports.judge import candidates, sample_queries, to_json_lines

    spec, target = connection.spec_and_target(spec_path)
    text_field = next((vector.text_field for vector in (*spec.vectors, *spec.sparse_vectors) if vector.model), "text")
    local = _models_here(spec)
    with open_client(target) as client:
        serving = aliases(client).get(spec.alias)
        names = [name for name in dict.fromkeys((serving, spec.collection)) if name and client.collection_exists(name)]
        if not names:
            raise QmspecError(f"neither the alias {spec.alias} nor {spec.collection} exists yet: apply a collection to judge first")
        queries = _compare_queries(spec, queries_file) if queries_file else sample_queries(client, names[-1], text_field, sample_count)
        sides = [resolve_side(client, name, spec.query_shape) for name in names]
        records = candidates(client, sides, queries, k, text_field, local)
    Path(out_path).write_text(to_json_lines(records), encoding="utf-8")
    click.echo(f"wrote {len(records)} queries with their candidates from {', '.join(side.label for side in sides)} to {out_path}; "
               "fill each `relevant` list with the ids that answer the query, then set verify.quality.judgments to the file")


def _models_here(spec) -> dict:
    """Model name -> the settings the spec runs it with on this machine (a local path, a device), for searching
    collections whose metadata records the model but not where it lies here."""
    return {vector.model.name: vector.model.settings for vector in (*spec.vectors, *spec.sparse_vectors) if vector.model}


def _compare_queries(spec, queries_file) -> dict:
    if queries_file:
        lines = [line.strip() for line in Path(queries_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    elif spec.verify.search:
        lines = list(spec.verify.search.queries)
    else:
        raise QmspecError("no queries to compare: give --judgments or --queries-file, or verify.quality / verify.search in the spec")
    return {f"q{number}": text for number, text in enumerate(lines, 1)}


@cli.command()
@click.option("--alias", "aliases", multiple=True, metavar="ALIAS", help="Alias to write a spec for (repeatable; default: every alias).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write <alias>.yaml files here instead of printing.")
@connection_options
def inspect(aliases, out_dir, connection):
    """Write a spec from live state for each alias, so existing collections come under management."""
    from .reports.inspect import spec_from_live, to_yaml

    target = connection.target()
    live = _observe(target, focus=[])
    chosen = list(aliases) or sorted(live.aliases)
    if not chosen:
        raise QmspecError(f"the {target.describe()} has no alias to inspect; qmspec manages collections behind aliases")
    if out_dir:  # the modeline of each written spec resolves from its own folder
        _write_schema(Path(out_dir))
    for alias in chosen:
        text = to_yaml(spec_from_live(live, alias), schema=SCHEMA_PATH.name)  # beside it: `qmspec schema --out`
        if out_dir:
            Path(out_dir, f"{slug(alias)}.yaml").write_text(text, encoding="utf-8")
            click.echo(f"wrote {Path(out_dir, slug(alias) + '.yaml')}", err=True)
        else:
            click.echo(text if len(chosen) == 1 else f"---\n{text}", nl=False)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when live state drifted.")
@state_options
@connection_options
def drift(spec_path, fmt, detailed_exitcode, state, connection):
    """Report where live state moved away from the spec and from the last apply."""
    from .reports.drift import drift as find_drift, not_applicable, render_drift

    spec, target = connection.spec_and_target(spec_path)
    with session(target, state, spec.alias, None) as (client, store):
        live = _observe(target, focus=[spec.collection], focus_aliases=[spec.alias], client=client)
        found = find_drift(spec, live, store.read(spec.alias))
    click.echo(render_drift(spec.alias, found, fmt, f"no drift: {target.describe()} matches {spec_path} and the last apply",
                            not_applicable(spec, live)), nl=False)
    sys.exit(EXIT_CHANGES if found and detailed_exitcode else EXIT_OK)


@cli.command("diff")
@click.option("--env", "envs", multiple=True, required=True, metavar="NAME", help="Two environments of qmspec.yaml.")
@click.option("--alias", metavar="ALIAS", help="Compare only the collections serving this alias, whatever their names.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the environments differ.")
def diff_environments(envs, alias, fmt, detailed_exitcode):
    """Compare the live state of two environments."""
    from .reports.envdiff import compare_environments, facts, render_json, render_markdown, render_text

    if len(envs) != 2:
        raise QmspecError("give exactly two environments: --env staging --env prod")
    sides = [facts(_observe(resolve_target(env=name)), alias) for name in envs]
    differences = compare_environments(*sides)
    renderer = {"json": render_json, "markdown": render_markdown, "text": render_text}[fmt]
    click.echo(renderer(envs[0], envs[1], differences), nl=False)
    sys.exit(EXIT_CHANGES if differences and detailed_exitcode else EXIT_OK)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write qmspec.schema.json into this folder (where "
                                                                          "your specs live) instead of printing it.")
def schema(out_dir):
    """Print the spec's JSON Schema, or write it beside your specs for editors (`# yaml-language-server: $schema=...`)."""
    if not out_dir:
        click.echo(SCHEMA_PATH.read_text(encoding="utf-8"), nl=False)
        return
    written = _write_schema(Path(out_dir))
    click.echo(f"wrote {written}; start each spec with `# yaml-language-server: $schema={os.path.relpath(written, out_dir)}`", err=True)


def _write_schema(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCHEMA_PATH.name).write_text(SCHEMA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return folder / SCHEMA_PATH.name


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules(fmt):
    """List the safety rules: code, class, severity, what it catches and the way out."""
    if fmt == "json":
        click.echo(json.dumps({"format": 1, "rules": [{"code": r.code, "class": r.category, "severity": r.severity, "title": r.title,
                                                         "fix": r.fix, "can_be_accepted": r.allowable} for r in RULES.values()]}, indent=2))
        return
    if fmt == "markdown":
        click.echo("| code | class | severity | rule | way out | can be accepted |\n|---|---|---|---|---|---|")
        for rule in RULES.values():
            click.echo(f"| `{rule.code}` | {rule.category} | {rule.severity} | {rule.title} | {rule.fix} | {'yes' if rule.allowable else 'no'} |")
        return
    for rule in RULES.values():
        click.echo(f"{rule.code}  {rule.severity:<7}  {CLASSES[rule.code[:2]]}: {rule.title}\n        fix: {rule.fix}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (CI's cancel) unwinds like Ctrl-C: the journal records it, the lock is released


EXIT_INTERRUPTED = 130


def run(args: list[str]) -> int:
    """Run one command line and return its exit code: every expected failure is a message and exit 1, never a
    traceback. Usage errors exit 1 too, since 2 means 'changes pending'."""
    try:
        cli.main(args, prog_name="qmspec", standalone_mode=False)
    except SystemExit as done:  # commands end with sys.exit(code)
        return EXIT_OK if done.code is None else done.code if isinstance(done.code, int) else EXIT_ERROR
    except QmspecError as error:
        click.echo(f"error: {redact(str(error))}", err=True)
        return EXIT_ERROR
    except click.exceptions.Abort as abort:  # click turns Ctrl-C (and our SIGTERM) into Abort
        if isinstance(abort.__cause__, KeyboardInterrupt):
            click.echo("interrupted: what was done is journaled and the lock released; run the same command again to "
                       "resume", err=True)
            return EXIT_INTERRUPTED
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as error:
        error.show()
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - a bug in qmspec: say so plainly, keep the traceback on demand
        if os.environ.get("QMSPEC_DEBUG"):
            raise
        click.echo(f"internal error (a qmspec bug, please report it): {type(error).__name__}: {error}\n"
                   "rerun with QMSPEC_DEBUG=1 for the traceback", err=True)
        return EXIT_ERROR
    return EXIT_OK


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
