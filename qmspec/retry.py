"""One retry policy for every call to Qdrant: exponential backoff with jitter (tenacity), bounded in attempts and in
total time, for what passes (timeouts, dropped connections, 429 honouring Retry-After, 502/503/504, and Qdrant's
"Please retry" consistency errors). Retrying is safe because every write qmspec makes is idempotent (insert-only,
or an upsert of the same id with the same values). Anything else fails at once with the server's own message; a node at
its resource quota (Qdrant 1.19: HTTP 507, or gRPC RESOURCE_EXHAUSTED marked as a quota) is no passing fault either:
retrying cannot succeed before someone frees disk or memory, so it stops the step, resumably, with Qdrant's reason."""
from __future__ import annotations

import time

import tenacity

from .errors import QdrantAccessError, redact
from .logs import event, logger
from .project import RetryPolicy

log = logger(__name__)

TRANSIENT_STATUS = {429, 502, 503, 504}
QUOTA_STATUS = 507  # Insufficient Storage: a node at its disk or memory quota
QUOTA_GRPC_KEY = "qdrant-insufficient-storage"  # trailing metadata that tells a quota refusal from rate limiting


class QuotaRefused(QdrantAccessError):
    """A node refuses writes at its resource quota: nothing succeeds until usage falls, so the apply stops here."""


def quota_refusal(error: BaseException) -> bool:
    from qdrant_client.http.exceptions import UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        return error.status_code == QUOTA_STATUS
    metadata = getattr(error, "trailing_metadata", None)
    if callable(metadata):
        try:
            return any((item[0] if isinstance(item, tuple) else item.key) == QUOTA_GRPC_KEY for item in metadata() or ())
        except Exception:  # noqa: BLE001 - an error that is not a gRPC call's
            return False
    return False


def transient(error: BaseException) -> bool:
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if quota_refusal(error):
        return False
    if isinstance(error, ResourceExhaustedResponse):  # 429, as qdrant-client reports it
        return True
    if isinstance(error, UnexpectedResponse):
        return error.status_code in TRANSIENT_STATUS or b"Please retry" in (error.content or b"")
    if isinstance(error, ResponseHandlingException):  # wraps httpx timeouts and connection errors
        return True
    try:
        import httpx

        if isinstance(error, httpx.TransportError):
            return True
    except ImportError:
        pass
    code = getattr(error, "code", None)  # grpc.RpcError
    return callable(code) and getattr(code(), "name", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")


def retry_after(error: BaseException) -> float | None:
    if getattr(error, "retry_after_s", None) is not None:
        return float(error.retry_after_s)
    headers = getattr(error, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after"))) if headers.get("retry-after") is not None else None
    except (TypeError, ValueError):
        return None


def _unexpected():
    from qdrant_client.http.exceptions import UnexpectedResponse

    return UnexpectedResponse


def answer(error) -> str:
    """A server's refusal in one line, scrubbed: its status and the error it gave (a body may echo request headers)."""
    import json

    detail = ""
    try:
        detail = (json.loads(error.content or b"{}").get("status") or {}).get("error") or ""
    except (ValueError, AttributeError, TypeError):
        detail = (error.content or b"").decode("utf-8", "replace")
    return redact(f"HTTP {error.status_code} {error.reason_phrase or ''}".rstrip() + (f": {detail.strip()[:300]}" if detail.strip() else ""))


def cause(error: BaseException) -> str:
    """A failure in one line: a server's status and error, else its first line, or its type."""
    if isinstance(error, _unexpected()):
        return answer(error)
    text = str(error).strip()
    return redact(text.splitlines()[0][:200]) if text else type(error).__name__


class RetryingClient:
    """A QdrantClient whose every method call goes through the policy."""

    def __init__(self, client, policy: RetryPolicy, where: str):
        self._client, self._policy, self._where = client, policy, where
        self._backoff = tenacity.wait_exponential_jitter(multiplier=policy.initial_wait, max=policy.max_wait)

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name == "close":
            return attribute

        def call(*args, **kwargs):
            return self._call(name, attribute, args, kwargs)

        return call

    def _wait(self, state: tenacity.RetryCallState) -> float:
        asked = retry_after(state.outcome.exception()) if state.outcome else None
        return min(asked, self._policy.max_wait * 10) if asked is not None else self._backoff(state)

    def _no_time_for_another(self, state: tenacity.RetryCallState) -> bool:
        """Stop when the wait and one more whole attempt (it may take the request timeout) would end past the budget:
        a budget is the most a call may take, not the moment the last attempt may start."""
        return state.seconds_since_start + state.upcoming_sleep + self._policy.timeout_s > self._policy.max_seconds

    def _said(self, name: str):
        def before_sleep(state: tenacity.RetryCallState) -> None:
            event(log, "retry", f"      retrying {name} on the {self._where} in {state.next_action.sleep:.1f}s: "
                  f"{cause(state.outcome.exception())} (attempt {state.attempt_number} of {self._policy.attempts})",
                  call=name, attempt=state.attempt_number, attempts=self._policy.attempts, wait_s=round(state.next_action.sleep, 3),
                  reason=cause(state.outcome.exception()))

        return before_sleep

    def _call(self, name: str, method, args, kwargs):
        policy, started = self._policy, time.monotonic()
        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception(transient), wait=self._wait, reraise=True,
                                     stop=tenacity.stop_after_attempt(policy.attempts) | self._no_time_for_another,
                                     before_sleep=self._said(name))
        try:
            return retrying(method, *args, **kwargs)
        except Exception as error:
            if quota_refusal(error):
                raise QuotaRefused(f"{name} on the {self._where} was refused, not retried: {cause(error)}. The node is at its resource "
                                   "quota (Qdrant 1.19+, see `GET /quotas`): free disk or memory there, or raise the quota, then run "
                                   "the same command again; the apply resumes at this step") from None
            if isinstance(error, _unexpected()) and not transient(error):
                raise QdrantAccessError(f"{name} on the {self._where} failed: {answer(error)}") from None
            if not transient(error):
                raise
            attempts = retrying.statistics.get("attempt_number", policy.attempts)
            raise QdrantAccessError(f"{name} on the {self._where} kept failing: {cause(error)}, after {attempts} attempt(s) over "
                                    f"{time.monotonic() - started:.0f}s (retry budget: {policy.attempts} attempts, "
                                    f"{policy.max_seconds:.0f}s); the journal is resumable: run the same command again") from None
