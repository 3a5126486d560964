"""The one place that builds a QdrantClient: embedded path by default, or a server URL with the API key
taken from an environment variable. The key is never stored on any object that gets printed or saved."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .errors import QdrantAccessError

DEFAULT_PATH = ".qmspec/qdrant"
DEFAULT_API_KEY_ENV = "QDRANT_API_KEY"


@dataclass(frozen=True)
class Target:
    """Where Qdrant is. Holds the *name* of the key's variable, never the key."""

    path: str | None = None
    url: str | None = None
    api_key_env: str | None = None

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def key(self) -> str:
        """Names this Qdrant in state paths: the store's absolute path, or the URL without credentials."""
        return os.path.abspath(self.path) if self.embedded else redact_url(self.url)

    def describe(self) -> str:
        if self.embedded:
            return f"embedded store {self.path}"
        return f"server {redact_url(self.url)}"


def redact_url(url: str) -> str:
    """Drop user:password@ and query strings: URLs end up in plans, logs and PR comments."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def resolve_target(path: str | None = None, url: str | None = None, api_key_env: str | None = None, spec_connection=None,
                   env: str | None = None) -> Target:
    """--path/--url win, then --env (an environment of qmspec.yaml), then the spec's `connection:`, then the
    embedded default."""
    if sum(map(bool, (path, url, env))) > 1:
        raise QdrantAccessError("give one of --path (embedded store), --url (server) or --env (qmspec.yaml), not several")
    if env:
        from .project import environment_target

        target = environment_target(env)
        return Target(path=target.path, url=target.url, api_key_env=api_key_env or target.api_key_env)
    spec_connection = spec_connection or _NoConnection
    if not path and not url:
        path, url = spec_connection.path, spec_connection.url
    if url:
        return Target(url=url, api_key_env=api_key_env or spec_connection.api_key_env or DEFAULT_API_KEY_ENV)
    return Target(path=path or DEFAULT_PATH)


class _NoConnection:
    path = url = api_key_env = None


@contextmanager
def open_client(target: Target, environ=None):
    """Yield a client and always close it: an embedded store is locked to one open client at a time."""
    from qdrant_client import QdrantClient

    environ = os.environ if environ is None else environ
    try:
        if target.embedded:
            client = QdrantClient(path=target.path)
        else:
            client = QdrantClient(url=target.url, api_key=environ.get(target.api_key_env) or None, timeout=30)
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise QdrantAccessError(
                f"the {target.describe()} is open in another process (an apply running?); "
                "wait for it to finish, or use a server (--url) for concurrent access"
            ) from None
        raise QdrantAccessError(f"cannot open the {target.describe()}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - every client failure becomes one readable message
        raise QdrantAccessError(f"cannot connect to the {target.describe()}: {scrub(_short(exc), target, environ)}") from None
    try:
        yield client
    finally:
        client.close()


def scrub(text: str, target: Target, environ=None) -> str:
    """Remove the API key from a message that may echo request details."""
    environ = os.environ if environ is None else environ
    key = environ.get(target.api_key_env) if target.api_key_env else None
    return text.replace(key, "***") if key else text


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
