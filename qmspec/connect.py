"""The one place that builds a QdrantClient for a Target: an embedded path, or a server URL with the API key
taken from an environment variable. The key is never stored on any object that gets printed or saved."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

from .errors import QdrantAccessError, remember_secret
from .logs import logger
from .trust import Untrusted, require_key_destination
from .project import Target
from .retry import RetryingClient

log = logger(__name__)


@contextmanager
def open_client(target: Target, environ=None, read_only: bool = False):
    """Yield a client and always close it: an embedded store is locked to one open client at a time. `read_only`:
    an embedded store that does not exist is read as an empty one instead of being created (reading never writes)."""
    from qdrant_client import QdrantClient

    environ = os.environ if environ is None else environ
    try:
        if target.embedded and read_only and not os.path.isdir(target.path):
            client = QdrantClient(location=":memory:")
        elif target.embedded:
            client = QdrantClient(path=target.path)
        else:
            api_key = environ.get(target.api_key_env) if target.api_key_env else None
            if api_key:
                remember_secret(target.api_key_env, api_key, always=True)
                require_key_destination(target.api_key_env, target.url, "the Qdrant connection", environ, also=target.key_hosts)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # qmspec knows which server versions can do what (planning/capabilities.py): no client-side version check
                client = QdrantClient(url=target.url, api_key=api_key or None, timeout=max(1, int(target.retry.timeout_s)),
                                      cloud_inference=target.cloud_inference, prefer_grpc=target.prefer_grpc, grpc_port=target.grpc_port,
                                      check_compatibility=False)
            if any("insecure connection" in str(warning.message) for warning in caught):
                log.warning(f"warning: the API key in {target.api_key_env} is sent to the {target.describe()} over plain http; "
                            "use https")
    except Untrusted:
        raise
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
        yield RetryingClient(client, target.retry, target.describe())
    finally:
        client.close()


def scrub(text: str, target: Target, environ=None) -> str:
    """Remove the API key from a message that may echo request details."""
    environ = os.environ if environ is None else environ
    key = environ.get(target.api_key_env) if target.api_key_env else None
    return text.replace(key, "***") if key else text


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
