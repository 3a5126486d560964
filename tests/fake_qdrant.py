"""A loopback HTTP endpoint that stands where a Qdrant server (or an attacker's host) would: it records every request
(method, path, api-key header) and answers each with one fixed status, its error quoting the request's api-key
header back, as a careless proxy does. What tests check no key reached, and that echoed bodies are scrubbed."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .embedding_server import send_json


class LoopbackEndpoint:
    """An HTTP server on a free loopback port, its handler serving from a thread until `close`."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RecordingQdrant(LoopbackEndpoint):
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

        self.serve(Handler)

    def keys_received(self) -> list[str]:
        return [key for _, _, key in self.requests if key]


QUOTA_REFUSAL = ("Disk usage is at 96% of total capacity, exceeding the configured limit of 95%. Help: Reduce disk usage "
                 "(e.g. delete points or drop collections), or raise `max_disk_usage_percent` in the global quota config.")


class QuotaQdrant(LoopbackEndpoint):
    """A Qdrant 1.19 node at its disk quota, as a loopback endpoint: `GET /quotas` and `GET /telemetry` answer as 1.19
    does (two peers, one over its limit), and every write is refused with 507 Insufficient Storage and Qdrant's
    message. Records each request's method and path."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(("GET", self.path))
                if self.path.startswith("/quotas"):
                    send_json(self, 200, {"result": {
                        "config": {"enabled": True, "max_disk_usage_percent": 95, "max_resident_memory_percent": 90},
                        "usage": {"disk_usage_percent": 80, "resident_memory_percent": 40},
                        "peers": {"1": {"exceeded": False, "disk_usage_percent": 80, "resident_memory_percent": 40},
                                  "2": {"exceeded": True, "disk_usage_percent": 96, "resident_memory_percent": 35}}},
                        "status": "ok", "time": 0.0})
                elif self.path.startswith("/telemetry"):
                    send_json(self, 200, {"result": {"id": "node", "app": {"name": "qdrant", "version": "1.19.0", "system": {
                        "disk_size": 100 << 20, "ram_size": 16 << 20}}}, "status": "ok", "time": 0.0})
                else:
                    send_json(self, 404, {"status": {"error": "Not found"}, "time": 0.0})

            def _refuse(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                fake.requests.append((self.command, self.path))
                send_json(self, 507, {"status": {"error": f"Insufficient storage: {QUOTA_REFUSAL}"}, "time": 0.0})

            do_PUT = do_POST = do_PATCH = _refuse  # noqa: N815

        self.serve(Handler)
