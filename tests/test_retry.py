"""The one retry policy every call to Qdrant goes through, against a local HTTP endpoint that answers like Qdrant
after injected faults (503, 429 with Retry-After, a hang, a reset connection), and around an embedded store whose
client fails its first calls."""
from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest
from qdrant_client.http.exceptions import UnexpectedResponse

from qmspec.connect import open_client
from qmspec.errors import QdrantAccessError
from qmspec.project import RetryPolicy, Target
from qmspec.retry import RetryingClient

from .embedding_server import send_json
from .fake_qdrant import LoopbackEndpoint

FAST = RetryPolicy(attempts=4, max_seconds=20, timeout_s=1, initial_wait=0.05, max_wait=0.2)


class FakeQdrant(LoopbackEndpoint):
    """GET / and GET /collections, as Qdrant answers them, after the faults in `faults` (one per /collections call)."""

    def __init__(self, faults: list):
        self.faults, self.calls = list(faults), 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/collections"):
                    fake.calls += 1
                    fault = fake.faults.pop(0) if fake.faults else None
                    if fault == "reset":
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if fault == "hang":
                        time.sleep(2)
                    if isinstance(fault, tuple):
                        return self._send(fault[0], {"status": {"error": "injected"}}, fault[1])
                    return self._send(200, {"result": {"collections": []}, "status": "ok", "time": 0.0})
                self._send(200, {"title": "qdrant - vector search engine", "version": "1.15.0"})

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                send_json(self, status, body, headers)

        self.serve(Handler)


@pytest.mark.parametrize("faults", [[(503, {})] * 2, ["reset"], pytest.param(["hang"], marks=pytest.mark.e2e), [(502, {}), (504, {})]],
                         ids=["503-twice", "reset", "hang", "502-504"])  # hang waits out a real timeout: the e2e tier
def test_transient_faults_are_retried_until_the_call_succeeds(faults):
    fake = FakeQdrant(faults)
    with open_client(Target(url=fake.url, retry=FAST)) as client:
        assert client.get_collections().collections == []
    assert fake.calls == len(faults) + 1


@pytest.mark.e2e  # waits on real clocks (Retry-After, backoff, timeouts)
def test_429_waits_as_long_as_retry_after_says():
    fake = FakeQdrant([(429, {"Retry-After": "1"})])
    started = time.monotonic()
    with open_client(Target(url=fake.url, retry=FAST)) as client:
        client.get_collections()
    assert fake.calls == 2 and time.monotonic() - started >= 1.0


def test_a_client_error_is_not_retried_and_an_exhausted_budget_names_it():
    fake = FakeQdrant([(400, {})])
    with open_client(Target(url=fake.url, retry=FAST)) as client, pytest.raises(QdrantAccessError) as refused:
        client.get_collections()
    assert fake.calls == 1 and "get_collections on the server" in str(refused.value) and "HTTP 400 Bad Request: injected" in str(refused.value)
    down = FakeQdrant([(503, {})] * 10)
    with open_client(Target(url=down.url, retry=FAST)) as client, pytest.raises(QdrantAccessError) as error:
        client.get_collections()
    assert down.calls == 4
    assert "get_collections on the server" in str(error.value) and "after 4 attempt(s)" in str(error.value)
    assert "retry budget: 4 attempts, 20s" in str(error.value)


def test_an_embedded_client_that_fails_its_first_calls_is_retried(tmp_path):
    with open_client(Target(path=str(tmp_path / "store"))) as client:
        real = client._client
        failures = iter([UnexpectedResponse(503, "Service Unavailable", b"Please retry", {})] * 2)

        class Flaky:
            def __getattr__(self, name):
                method = getattr(real, name)

                def call(*args, **kwargs):
                    failure = next(failures, None)
                    if failure:
                        raise failure
                    return method(*args, **kwargs)

                return call

        flaky = RetryingClient(Flaky(), FAST, "embedded store")
        assert flaky.get_collections().collections == []


def test_environments_set_the_policy(tmp_path):
    from qmspec.project import environment_target

    (tmp_path / "qmspec.yaml").write_text("environments:\n  prod: {url: 'http://q:6333', retry: {attempts: 9, max_seconds: 600}}\n")
    assert environment_target("prod", tmp_path / "qmspec.yaml").retry == RetryPolicy(attempts=9, max_seconds=600)
