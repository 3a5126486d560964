"""`qmspec judge --llm-model`: candidates graded 0-3 by an OpenAI-compatible chat model with UMBRELA's prompt, against a
loopback stand-in (tests/chat_server.py) that grades a passage 3 for the query that is its own text, 1 on the same
topic, 0 otherwise. The collection and the queries are test_quality's: passage i's text is "passage i on topic i % 7"."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qmspec import workflow
from qmspec.planning.judgments import load_judgments
from qmspec.reports import grading

from .chat_server import ChatServer, assessor
from .run import cli
from .test_quality import APPLY, project, spec  # noqa: F401 - project is the fixture these tests share

KEY = "sk-judge-5d1f0c7a2e"


def topic(text: str) -> str:
    return text.rsplit(" ", 1)[-1]


def umbrela_like(query: str, passage: str) -> int:
    return 3 if query == passage else 1 if topic(query) == topic(passage) else 0


@pytest.fixture()
def deployed(project, monkeypatch):  # noqa: F811 - the fixture imported above
    """docs_v2 applied beside docs_v1 (what the alias serves), and the judge's key exported and bound to loopback."""
    (project / "spec.yaml").write_text(spec("docs_v2"))
    assert cli(*APPLY, cwd=project).returncode == 0
    monkeypatch.setenv("JUDGE_KEY", KEY)
    return project


def judge(server: ChatServer, monkeypatch, *extra, cwd: Path):
    server.trust(monkeypatch, "JUDGE_KEY")
    return cli("judge", "spec.yaml", "--path", "store", "--out", "graded.jsonl", "--sample", "8", "-k", "3",
               "--llm-model", "judge-model", "--llm-base-url", server.base_url, "--llm-api-key-env", "JUDGE_KEY", *extra, cwd=cwd)


def everything_written(project: Path) -> str:
    return "".join(path.read_bytes().decode("utf-8", "replace") for path in project.rglob("*") if path.is_file())


def test_graded_judgments_concurrently_with_an_estimate_first_and_a_rerun_that_asks_nothing(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), key=KEY, latency=0.05) as server:
        first = judge(server, monkeypatch, "--llm-concurrency", "4", "--llm-price-per-million", "0.15", cwd=deployed)
        assert first.returncode == 0, first.stderr
        asked = server.requests
        again = judge(server, monkeypatch, cwd=deployed)
    estimate = re.search(r"(\d+) \(query, passage\) pairs to grade with judge-model: 0 cached, (\d+) to ask, about ([\d,]+) tokens, about \$", first.stderr)
    assert estimate and int(estimate[1]) == int(estimate[2]) == asked, first.stderr
    assert server.max_in_flight > 1 and set(server.authorizations) == {f"Bearer {KEY}"}
    assert all(grading.UMBRELA_PROMPT.split("\n")[0] in prompt for prompt in server.prompts)
    records = [json.loads(line) for line in (deployed / "graded.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {record["judged_by"] for record in records} == {"umbrela:judge-model"}
    for record in records:  # each sampled query is a passage's own text: that passage graded 3, its topic 1, the rest 0
        own = re.match(r"passage (\d+) ", record["query"])[1]
        assert record["relevant"][own] == 3 and set(record["relevant"].values()) <= {0, 1, 3}
    assert len(load_judgments([str(deployed / "graded.jsonl")]).relevant) == 8  # what verify.quality reads
    assert again.returncode == 0 and server.requests == asked and "0 request(s)" in again.stdout
    assert f"{asked} cached, 0 to ask" in again.stderr
    assert KEY not in first.stdout + first.stderr + again.stdout + again.stderr + everything_written(deployed)


@pytest.mark.e2e  # waits on real clocks (Retry-After, backoff, timeouts)
def test_429_with_retry_after_and_a_500_are_retried(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), key=KEY, faults=[("status", 429, 1), None, ("status", 500, 0)]) as server:
        result = judge(server, monkeypatch, "--llm-concurrency", "1", cwd=deployed)
    assert result.returncode == 0, result.stderr
    assert "retrying at" in result.stderr and "HTTP 429" in result.stderr and "HTTP 500" in result.stderr
    assert re.search(r"HTTP 429 .*in 1\.\ds", result.stderr) or "in 1.0s" in result.stderr  # Retry-After: 1, not the backoff's guess
    assert (deployed / "graded.jsonl").exists()


def test_a_server_that_keeps_failing_stops_with_its_reason_and_writes_nothing(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), key=KEY, faults=[("status", 500, 0)] * 3) as server:
        result = judge(server, monkeypatch, "--llm-concurrency", "1", "--llm-max-retries", "1", cwd=deployed)
    assert result.returncode == 1 and "HTTP 500 after 2 attempt(s)" in result.stderr and "Traceback" not in result.stderr
    assert not (deployed / "graded.jsonl").exists()


def test_a_malformed_answer_names_its_pair_writes_nothing_and_keeps_what_was_paid_for(deployed, monkeypatch):
    def unsure_of_passage_5(query: str, passage: str):
        return "It seems somewhat relevant." if passage == "passage 5 on topic 5" else umbrela_like(query, passage)

    with ChatServer(assessor(unsure_of_passage_5), key=KEY) as server:
        refused = judge(server, monkeypatch, "--sample", "60", cwd=deployed)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert "answered 'It seems somewhat relevant.'" in refused.stderr and "and point 5, which is no grade 0-3" in refused.stderr
        assert not (deployed / "graded.jsonl").exists()
        cached = len((deployed / "graded.jsonl.cache.jsonl").read_text().splitlines()) - 1  # less the sampled ids
        asked = server.requests
        server.reply = assessor(umbrela_like)  # the pair judged another way (here: the model answers properly now)
        fixed = judge(server, monkeypatch, "--sample", "60", cwd=deployed)
    assert fixed.returncode == 0, fixed.stderr
    assert cached == asked - 1 and server.requests - asked == 1  # the second run asked only about the answer that was no grade


def test_a_key_the_server_quotes_back_is_redacted(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), faults=[("echo", 401)]) as server:
        result = judge(server, monkeypatch, cwd=deployed)
    assert result.returncode == 1 and "HTTP 401" in result.stderr and "check --llm-model, --llm-api-key-env" in result.stderr
    assert KEY not in result.stdout + result.stderr + everything_written(deployed)


def test_an_unbound_key_is_not_sent_and_an_unset_one_is_named(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), key=KEY) as server:
        monkeypatch.delenv("QMSPEC_KEY_HOSTS", raising=False)
        unbound = cli("judge", "spec.yaml", "--path", "store", "--out", "graded.jsonl", "--llm-model", "judge-model",
                      "--llm-base-url", server.base_url, "--llm-api-key-env", "JUDGE_KEY", cwd=deployed)
        monkeypatch.delenv("JUDGE_KEY")
        unset = judge(server, monkeypatch, cwd=deployed)
    assert unbound.returncode == 1 and server.requests == 0 and "JUDGE_KEY" in unbound.stderr
    assert unset.returncode == 1 and "the environment variable JUDGE_KEY (--llm-api-key-env) is not set" in unset.stderr


def test_generated_queries_know_their_passage(deployed, monkeypatch):
    with ChatServer(assessor(umbrela_like), key=KEY) as server:
        result = judge(server, monkeypatch, "--generate", "6", cwd=deployed)
    assert result.returncode == 0, result.stderr
    assert "one query for each of 6 sampled passages (InPars style)" in result.stderr
    records = [json.loads(line) for line in (deployed / "graded.jsonl").read_text().splitlines()]
    assert len(records) == 6
    for record in records:  # the model wrote the passage's own words: that passage is known relevant (3), not asked about
        own = re.match(r"passage (\d+) ", record["query"])[1]
        assert record["relevant"][own] == 3
    assert not any(f"Query: {record['query']}\nPassage: {record['query']}\n" in prompt for record in records for prompt in server.prompts)


def test_batches_cache_as_they_go_from_python(deployed, monkeypatch):
    """The workflow API as an Airflow task calls it: answers are cached batch by batch, so a run stopped by a refusal
    in its third batch keeps the first two."""
    monkeypatch.setattr(grading, "BATCH", 5)
    refusals = [None] * 10 + [("status", 400, None)]
    with ChatServer(assessor(umbrela_like), key=KEY, faults=refusals) as server:
        server.trust(monkeypatch, "JUDGE_KEY")
        llm = workflow.LlmJudge("judge-model", server.base_url, "JUDGE_KEY", concurrency=1, cache=str(deployed / "answers.jsonl"))
        with pytest.raises(Exception, match="HTTP 400"):
            workflow.judge(deployed / "spec.yaml", path=str(deployed / "store"), sample=8, k=3, llm=llm)
        paid = server.requests - 1  # all but the refused one; the one in flight when the refusal came is kept too
        assert 10 <= paid <= 11 and len((deployed / "answers.jsonl").read_text().splitlines()) == 1 + paid  # the sampled ids, the answers
        result = workflow.judge(deployed / "spec.yaml", path=str(deployed / "store"), sample=8, k=3, llm=llm)
    assert result.judged_by == "umbrela:judge-model" and len(result.records) == 8
    assert result.asked == server.requests - paid - 1 and len((deployed / "answers.jsonl").read_text().splitlines()) == 1 + paid + result.asked
