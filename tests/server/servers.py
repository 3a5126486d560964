"""A real Qdrant server for the contract suite (marker `server`): QMSPEC_TEST_URL (and QMSPEC_TEST_API_KEY) when set,
else one started with testcontainers where Docker runs (image QMSPEC_TEST_QDRANT_IMAGE, default qdrant/qdrant:latest),
else every test is skipped with one reason."""
from __future__ import annotations

import os
from dataclasses import dataclass

from qdrant_client import QdrantClient

IMAGE = os.environ.get("QMSPEC_TEST_QDRANT_IMAGE", "qdrant/qdrant:latest")


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str | None
    grpc_port: int = 6334

    def client(self, prefer_grpc: bool = False) -> QdrantClient:
        return QdrantClient(url=self.url, api_key=self.api_key, prefer_grpc=prefer_grpc, grpc_port=self.grpc_port, timeout=60)


def unavailable() -> str | None:
    """Why no server can be had here, or None."""
    if os.environ.get("QMSPEC_TEST_URL"):
        return None
    missing = _docker_missing()
    return f"server contract suite: no QMSPEC_TEST_URL, and {missing} to start {IMAGE}" if missing else None


def _docker_missing() -> str | None:
    try:
        import docker
        from testcontainers.core.container import DockerContainer  # noqa: F401
    except ImportError as exc:
        return f"testcontainers is not installed ({exc.name})"
    try:
        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the daemon means no Docker here
        return f"Docker is not reachable ({type(exc).__name__})"
    return None


