"""A loopback HTTP endpoint that stands where a Qdrant server (or an attacker's host) would: it records every request
(method, path, api-key header) and answers each with one fixed status, its error quoting the request's api-key
header back, as a careless proxy does. What tests check no key reached, and that echoed bodies are scrubbed."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .embedding_server import send_json


class RecordingQdrant:
    def __init__(self, status: int = 500):
        self.status = status
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, api-key header)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                key = self.headers.get("api-key")
                fake.requests.append((self.command, self.path, key))
                send_json(self, fake.status, {"status": {"error": f"request rejected: headers were api-key: {key}"}, "time": 0.0})

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer  # noqa: N815 - http.server's names

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def keys_received(self) -> list[str]:
        return [key for _, _, key in self.requests if key]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

