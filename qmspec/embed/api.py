"""Any OpenAI-compatible `/v1/embeddings` API: OpenAI, Azure OpenAI, Ollama, vLLM, Text Embeddings Inference, Infinity.

Texts go out in batches closed by a token budget (estimated at four characters per token), `concurrency` requests
at a time, within `requests_per_minute` and `tokens_per_minute`. A 429, a 5xx, a timeout or a dropped connection
is retried with exponential backoff and jitter (tenacity), honouring the server's Retry-After; anything else stops
with the server's own message. The key is read from the variable `api_key_env` names, and never printed.
"""
from __future__ import annotations

import base64
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import numpy as np
import tenacity

from ..errors import remember_secret
from ..logs import event, logger
from ..planning import envvars
from ..trust import require_key_destination
from . import EmbedderError
from .dense import finish, prompt_text

log = logger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHARS_PER_TOKEN = 4


class TransientError(Exception):
    """A failure worth retrying: rate limited, the server overloaded or down for a moment, a timeout."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAICompatibleEmbedder:
    def __init__(self, model: dict):
        import httpx

        options = model.get("options") or {}
        self.name = model["name"]
        self.base_url = expanded(str(options.get("base_url") or DEFAULT_BASE_URL), self.name).rstrip("/")
        headers = {}
        if options.get("api_key_env"):
            key = os.environ.get(options["api_key_env"])
            if not key:
                raise EmbedderError(f"model {self.name!r}: the environment variable {options['api_key_env']} (api_key_env) is not "
                                    "set; export it with the API key")
            remember_secret(options["api_key_env"], key, always=True)
            require_key_destination(options["api_key_env"], self.base_url, f"the embeddings API of model {self.name!r}")
            headers["Authorization"] = f"Bearer {key}"
        self.dimensions = options.get("dimensions")
        self.encoding = options.get("encoding_format", "float")  # base64: float32 bytes, much cheaper to parse
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        self.batch = int(model.get("batch_size") or options.get("batch_size") or 256)
        self.max_batch_tokens = int(options.get("max_batch_tokens", 8000))
        self.concurrency = int(options.get("concurrency", 4))
        self.max_retries = int(options.get("max_retries", 6))
        first_wait = float(options.get("retry_wait_s", 1))  # the first backoff; it doubles each retry, with jitter
        self.backoff = backoff(tenacity.wait_exponential_jitter(multiplier=first_wait, max=60, jitter=first_wait))
        self.timeout = float(options.get("timeout_s", 60))
        self.limiter = RateLimiter(options.get("requests_per_minute"), options.get("tokens_per_minute"))
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout)
        prompts = model.get("prompts") or {}
        self.prompts = {role: prompt_text(prompts.get(role), {}) for role in ("query", "document")}
        self.dimension = self.dimensions
        self.commit = None

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.prompts["document"] + text for text in texts])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.prompts["query"] + text for text in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        batches = token_batches(texts, self.max_batch_tokens, self.batch)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batches))) as pool:
            results = list(pool.map(self._request, batches))
        return finish(np.asarray([vector for result in results for vector in result], dtype=np.float32),
                      self.truncate_dim, self.normalize)

    def _request(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.name, "input": texts}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        if self.encoding == "base64":
            body["encoding_format"] = "base64"
        tokens = sum(estimate_tokens(text) for text in texts)

        def send() -> list[list[float]]:
            log.debug(f"      {len(texts)} texts (about {tokens} tokens) to {self.base_url}")
            return self._vectors(self._post(body), len(texts))

        try:
            return retried(send, f"embed {len(texts)} texts", f"{len(texts)} texts", self.base_url, self.backoff, self.max_retries,
                           self.limiter, tokens)
        except GaveUp as gave_up:
            raise EmbedderError(f"model {self.name!r} at {self.base_url}: {gave_up} (timeout {self.timeout:.0f}s per request, "
                                f"{self.max_retries} retries); try again later, or raise max_retries / timeout_s") from None

    def _post(self, body: dict) -> dict:
        response = post(self.client, "/embeddings", body)
        if response.status_code >= 400:
            raise EmbedderError(f"model {self.name!r} at {self.base_url}: HTTP {response.status_code}: "
                                f"{_server_message(response)}; check the model name, api_key_env and base_url")
        try:
            return response.json()
        except ValueError:
            raise EmbedderError(f"model {self.name!r} at {self.base_url}: the answer is not JSON; is base_url an "
                                "OpenAI-compatible API (ending in /v1)?") from None

    def _vectors(self, answer: dict, expected: int) -> list[list[float]]:
        data = sorted(answer.get("data") or [], key=lambda item: item.get("index", 0))
        vectors = [_decoded(item.get("embedding")) for item in data]
        if len(vectors) != expected or not all(vector is not None for vector in vectors):
            raise EmbedderError(f"model {self.name!r} at {self.base_url}: asked for {expected} embeddings, got {len(vectors)}")
        sizes = {len(vector) for vector in vectors}
        wanted = self.dimensions or self.dimension
        if len(sizes) != 1 or (wanted and sizes != {wanted}):
            raise EmbedderError(f"model {self.name!r} at {self.base_url}: embeddings of {sorted(sizes)} dimensions, "
                                f"expected {wanted or 'one size'}")
        self.dimension = self.dimension or sizes.pop()
        return vectors


def expanded(url: str, model: str) -> str:
    """A base_url as the spec wrote it, `${VAR}` references expanded now: plans and metadata keep the references."""
    def missing(name: str) -> None:
        raise EmbedderError(f"model {model!r}: base_url names the environment variable {name}, which is not set; export it")

    return envvars.expand(url, os.environ, missing)


def _decoded(embedding):
    """An embedding as JSON floats, or as base64 of little-endian float32 (encoding_format: base64)."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return embedding if isinstance(embedding, list) else None


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def token_batches(texts: list[str], max_tokens: int, max_texts: int) -> list[list[str]]:
    """Consecutive batches of at most `max_texts` texts whose estimated tokens stay within `max_tokens` (a text
    longer than the budget goes alone: the server truncates or refuses it with its own message)."""
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for text in texts:
        tokens = estimate_tokens(text)
        if current and (used + tokens > max_tokens or len(current) >= max_texts):
            batches.append(current)
            current, used = [], 0
        current.append(text)
        used += tokens
    return batches + ([current] if current else [])


class GaveUp(Exception):
    """Every attempt a retry budget allowed met a transient fault: says the last, the attempts and the time spent."""


def retried(send, call: str, what: str, base_url: str, backoff, max_retries: int, limiter, tokens: int):
    """`send()` within the rate limits, retried on TransientError with `backoff` (which honours Retry-After), each
    retry logged ("retrying `what` at `base_url`") as a `retry` event of `call`; GaveUp once `max_retries` are spent."""
    started = time.monotonic()
    retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(TransientError), wait=backoff,
                                 stop=tenacity.stop_after_attempt(max_retries + 1), reraise=True,
                                 before_sleep=lambda state: event(
                                     log, "retry", f"      retrying {what + ' ' if what else ''}at {base_url} in {state.next_action.sleep:.1f}s: "
                                     f"{state.outcome.exception()} (attempt {state.attempt_number} of {max_retries + 1})",
                                     call=call, attempt=state.attempt_number, attempts=max_retries + 1,
                                     wait_s=round(state.next_action.sleep, 3), reason=str(state.outcome.exception())))
    try:
        for attempt in retrying:
            with attempt:
                limiter.acquire(tokens)
                return send()
    except TransientError as error:
        attempts = retrying.statistics.get("attempt_number", max_retries + 1)
        raise GaveUp(f"{error} after {attempts} attempt(s) over {time.monotonic() - started:.0f}s") from None


def post(client, path: str, body: dict):
    """POST `body` to an OpenAI-compatible API: the response, or TransientError for what is worth retrying (a timeout,
    a dropped connection, 429, 5xx, with the server's Retry-After). The caller reads the rest of the answer."""
    import httpx

    try:
        response = client.post(path, json=body)
    except httpx.TimeoutException:
        raise TransientError("no response in time") from None
    except httpx.TransportError as exc:
        raise TransientError(f"connection failed ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(f"HTTP {response.status_code}", retry_after(response.headers.get("retry-after")))
    return response


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff(exponential):
    """The server's Retry-After where it gave one, else exponential backoff with jitter."""
    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, 300.0)
        return exponential(state)

    return wait


def _server_message(response) -> str:
    try:
        error = response.json().get("error")
        text = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        text = response.text
    return str(text or response.reason_phrase).strip()[:300]


class RateLimiter:
    """Requests and (estimated) tokens per minute, shared by the threads of one embedder: each request waits for its
    turn, spaced evenly over the minute."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.request_interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.tokens_per_second = tokens_per_minute / 60.0 if tokens_per_minute else None
        self.next_free = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, tokens: int) -> None:
        if not (self.request_interval or self.tokens_per_second):
            return
        cost = max(self.request_interval, tokens / self.tokens_per_second if self.tokens_per_second else 0.0)
        with self.lock:
            start = max(self.next_free, time.monotonic())
            self.next_free = start + cost
        time.sleep(max(0.0, start - time.monotonic()))
