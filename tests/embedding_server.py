"""A small OpenAI-compatible `/v1/embeddings` server on loopback, for the openai backend's tests and benchmark.

It embeds with any function of texts (the test hash embedder, or the packaged MiniLM), checks the bearer key,
counts what it was asked, and plays faults from a script: `faults` is a list consumed one per request, each None
(answer), ("status", code, retry_after) (answer with that status), ("hang", seconds) (answer late),
("dimensions", n) (answer vectors of the wrong size), or ("echo", code) (answer with an error whose message quotes
the request's Authorization header, as careless servers do). `latency` delays every answer (an API's round trip).
`authorizations` keeps the Authorization header of every request: what a test checks no key reached.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np


class EmbeddingServer:
    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None, key: str | None = None, latency: float = 0.0,
                 faults: list | None = None):
        self.embed, self.key, self.latency = embed, key, latency
        self.faults = list(faults or [])
        self.requests = 0  # every request received
        self.texts_embedded = 0  # texts in answered requests: what an API bills
        self.batch_sizes: list[int] = []
        self.authorizations: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.encoded: dict[tuple, str] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def trust(self, monkeypatch, variable: str) -> None:
        """Bind the key in `variable` to this server, as a CI workflow binds its keys (qmspec/trust.py)."""
        monkeypatch.setenv("QMSPEC_KEY_HOSTS", f"{variable}={self.host}")

    def __enter__(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def row_json(self, vector: np.ndarray, as_base64: bool) -> str:
        """One embedding as JSON floats or base64 float32, cached by value: the server's own encoding should not be
        what a benchmark times."""
        key = (vector.tobytes(), as_base64)
        if key not in self.encoded:
            raw = base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else None
            self.encoded[key] = json.dumps(raw if as_base64 else vector.tolist())
        return self.encoded[key]

    def answer(self, body: dict, fault) -> tuple[int, dict | str]:
        """The answer to a request no fault stopped: embeddings of its input (tests/chat_server.py answers chats)."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = np.asarray(self.embed(texts), dtype=np.float32)
        if body.get("dimensions"):
            vectors = vectors[:, : body["dimensions"]]
        if fault and fault[0] == "dimensions":
            vectors = np.zeros((len(texts), fault[1]), dtype=np.float32)
        with self.lock:
            self.texts_embedded += len(texts)
            self.batch_sizes.append(len(texts))
        rows = [self.row_json(vector, body.get("encoding_format") == "base64") for vector in vectors]
        data = ",".join(f'{{"object":"embedding","index":{i},"embedding":{row}}}' for i, row in reversed(list(enumerate(rows))))
        return 200, (f'{{"object":"list","data":[{data}],"model":{json.dumps(body["model"])},'
                     '"usage":{"prompt_tokens":0,"total_tokens":0}}')

    def _next_fault(self):
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.faults.pop(0) if self.faults else None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.answered = False
                server.authorizations.append(self.headers.get("Authorization"))
                fault = server._next_fault()
                try:
                    self._answer(body, fault)
                finally:
                    self._done()

            def _done(self) -> None:
                """Out of flight once the answer is decided, before it is sent: the client's next request may arrive
                before this thread runs again."""
                if not self.answered:
                    self.answered = True
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, fault) -> None:
                if server.latency:
                    time.sleep(server.latency)
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self._send(401, {"error": {"message": "Incorrect API key provided"}})
                if fault and fault[0] == "echo":
                    return self._send(fault[1], {"error": {"message": f"rejected {self.headers.get('Authorization')} for {body['model']}"}})
                if fault and fault[0] == "status":
                    return self._send(fault[1], {"error": {"message": f"injected {fault[1]}"}},
                                      {"Retry-After": str(fault[2])} if fault[2] is not None else {})
                if fault and fault[0] == "hang":
                    time.sleep(fault[1])
                status, payload = server.answer(body, fault)
                self._send(status, payload)

            def _send(self, status: int, payload: dict | str, headers: dict | None = None) -> None:
                self._done()
                send_json(self, status, payload, headers)

        return Handler


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict | str, headers: dict | None = None) -> None:
    """Answer with JSON (a dict, or text already encoded), unless the client gave up waiting (a timeout test)."""
    data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    try:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def hash_embed(size: int = 16) -> Callable[[list[str]], np.ndarray]:
    from tests.plugins.hash_embedder import HashEmbedder

    return HashEmbedder({"name": "api-model", "options": {"size": size}}).embed



def constant_embed(size: int = 384) -> Callable[[list[str]], np.ndarray]:
    """The same unit vector for every text: a server whose own work costs nothing, for timing the client."""
    row = np.full(size, 1 / np.sqrt(size), dtype=np.float32)
    return lambda texts: np.tile(row, (len(texts), 1))


if __name__ == "__main__":  # a server in its own process (the benchmark): prints its URL, serves until killed
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=384)
    options = parser.parse_args()
    with EmbeddingServer(constant_embed(options.size), latency=options.latency) as running:
        print(running.base_url, flush=True)
        running.thread.join()
