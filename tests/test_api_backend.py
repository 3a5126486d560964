"""The openai backend against a real OpenAI-compatible server on loopback (tests/embedding_server.py): batching by a
token budget, requests in flight, retries on 429 (honouring Retry-After), 5xx and timeouts, the errors that must
not be retried, the key, and a migration killed mid-run that resumes without paying twice for finished pages."""
from __future__ import annotations

import shutil
import signal
import time

import numpy as np
import pytest

from qmspec.embed import EmbedderError
from qmspec.embed.api import OpenAICompatibleEmbedder, retry_after, token_batches

from . import migration
from .embedding_server import EmbeddingServer, hash_embed
from .run import cli, qmspec

TEXTS = [f"passage number {i} about topic {i % 7}" for i in range(40)]


def embedder(server: EmbeddingServer, **options) -> OpenAICompatibleEmbedder:
    return OpenAICompatibleEmbedder({"name": "api-model", "backend": "openai",
                                     "options": {"base_url": server.base_url, "max_retries": 3} | options})


def test_vectors_come_back_in_input_order_and_normalized():
    with EmbeddingServer(hash_embed()) as server:
        vectors = embedder(server, batch_size=8).embed(TEXTS)
    expected = hash_embed()(TEXTS)
    assert vectors.shape == (40, 16) and np.allclose(vectors, expected, atol=1e-6)  # the server answers in reverse
    assert server.batch_sizes == [8] * 5


def test_batches_close_at_the_token_budget():
    texts = ["x" * 400] * 10  # about 100 tokens each
    assert [len(batch) for batch in token_batches(texts, max_tokens=250, max_texts=100)] == [2] * 5
    assert [len(batch) for batch in token_batches(["y" * 4000] + texts[:2], 250, 100)] == [1, 2]  # a long text goes alone
    with EmbeddingServer(hash_embed()) as server:
        embedder(server, max_batch_tokens=250).embed(texts)
    assert server.batch_sizes == [2] * 5


def test_requests_run_concurrently_up_to_the_limit():
    with EmbeddingServer(hash_embed(), latency=0.2) as server:
        started = time.monotonic()
        embedder(server, batch_size=4, concurrency=5).embed(TEXTS)
        elapsed = time.monotonic() - started
    assert server.max_in_flight == 5 and server.requests == 10
    assert elapsed < 1.0  # two rounds of 0.2 s, not ten


@pytest.mark.e2e  # waits on real clocks (Retry-After, backoff, timeouts)
def test_429_waits_as_long_as_retry_after_says_then_succeeds():
    with EmbeddingServer(hash_embed(), faults=[("status", 429, 1)]) as server:
        started = time.monotonic()
        vectors = embedder(server, batch_size=100).embed(TEXTS[:3])
        waited = time.monotonic() - started
    assert server.requests == 2 and len(vectors) == 3
    assert 1.0 <= waited < 3.0


@pytest.mark.e2e  # waits on real clocks (Retry-After, backoff, timeouts)
def test_server_errors_and_timeouts_are_retried():
    faults = [("status", 500, None), ("hang", 1.5), None]
    with EmbeddingServer(hash_embed(), faults=faults) as server:
        vectors = embedder(server, batch_size=100, timeout_s=0.5, retry_wait_s=0.1).embed(TEXTS[:3])
    assert server.requests == 3 and len(vectors) == 3


def test_retries_stop_with_a_message_naming_the_budget():
    faults = [("status", 503, 0)] * 10
    with EmbeddingServer(hash_embed(), faults=faults) as server:
        with pytest.raises(EmbedderError) as error:
            embedder(server, max_retries=2).embed(TEXTS[:3])
    assert server.requests == 3
    assert "HTTP 503 after 3 attempt(s)" in str(error.value) and "2 retries" in str(error.value)


def test_client_errors_are_not_retried():
    with EmbeddingServer(hash_embed(), faults=[("status", 400, None)]) as server:
        with pytest.raises(EmbedderError, match="HTTP 400: injected 400"):
            embedder(server).embed(TEXTS[:3])
    assert server.requests == 1


def test_wrong_dimensions_are_an_error():
    with EmbeddingServer(hash_embed(), faults=[("dimensions", 7)]) as server:
        with pytest.raises(EmbedderError, match=r"\[7\] dimensions, expected 16"):
            embedder(server, dimensions=16).embed(TEXTS[:3])


def test_the_key_comes_from_the_environment_and_is_never_echoed(monkeypatch):
    secret = "sk-test-0f9e8d7c"
    with EmbeddingServer(hash_embed(), key=secret) as server:
        server.trust(monkeypatch, "QMSPEC_TEST_API_KEY")
        with pytest.raises(EmbedderError) as missing:
            embedder(server, api_key_env="QMSPEC_TEST_API_KEY")
        assert "QMSPEC_TEST_API_KEY (api_key_env) is not set" in str(missing.value)
        monkeypatch.setenv("QMSPEC_TEST_API_KEY", "sk-wrong")
        with pytest.raises(EmbedderError) as refused:
            embedder(server, api_key_env="QMSPEC_TEST_API_KEY").embed(TEXTS[:1])
        assert "HTTP 401" in str(refused.value) and "sk-wrong" not in str(refused.value)
        monkeypatch.setenv("QMSPEC_TEST_API_KEY", secret)
        assert len(embedder(server, api_key_env="QMSPEC_TEST_API_KEY").embed(TEXTS[:1])) == 1


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("soon") is None
    assert 58 <= retry_after(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))) <= 61


def test_rate_limit_spaces_requests():
    with EmbeddingServer(hash_embed()) as server:
        started = time.monotonic()
        embedder(server, batch_size=10, concurrency=4, requests_per_minute=600).embed(TEXTS)  # one every 0.1 s
        assert time.monotonic() - started >= 0.3


API_SPEC = """\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: api-model, backend: openai, base_url: "{url}", batch_size: 25, price_per_million_tokens: 0.02}}
query: {{using: dense, model: api-model}}
migration: {{batch_size: 64, parallel: 2, scroll_page: 25}}
"""


def test_plan_estimates_tokens_and_cost_and_apply_embeds_through_the_api(tmp_path):
    migration.template(tmp_path, 60)
    with EmbeddingServer(hash_embed()) as server:
        (tmp_path / "spec.yaml").write_text(API_SPEC.format(url=server.base_url), encoding="utf-8")
        planned = cli("plan", "spec.yaml", "--path", "store", "--format", "json", cwd=tmp_path)
        assert planned.returncode == 0, planned.stderr
        import json

        [figure] = json.loads(planned.stdout)["estimate"]["embedding"]
        assert figure["vector"] == "dense" and figure["texts"] == 60 and figure["tokens"] > 0 and "cost" in figure
        applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
        assert applied.returncode == 0, applied.stdout + applied.stderr
    stored = migration.snapshot(tmp_path / "store")["collections"]["docs_v2"]
    text = stored[7][0]["text"]
    assert np.allclose(stored[7][1]["dense"], hash_embed()([text])[0], atol=1e-4)


@pytest.mark.e2e
def test_killed_migration_resumes_without_paying_twice_for_written_pages(tmp_path):
    points, page = 200, 25
    migration.template(tmp_path, points)
    with EmbeddingServer(hash_embed(), latency=0.05) as server:
        (tmp_path / "spec.yaml").write_text(API_SPEC.format(url=server.base_url), encoding="utf-8")
        reference = tmp_path / "reference"
        shutil.copytree(tmp_path, reference)
        args = ("apply", "spec.yaml", "--path", "store", "--auto-approve", "--no-preflight")
        assert qmspec(*args, cwd=reference).returncode == 0
        uninterrupted = server.texts_embedded
        server.texts_embedded = 0
        killed = qmspec(*args, cwd=tmp_path, env={"QMSPEC_FAULT": "checkpoint:3"})
        assert killed.returncode == -signal.SIGKILL
        resumed = qmspec(*args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    # the copy embeds each point once and the catch-up none; only pages embedded but not yet written when the
    # process died (at most the two the pipeline holds, plus the one being embedded) are paid again
    assert uninterrupted == points
    assert points <= server.texts_embedded <= points + 3 * page
    assert migration.snapshot(tmp_path / "store")["collections"]["docs_v2"] == \
        migration.snapshot(reference / "store")["collections"]["docs_v2"]


def test_base64_vectors_decode_to_the_same_floats():
    with EmbeddingServer(hash_embed()) as server:
        as_base64 = embedder(server, encoding_format="base64").embed(TEXTS[:5])
        as_floats = embedder(server).embed(TEXTS[:5])
    assert np.allclose(as_base64, as_floats, atol=1e-7)
