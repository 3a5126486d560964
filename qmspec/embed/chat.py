"""Any OpenAI-compatible `/v1/chat/completions` API (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM), for the LLM judge.

The same transport as the embeddings client (api.py): `concurrency` requests at a time within `requests_per_minute`
and `tokens_per_minute`, a 429, a 5xx, a timeout or a dropped connection retried with exponential backoff and jitter
(tenacity) honouring Retry-After, anything else stopped with the server's own message. The key is read from the
variable `api_key_env` names, goes only to a host it is bound to (trust.py) and is never printed. Answers are kept in a
cache keyed by what was asked, so a re-run pays for nothing it asked before.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import tenacity

from ..errors import remember_secret
from ..trust import require_key_destination
from . import EmbedderError
from .api import GaveUp, RateLimiter, _server_message, backoff, estimate_tokens, expanded, post, retried


class ChatError(EmbedderError):
    """The chat API refused or failed: the message says what it answered and what to change."""


class ChatClient:
    def __init__(self, model: str, base_url: str, api_key_env: str | None = None, *, concurrency: int = 4,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None, max_retries: int = 6,
                 retry_wait_s: float = 1.0, timeout_s: float = 60.0, max_tokens: int = 64):
        import httpx

        self.model, self.base_url = model, expanded(base_url, model).rstrip("/")
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ChatError(f"the environment variable {api_key_env} (--llm-api-key-env) is not set; export it with the API key")
            remember_secret(api_key_env, key, always=True)
            require_key_destination(api_key_env, self.base_url, f"the chat API of {model!r}")
            headers["Authorization"] = f"Bearer {key}"
        self.concurrency, self.max_retries, self.timeout, self.max_tokens = concurrency, max_retries, timeout_s, max_tokens
        self.backoff = backoff(tenacity.wait_exponential_jitter(multiplier=retry_wait_s, max=60, jitter=retry_wait_s))
        self.limiter = RateLimiter(requests_per_minute, tokens_per_minute)
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)
        self.requests = 0

    def complete(self, prompt: str) -> str:
        """The model's answer to one user message (temperature 0: the same question, the same grade, as far as the API allows)."""
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": self.max_tokens}
        tokens = estimate_tokens(prompt) + self.max_tokens
        try:
            return retried(lambda: self._answer(self._post(body)), f"chat completion with {self.model}", "", self.base_url,
                           self.backoff, self.max_retries, self.limiter, tokens)
        except GaveUp as gave_up:
            raise ChatError(f"{self.model!r} at {self.base_url}: {gave_up}; try again later (answers so far are cached), or raise "
                            "--llm-max-retries") from None

    def _post(self, body: dict) -> dict:
        self.requests += 1
        response = post(self.client, "/chat/completions", body)
        if response.status_code >= 400:
            raise ChatError(f"{self.model!r} at {self.base_url}: HTTP {response.status_code}: {_server_message(response)}; check "
                            "--llm-model, --llm-api-key-env and --llm-base-url")
        try:
            return response.json()
        except ValueError:
            raise ChatError(f"{self.model!r} at {self.base_url}: the answer is not JSON; is --llm-base-url an OpenAI-compatible "
                            "API (ending in /v1)?") from None

    def _answer(self, answer: dict) -> str:
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ChatError(f"{self.model!r} at {self.base_url}: no choices[0].message.content in the answer") from None
        return content if isinstance(content, str) else ""

    def close(self) -> None:
        self.client.close()


class AnswerCache:
    """Answers by what was asked (model, prompt): one JSON line each, appended and flushed as they arrive, so a run cut
    short keeps what it paid for. Never holds a key: the key is not part of what is asked."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.answers: dict[str, str] = {}
        self.lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.answers[entry["key"]] = entry["answer"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash: asked again

    @staticmethod
    def key(model: str, prompt: str) -> str:
        return hashlib.sha256(json.dumps([model, prompt]).encode("utf-8")).hexdigest()

    def get(self, model: str, prompt: str) -> str | None:
        return self.answers.get(self.key(model, prompt))

    def remember(self, what: list, compute):
        """A JSON value kept beside the answers (the ids a run sampled), so a re-run asks about the same passages."""
        kept = self.get("", json.dumps(what))
        if kept is not None:
            return json.loads(kept)
        value = compute()
        self.put("", json.dumps(what), json.dumps(value))
        return value

    def put(self, model: str, prompt: str, answer: str) -> None:
        key = self.key(model, prompt)
        with self.lock:
            self.answers[key] = answer
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "answer": answer}) + "\n")
                handle.flush()
