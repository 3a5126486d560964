"""`--format json`: the event stream of apply, rollback and cleanup, and errors as JSON, validated against
schemas/events.schema.json. The migration embeds through the openai backend on a loopback server that answers its
first request with a 429 (a retry), judges one query whose passage does not exist (a warning) and gates on a floor
the hash embedder cannot reach (a failed gate)."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from . import migration
from .embedding_server import EmbeddingServer, hash_embed
from .run import cli

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "events.schema.json").read_text())
SPEC = """\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: api-model, backend: openai, base_url: "{url}", batch_size: 25, max_retries: 2, retry_wait_s: 0.01}}
    text_field: text
query: {{using: dense, model: api-model}}
migration: {{batch_size: 64, scroll_page: 25}}
verify:
  quality:
    judgments: judged.jsonl
    metrics: [ndcg@10]
    min: {{ndcg@10: 0.99}}
"""


def events(output: str) -> list[dict]:
    found = [json.loads(line) for line in output.splitlines()]
    for event in found:
        jsonschema.validate(event, SCHEMA)
    return found


@pytest.fixture()
def project(tmp_path):
    migration.build_source(tmp_path / "store", 40)
    judged = [{"query": "which passage is the third", "relevant": [3]}, {"query": "an article that was deleted", "relevant": [999]}]
    (tmp_path / "judged.jsonl").write_text("".join(json.dumps(record) + "\n" for record in judged))
    return tmp_path


def test_an_apply_streams_schema_valid_events_with_a_retry_a_warning_and_a_failed_gate(project):
    with EmbeddingServer(hash_embed(), faults=[("status", 429, 0)]) as server:
        (project / "spec.yaml").write_text(SPEC.format(url=server.base_url))
        applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", "--no-preflight", "--format", "json", cwd=project)
    assert applied.returncode == 3, applied.stderr
    stream = events(applied.stdout)
    kinds = [event["type"] for event in stream]
    assert kinds[0] == "plan" and kinds[-1] == "summary" and {"step_started", "step_finished", "retry", "warning", "check"} <= set(kinds)
    retry = next(event for event in stream if event["type"] == "retry")
    assert "HTTP 429" in retry["reason"] and retry["attempt"] == 1
    assert any("1 of 2 judged queries left out" in event["message"] for event in stream if event["type"] == "warning")
    gate = next(event for event in stream if event["type"] == "check" and event["check"] == "quality")
    assert gate["passed"] is False and "below min 0.99" in gate["detail"] and gate["figures"]["ndcg@10"]["queries"] == 1
    assert stream[-1]["status"] == "verify_failed" and stream[-1]["exit_code"] == 3 and stream[-1]["way_out"]
    started = [event["kind"] for event in stream if event["type"] == "step_started"]
    assert started == ["create_collection", "copy_points", "catch_up", "restore_indexing", "verify"]
    assert "[1/" in applied.stderr  # the human log still reaches stderr

    rolled = cli("rollback", "spec.yaml", "--path", "store", "--auto-approve", "--format", "json", cwd=project)
    summary = events(rolled.stdout)[-1]
    assert rolled.returncode == 0 and summary["type"] == "summary" and summary["exit_code"] == 0 and summary["undone"]


def test_errors_are_json_on_stdout_under_format_json_and_a_line_on_stderr(project):
    (project / "spec.yaml").write_text("version: 1\nalias: docs\ncollection: 5\n")
    planned = cli("plan", "spec.yaml", "--path", "store", "--format", "json", cwd=project)
    assert planned.returncode == 1 and planned.stderr.startswith("error: ")
    error = json.loads(planned.stdout)["error"]
    assert error["file"] == "spec.yaml" and error["line"] == 3 and error["key"] == "collection" and error["fix"] and error["exit_code"] == 1
    applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", "--format", "json", cwd=project)
    stream = events(applied.stdout)
    assert [event["type"] for event in stream] == ["error", "summary"] and stream[0]["key"] == "collection"
    asking = cli("apply", "spec.yaml", "--path", "store", "--format", "json", cwd=project)
    assert asking.returncode == 1 and "pass --auto-approve too" in json.loads(asking.stdout)["error"]["message"]


def test_no_is_apply_cancelled_with_its_own_exit_code_and_no_answer_is_an_error(project):
    (project / "spec.yaml").write_text(migration.SPEC)
    cancelled = cli("apply", "spec.yaml", "--path", "store", input="no\n", cwd=project)
    assert cancelled.returncode == 5 and cancelled.stderr.strip().endswith("Apply cancelled.") and "error" not in cancelled.stderr
    unanswered = cli("apply", "spec.yaml", "--path", "store", input="", cwd=project)
    assert unanswered.returncode == 1 and "needs an answer" in unanswered.stderr
    assert cli("rollback", "spec.yaml", "--path", "store", input="no\n", cwd=project).returncode in (1, 5)


def test_options_only_where_they_do_something_and_shell_completion(project):
    (project / "spec.yaml").write_text(migration.SPEC)
    read_only = cli("plan", "spec.yaml", "--path", "store", "--lock-timeout", "5s", cwd=project)
    assert read_only.returncode == 1 and "No such option '--lock-timeout'" in read_only.stderr
    completion = cli(env={"_QMSPEC_COMPLETE": "bash_source"}, cwd=project)
    assert completion.returncode == 0 and "_qmspec_completion" in completion.stdout


def test_plans_are_coloured_at_a_terminal_unless_no_color(project, monkeypatch):
    import qmspec
    from qmspec import cli as command_line, logs

    (project / "spec.yaml").write_text(migration.SPEC)
    plan = qmspec.plan(project / "spec.yaml", path=str(project / "store"), preflight=False)
    monkeypatch.setattr(command_line.sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setitem(logs._plain, "asked", False)
    assert "\x1b[32m\x1b[1m+\x1b[0m 1. create collection docs_v2" in command_line.plan_text(plan)
    monkeypatch.setitem(logs._plain, "asked", True)
    assert "\x1b[" not in command_line.plan_text(plan)
