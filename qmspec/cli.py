"""Command line: parse options, call the workflow (workflow.py), render its outcome, choose the exit code. Nothing
else: what a command does is a library function a test or an orchestrator calls without argv.

Results go to standard output; progress, notes and retries are log records on standard error (-v adds each batch
and request, -q keeps only results and errors).

Exit codes: 0 success or no changes, 1 error, 2 changes pending (with --detailed-exitcode),
3 plan refused by a safety rule, 4 a saved plan is stale, 130 interrupted.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import signal
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import click

from . import __version__, workflow
from .errors import QmspecError, redact
from .logs import EVENT, ROOT, plain_output
from .planning.record import STATE_COLLECTION, slug
from .planning.spec import SCHEMA_PATH
from .reports.render import render
from .workflow import DEFAULT_STATE_DIR, EXIT_CANCELLED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, Preview

# qdrant_client takes ~2 s to import: commands that never reach Qdrant (validate, schema, rules) must not pay it,
# so the modules that touch Qdrant are imported inside the functions that need them.


def connection_options(command):
    """--path, --url, --api-key-env and --env, handed to the command as keyword arguments of the workflow."""
    command = click.option("--env", "env", metavar="NAME", help="Environment named in qmspec.yaml (its path or URL and key variable).")(command)
    command = click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (default QDRANT_API_KEY).")(command)
    command = click.option("--url", metavar="URL", help="Qdrant server URL.")(command)
    return click.option("--path", metavar="DIR", help="Embedded Qdrant store (default .qmspec/qdrant).")(command)


def state_options(command=None, *, lock=True):
    """--state and --state-dir, and for commands that take the alias's lock, --lock-timeout."""
    def decorate(command):
        if lock:
            command = click.option("--lock-timeout", type=Duration(), default="0s", show_default=True, metavar="DURATION",
                                   help="Wait this long (30s, 5m, 1h) for another apply's lock before giving up.")(command)
        command = click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True, metavar="DIR",
                               help="Where file state (journal, locks, records) is kept.")(command)
        return click.option("--state", "state", type=click.Choice(["file", "qdrant"]), default="file", show_default=True,
                            help=f"Keep the journal, lock and records in local files, or in Qdrant ({STATE_COLLECTION}) so CI "
                                 "runners share them.")(command)

    return decorate(command) if command else decorate


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


def logging_options(command):
    """-v/--verbose and -q/--quiet: how much of qmspec's log reaches standard error."""
    @functools.wraps(command)
    def with_logging(*args, verbose: int, quiet: bool, **kwargs):
        _show_log(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
        return command(*args, **kwargs)

    with_logging = click.option("-q", "--quiet", is_flag=True, help="Only results and errors.")(with_logging)
    return click.option("-v", "--verbose", count=True, help="Also each batch, request and retry.")(with_logging)


class _ToStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        echo(record.getMessage(), err=True)


class _JsonEvents(logging.Handler):
    """`--format json`: one JSON object per line on stdout as things happen (schemas/events.schema.json): the events
    qmspec tags (step started and finished, progress, retries, checks), every warning, and the other INFO lines as
    `log`. The human log still goes to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        tagged = getattr(record, EVENT, None)
        if tagged is None and record.levelno < logging.INFO:
            return
        kind = (tagged or {}).get("type") or ("warning" if record.levelno >= logging.WARNING else "log")
        emit_event(kind, record.getMessage().strip(), record.levelname.lower(),
                   **{key: value for key, value in (tagged or {}).items() if key != "type"})


def emit_event(kind: str, message: str, level: str = "info", /, **fields) -> None:
    line = {"type": kind, "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "level": level, "message": message}
    echo(json.dumps(line | {key: value for key, value in fields.items() if value is not None}, default=str))


def _streaming_events() -> bool:
    return any(isinstance(handler, _JsonEvents) for handler in logging.getLogger(ROOT).handlers)


def events_option(command):
    """--format json on the commands that change things: the event stream instead of the text; such a command
    cannot ask, so it needs --auto-approve, as Terraform's `apply -json` does."""
    @functools.wraps(command)
    def with_events(*args, fmt: str, **kwargs):
        if fmt == "json":
            if not kwargs.get("auto_approve"):
                raise click.UsageError("--format json streams events and cannot ask for confirmation: pass --auto-approve too")
            logging.getLogger(ROOT).addHandler(_JsonEvents())
        return command(*args, **kwargs)

    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="json: one event per line on stdout as the command runs (schemas/events.schema.json).")(with_events)


def say(text: str = "", **options) -> None:
    """A result line: on stdout, or under --format json on stderr (stdout holds the events)."""
    echo(text, **({"err": True} if _streaming_events() else {}), **options)


def summary(status: str, message: str, exit_code: int, **fields) -> None:
    """The stream's last event: how the command ended."""
    if _streaming_events():
        emit_event("summary", message, status=status, exit_code=exit_code, **fields)


def echo(text: str = "", **options) -> None:
    """Everything the command line prints, scrubbed by the one scrubber (errors.redact)."""
    click.echo(redact(text), **options)


def _show_log(level: int | None) -> None:
    """Show qmspec's records of `level` and above on stderr for this command; None: stop, and leave the logger's level
    as it was before (a program that runs commands in process keeps its own configuration)."""
    root = logging.getLogger(ROOT)
    shown = [handler for handler in root.handlers if isinstance(handler, _ToStderr)]
    for handler in shown:
        root.removeHandler(handler)
    if level is None:
        for handler in [handler for handler in root.handlers if isinstance(handler, _JsonEvents)]:
            root.removeHandler(handler)
        root.setLevel(shown[0].previous if shown else root.level)
        return
    handler = _ToStderr()
    handler.setLevel(level)
    handler.previous = shown[0].previous if shown else root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if _streaming_events() else level)  # tagged DEBUG events (each check) reach the stream


def preflight_option(command):
    return click.option("--no-preflight", is_flag=True,
                        help="Do not load the models and embed a sample before planning (an API that must not be called).")(command)


def confirmer(auto_approve: bool):
    """Print what is about to happen, then ask: `yes` at a terminal or piped in, or --auto-approve."""
    def confirm(preview: Preview) -> bool:
        if _streaming_events():
            emit_event("plan", preview.question, plan=preview.plan.to_dict() if preview.plan is not None else None,
                       lines=list(preview.lines) or None)
        else:
            if preview.plan is not None:
                echo(plan_text(preview.plan), nl=False)
            for line in preview.lines:
                echo(line)
        if auto_approve:
            return True
        if sys.stdin.isatty():
            answer = click.prompt(f"{preview.question} Only 'yes' is accepted", default="", show_default=False)
        else:
            answer = sys.stdin.readline()
            if not answer:  # nothing on standard input (CI): no one was asked
                raise workflow.NotConfirmed(f"{preview.question} needs an answer: answer yes at a terminal or on standard "
                                            "input, or pass --auto-approve (CI)")
        return answer.strip() == "yes"

    return confirm


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qmspec")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain plans at a terminal too (also NO_COLOR, see no-color.org).")
def cli(no_color):
    """Declarative embedding-model migrations for Qdrant."""
    plain_output(no_color)


STEP_COLORS = {"+": "green", "~": "yellow", "-": "red", "?": "cyan", "=": None}
STEP_LINE = re.compile(r"^(  )([+~?=-])( .*)$")


def plan_text(plan) -> str:
    """A plan as text; at a terminal, its step symbols coloured as Terraform's are (+ create, ~ change, - delete)."""
    text = render(plan, "text")
    if plain_output() or not sys.stdout.isatty():
        return text

    def coloured(line: str) -> str:
        found = STEP_LINE.match(line)
        colour = STEP_COLORS.get(found.group(2)) if found else None
        return f"{found.group(1)}{click.style(found.group(2), fg=colour, bold=True)}{found.group(3)}" if colour else line

    return "\n".join(map(coloured, text.split("\n")))


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--env", metavar="NAME", help="Validate with this environment's values merged in (default: the spec alone and "
                                            "with each of its environments).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text", show_default=True,
              help="github: workflow annotations that mark the file and line in a pull request.")
def validate(specs, env, fmt):
    """Check spec files against the schema and the semantic rules. Touches no Qdrant."""
    from .reports.validation import render_validation

    result = workflow.validate(*specs, env=env)
    echo(render_validation(result.files, fmt, result.warnings, result.inputs), nl=False, err=fmt == "text" and bool(result.exit_code))
    sys.exit(result.exit_code)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan as JSON, to apply exactly as saved.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes to make.")
@preflight_option
@state_options(lock=False)
@connection_options
@logging_options
def plan(spec_path, out, fmt, detailed_exitcode, no_preflight, state, state_dir, **connection):
    """Diff the spec against live Qdrant and print the ordered plan. Writes nothing to Qdrant."""
    review = workflow.review(spec_path, state=state, state_dir=state_dir, preflight=not no_preflight,
                             detailed_exitcode=detailed_exitcode, **connection)
    echo(plan_text(review.plan) if fmt == "text" else render(review.plan, fmt), nl=False)
    _notes(review.notes, fmt)
    if out and review.plan.refused:
        echo(f"not saving {out}: a refused plan cannot be applied", err=True)
    elif out:
        Path(out).write_text(review.plan.to_json(), encoding="utf-8")
        echo(f"saved plan {review.plan.hash} to {out}", err=True)
    sys.exit(review.exit_code)


def _notes(notes, fmt: str) -> None:
    for note in notes:
        echo(f"> **Note:** {note}" if fmt == "markdown" else f"note: {note}", err=fmt == "json")


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@state_options(lock=False)
@connection_options
@logging_options
def show(plan_path, fmt, state, state_dir, **connection):
    """Print a saved plan after checking it: exit 1 if it is not what its spec plans to (edited), 4 if live state
    moved since it was made."""
    review = workflow.show(plan_path, state=state, state_dir=state_dir, **connection)
    echo(plan_text(review.plan) if fmt == "text" else render(review.plan, fmt), nl=False)
    _notes(review.notes, fmt)
    if review.message:
        echo(review.message, err=True)
    sys.exit(review.exit_code)


@cli.command()
@click.argument("source", metavar="SPEC|PLAN.json", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Apply without asking (CI).")
@click.option("--stop-before-swap", is_flag=True,
              help="Build and verify the new collection (or the vectors added in place), then stop before the alias swap (or the "
                   "query switch) with the apply open; a later `qmspec apply` promotes it.")
@click.option("--accept-quality", metavar="REASON",
              help="Accept failed quality gates of the open apply, for the reason given (journaled), and go on.")
@click.option("--abandon-staged", is_flag=True,
              help="Let a changed spec delete the collection of an apply that was verified or staged (and what the application wrote there).")
@click.option("--workers", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Run the partitions of a copy or backfill on this many workers (local processes, or Ray tasks with --engine ray).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: processes on this machine; ray: a Ray cluster (needs qmspec[ray]).")
@click.option("--ray-address", metavar="ADDRESS", help="Ray cluster to join (default: RAY_ADDRESS, else a local cluster).")
@click.option("--rehearse", type=click.IntRange(1, 1_000_000), metavar="N",
              help="Run the whole plan (and a rollback) on a scratch copy of N sampled points instead; nothing live is written.")
@preflight_option
@state_options
@connection_options
@events_option
@logging_options
def apply(source, auto_approve, no_preflight, rehearse, **options):
    """Execute the plan: create, copy, embed, verify, swap the alias; resumable after a crash."""
    if rehearse:
        sys.exit(_rehearse(source, rehearse, not no_preflight, options))
    result = workflow.apply(source, confirm=confirmer(auto_approve), preflight=not no_preflight, **options)
    summary(result.status, result.message, result.exit_code, plan=result.plan.hash if result.plan else None,
            findings=[finding.code for finding in result.plan.findings if finding.refuses] if result.status == "refused" else None,
            report=json.loads(result.report.to_json()) if result.report is not None else None, way_out=list(result.way_out) or None)
    if result.status in ("refused", "stale"):
        if result.status == "refused":
            say(plan_text(result.plan), nl=False)
        echo(result.message, err=True)
        sys.exit(result.exit_code)
    if result.status == "nothing":
        say(result.message)
        sys.exit(result.exit_code)
    if result.report is not None:
        say(result.report.to_text(), nl=False)
    if result.report_files:
        echo(f"verification report: {', '.join(result.report_files)}", err=True)
    if result.status == "verify_failed":
        echo(f"{result.message}\n" + "\n".join(f"  - {line}" for line in result.way_out), err=True)
    else:
        say(result.message)
    sys.exit(result.exit_code)


def _rehearse(source: str, sample: int, preflight: bool, options: dict) -> int:
    from .planning.modelfacts import duration

    live_only = {"stop_before_swap": False, "accept_quality": None, "abandon_staged": False, "workers": 1, "engine": "local", "ray_address": None,
                 "state": "file", "state_dir": workflow.DEFAULT_STATE_DIR, "lock_timeout": 0.0}
    given = [name for name, default in live_only.items() if options.get(name, default) != default]
    if given or source.endswith(".json"):
        raise click.UsageError(f"--rehearse plans the spec afresh on a scratch copy: it takes a spec, and no --{(given or ['plan file'])[0].replace('_', '-')}")
    done = workflow.rehearse(source, sample=sample, preflight=preflight, **{key: options.get(key) for key in ("env", "path", "url", "api_key_env")})
    said = ", ".join(f"{name}: {copied:,} of {live:,} points" for name, (copied, live) in done.sampled.items())
    say(f"Rehearsal of alias {done.alias} on a scratch copy ({said}); times at full size are the sample's x{done.scale:,.1f}:")
    for step in done.steps:
        at_size = step.extrapolated_s
        full = "" if at_size is None else f"   about {at_size:.1f}s at full size" if at_size < 60 else f"   about {duration(at_size)} at full size"
        say(f"  {step.number:>2}. {step.title:<60} {step.seconds:7.1f}s{full}")
    if done.applied.report is not None:
        say(done.applied.report.to_text(), nl=False)
    for line in done.rolled_back:
        say(f"  rolled back: {line}")
    undone = " and was rolled back" if not any(line.startswith("not possible") for line in done.rolled_back) else "; it cannot be rolled back"
    verdict = {"succeeded": f"passed: the plan ran end to end on the sample{undone}",
               "nothing": "nothing to rehearse: the plan has no changes"}.get(done.applied.status, f"{done.applied.status}: {done.applied.message}")
    say(f"Rehearsal {verdict}; nothing live was changed.")
    summary(done.applied.status, verdict, done.exit_code, steps=[dataclasses.asdict(step) for step in done.steps])
    return done.exit_code


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--drop-new", is_flag=True, help="Also delete the collections the apply created.")
@click.option("--auto-approve", is_flag=True, help="Roll back without asking (CI).")
@state_options
@connection_options
@events_option
@logging_options
def rollback(spec_path, auto_approve, **options):
    """Undo the last apply: point the alias back, restore settings changed in place, and delete what a failed or
    unfinished apply created that never served (with --drop-new, what any apply created)."""
    result = workflow.rollback(spec_path, confirm=confirmer(auto_approve), **options)
    summary("rolled_back", f"Rollback complete for alias {result.alias}.", EXIT_OK, alias=result.alias, undone=list(result.done))
    say("".join(f"{line}\n" for line in result.done) + f"Rollback complete for alias {result.alias}.")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Delete without asking (CI).")
@state_options
@connection_options
@events_option
@logging_options
def cleanup(spec_path, auto_approve, **options):
    """Delete the collection the alias served before the last apply, once that apply was verified and swapped."""
    result = workflow.cleanup(spec_path, confirm=confirmer(auto_approve), **options)
    said = f"deleted collection {result.deleted} (served {result.alias} before the last apply, verified and swapped)" if result.deleted \
        else "nothing to delete"
    summary("cleaned_up" if result.deleted else "nothing", said, EXIT_OK, deleted=result.deleted)
    if result.deleted:
        say(said)


@cli.command("import")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Mean cosine similarity between the stored vectors and the declared model's, below which import refuses.")
@click.option("--sample", type=click.IntRange(1, 10_000), default=64, show_default=True, help="Random points whose texts are embedded.")
@click.option("--candidates", multiple=True, metavar="MODEL", help="Also measure this model against the dense vectors (repeatable): "
              "which of several made them. Reported, never recorded.")
@click.option("--auto-approve", is_flag=True, help="Record without asking (CI).")
@state_options
@connection_options
@logging_options
def import_(spec_path, auto_approve, **options):
    """Take a collection qmspec did not create under management: check each declared model against the stored
    vectors (a sample of the stored texts embedded again), then record the models and the query as an apply would."""
    result = workflow.import_collection(spec_path, confirm=confirmer(auto_approve), **options)
    if result.candidates:
        echo("candidates, best first:\n" + "\n".join(f"  {match.describe()}" for match in result.candidates))
    if result.exit_code:
        echo(result.message, err=True)
    else:
        echo(result.message)
    sys.exit(result.exit_code)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@state_options(lock=False)
@connection_options
@logging_options
def status(spec_path, fmt, **options):
    """Where things stand: the alias's live target, the last apply and its steps, the lock."""
    from .reports.status import render_status, render_status_markdown

    report = workflow.status(spec_path, **options)
    echo({"json": lambda: json.dumps(report, indent=2), "markdown": lambda: render_status_markdown(report),
                "text": lambda: render_status(report)}[fmt]())


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Release even a lock whose holder may still run.")
@click.option("--auto-approve", is_flag=True, help="Release without asking (CI).")
@state_options(lock=False)
@connection_options
@logging_options
def unlock(spec_path, auto_approve, **options):
    """Release the apply lock of an alias left behind by a process that died."""
    result = workflow.unlock(spec_path, confirm=confirmer(auto_approve), **options)
    if result.released is None:
        echo(f"alias {result.alias} is not locked")
    else:
        echo(f"released the lock on {result.alias} (was pid {result.released.get('pid')} on {result.released.get('host')})")


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
@logging_options
def compare(spec_path, fmt, plot_path, **options):
    """Run the same queries on two retrievers (old and new model, dense and hybrid) and compare them."""
    from .reports import compare as comparing

    result = workflow.compare(spec_path, **options)
    renderers = {"text": comparing.render_text, "markdown": comparing.render_markdown, "json": lambda r: r.to_json()}
    echo(renderers[fmt](result), nl=False)
    if plot_path:
        comparing.plot(result, plot_path)
        echo(f"plot written to {plot_path}", err=True)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="JSON Lines file of candidates to judge (or, with --llm-model, of graded judgments).")
@click.option("--queries-file", type=click.Path(exists=True, dir_okay=False), help="A query log, one query per line (best: real queries).")
@click.option("--sample", "sample", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Without --queries-file: this many pseudo-queries, a sentence of random points' text.")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Top results of each side to judge.")
@click.option("--llm-model", metavar="NAME", help="Grade every candidate 0-3 with this chat model (UMBRELA's prompt) instead of by hand.")
@click.option("--llm-base-url", metavar="URL", default="https://api.openai.com/v1", show_default=True,
              help="An OpenAI-compatible API (vLLM, Ollama, LiteLLM, Azure OpenAI...).")
@click.option("--llm-api-key-env", metavar="VAR", help="Environment variable holding the API key (never printed or stored).")
@click.option("--llm-concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests in flight at once.")
@click.option("--llm-requests-per-minute", type=float, help="Stay under the API's request rate limit.")
@click.option("--llm-tokens-per-minute", type=float, help="Stay under the API's token rate limit.")
@click.option("--llm-price-per-million", type=float, help="Price per million input tokens, for the estimate printed before it starts.")
@click.option("--llm-max-retries", type=click.IntRange(0, 20), default=6, show_default=True,
              help="Retries of a 429, 5xx or timeout (honouring Retry-After).")
@click.option("--llm-cache", type=click.Path(dir_okay=False), help="Where answers are kept so a re-run pays nothing [default: OUT.cache.jsonl].")
@click.option("--generate", type=click.IntRange(0, 100_000), default=0,
              help="With --llm-model and no query log: have the model write one query for each of N sampled passages (InPars style).")
@connection_options
@logging_options
def judge(spec_path, out_path, llm_model, llm_base_url, llm_api_key_env, llm_concurrency, llm_requests_per_minute, llm_tokens_per_minute,
          llm_price_per_million, llm_max_retries, llm_cache, generate, **options):
    """Pool the results of what the alias serves now and of the spec's collection for the same queries: candidates for a
    person to judge (fill each record's `relevant`), or with --llm-model, graded 0-3 by that model. Either file is what
    verify.quality.judgments reads."""
    from .applying.durable import write_atomically
    from .reports.judge import to_json_lines

    if generate and not llm_model:
        raise click.UsageError("--generate asks a model to write the queries: give --llm-model too")
    llm = workflow.LlmJudge(llm_model, llm_base_url, llm_api_key_env, llm_concurrency, llm_requests_per_minute, llm_tokens_per_minute,
                            llm_price_per_million, llm_max_retries, cache=llm_cache, generate=generate) if llm_model else None
    result = workflow.judge(spec_path, llm=llm, out=out_path, **options)
    write_atomically(Path(out_path), to_json_lines(list(result.records)))  # whole or not at all
    if result.judged_by:
        echo(f"wrote {len(result.records)} graded queries ({result.judged_by}, {result.asked} request(s), the rest from the cache) "
             f"over {', '.join(result.sides)} to {out_path}; set verify.quality.judgments to the file (judge a sample by hand too)")
        return
    echo(f"wrote {len(result.records)} queries with their candidates from {', '.join(result.sides)} to {out_path}; "
         "fill each `relevant` list with the ids that answer the query, then set verify.quality.judgments to the file")


@cli.command()
@click.option("--alias", "aliases", multiple=True, metavar="ALIAS", help="Alias to write a spec for (repeatable; default: every alias).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write <alias>.yaml files here instead of printing.")
@connection_options
@logging_options
def inspect(aliases, out_dir, **connection):
    """Write a spec from live state for each alias, so existing collections come under management."""
    specs = workflow.inspect(aliases=aliases, **connection)
    if out_dir:  # the modeline of each written spec resolves from its own folder
        workflow.write_schema(out_dir)
    for alias, text in specs.items():
        if out_dir:
            Path(out_dir, f"{slug(alias)}.yaml").write_text(text, encoding="utf-8")
            echo(f"wrote {Path(out_dir, slug(alias) + '.yaml')}", err=True)
        else:
            echo(text if len(specs) == 1 else f"---\n{text}", nl=False)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when live state drifted.")
@state_options(lock=False)
@connection_options
@logging_options
def drift(spec_path, fmt, detailed_exitcode, **options):
    """Report where live state moved away from the spec and from the last apply."""
    from .reports.drift import render_drift

    found = workflow.drift(spec_path, **options)
    echo(render_drift(found.alias, list(found.found), fmt, found.clean, list(found.not_applicable)), nl=False)
    sys.exit(found.exit_code if detailed_exitcode else EXIT_OK)


@cli.command("diff")
@click.option("--env", "envs", multiple=True, required=True, metavar="NAME", help="Two environments of qmspec.yaml.")
@click.option("--alias", metavar="ALIAS", help="Compare only the collections serving this alias, whatever their names.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the environments differ.")
@logging_options
def diff_environments(envs, alias, fmt, detailed_exitcode):
    """Compare the live state of two environments."""
    from .reports.envdiff import render_json, render_markdown, render_text
    from .workflow import EXIT_CHANGES

    if len(envs) != 2:
        raise QmspecError("give exactly two environments: --env staging --env prod")
    differences = workflow.environment_diff(*envs, alias=alias)
    renderer = {"json": render_json, "markdown": render_markdown, "text": render_text}[fmt]
    echo(renderer(envs[0], envs[1], differences), nl=False)
    sys.exit(EXIT_CHANGES if differences and detailed_exitcode else EXIT_OK)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write qmspec.schema.json into this folder (where "
                                                                          "your specs live) instead of printing it.")
def schema(out_dir):
    """Print the spec's JSON Schema, or write it beside your specs for editors (`# yaml-language-server: $schema=...`)."""
    if not out_dir:
        echo(SCHEMA_PATH.read_text(encoding="utf-8"), nl=False)
        return
    written = workflow.write_schema(out_dir)
    echo(f"wrote {written}; start each spec with `# yaml-language-server: $schema={os.path.relpath(written, out_dir)}`", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules(fmt):
    """List the safety rules: code, class, severity, what it catches and the way out."""
    from .reports.validation import render_rules

    echo(render_rules(fmt), nl=False)


def _warning_to_log(message, category, filename, lineno, file=None, line=None) -> None:
    """Libraries' warnings (qdrant-client's local mode, transformers) as one debug line each, not raw on stderr."""
    logging.getLogger(ROOT).debug(redact(f"{category.__name__} from {Path(filename).name}:{lineno}: {message}"))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (CI's cancel) unwinds like Ctrl-C: the journal records it, the lock is released


def run(args: list[str]) -> int:
    """Run one command line and return its exit code: every expected failure is a message and exit 1, never a
    traceback. Usage errors exit 1 too, since 2 means 'changes pending'."""
    try:
        cli.main(args, prog_name="qmspec", standalone_mode=False)
    except SystemExit as done:  # commands end with sys.exit(code)
        return EXIT_OK if done.code is None else done.code if isinstance(done.code, int) else EXIT_ERROR
    except workflow.Cancelled as cancelled:
        echo(str(cancelled), err=True)
        return EXIT_CANCELLED
    except QmspecError as error:
        echo(f"error: {error}", err=True)
        if _wants_json(args):
            _json_error(error, EXIT_ERROR)
        return EXIT_ERROR
    except click.exceptions.Abort as abort:  # click turns Ctrl-C (and our SIGTERM) into Abort
        if isinstance(abort.__cause__, KeyboardInterrupt):
            echo("interrupted: what was done is journaled and the lock released; run the same command again to "
                       "resume", err=True)
            return EXIT_INTERRUPTED
        echo("aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as error:
        error.show()
        if _wants_json(args):
            _json_error(error, EXIT_ERROR)
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - a bug in qmspec: say so plainly, keep the traceback on demand
        if os.environ.get("QMSPEC_DEBUG"):
            raise
        echo(f"internal error (a qmspec bug, please report it): {type(error).__name__}: {error}\n"
                   "rerun with QMSPEC_DEBUG=1 for the traceback", err=True)
        return EXIT_ERROR
    finally:
        _show_log(None)
    return EXIT_OK


def _wants_json(args: list[str]) -> bool:
    return "--format=json" in args or any(arg == "--format" and value == "json" for arg, value in zip(args, args[1:]))


def _json_error(error: Exception, exit_code: int) -> None:
    """Under --format json, an error is also a JSON object on stdout: what a program reads instead of the stderr line."""
    problem = (getattr(error, "problems", None) or [None])[0]
    message = error.format_message() if isinstance(error, click.ClickException) else problem.message if problem else str(error)
    located = {"file": problem.file, "line": problem.line, "key": problem.key, "fix": problem.fix} if problem else {}
    if _streaming_events():
        emit_event("error", message, "error", exit_code=exit_code, **located)
        emit_event("summary", message, "error", status="error", exit_code=exit_code)
    else:
        echo(json.dumps({"error": {"message": message, **located, "exit_code": exit_code,
                                   "problems": [dataclasses.asdict(p) for p in error.problems] if problem else None}}))


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    warnings.showwarning = _warning_to_log
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
