"""Where a secret may go, and what code may run, decided by whoever runs qmspec, never by a spec.

A spec is code review material: in a pull request anyone can edit it, and the CI job that plans it holds production
keys in its environment. So a key is sent only to a host bound to its variable, and a plug-in backend or a model's
remote code runs only when the environment allows it:

- `QMSPEC_KEY_HOSTS="OPENAI_API_KEY=api.openai.com EMBED_TOKEN=embed.internal:8443,*.example.com"` binds variables to
  hosts (a port must match where one is given; `*.` matches subdomains).
- The Qdrant connection's key is also bound to the URL given where qmspec runs: `--url` on the command line, or a
  connection whose whole URL is one environment variable (`url: ${QDRANT_URL}`): the host comes from the
  environment, not from the file.
- `OPENAI_API_KEY` is bound to api.openai.com, the endpoint it is issued for.
- `QMSPEC_PLUGINS="mycompany.embedders tests.plugins"` lists the modules (or module:Class) whose plug-in backends may
  be imported; `QMSPEC_REMOTE_CODE="nomic-ai/nomic-embed-text-v1.5"` the models allowed `trust_remote_code`.

A refusal names the variable, the host and the setting that would allow it, and happens before any request.
"""
from __future__ import annotations

import os
import re
from typing import Mapping
from urllib.parse import urlsplit

from .errors import QmspecError
from .planning.envvars import is_one_variable

KEY_HOSTS = "QMSPEC_KEY_HOSTS"
PLUGINS = "QMSPEC_PLUGINS"
REMOTE_CODE = "QMSPEC_REMOTE_CODE"
DEFAULT_BINDINGS = {"OPENAI_API_KEY": ("api.openai.com",)}


class Untrusted(QmspecError):
    """A spec asked for something only the environment qmspec runs in may allow."""


def _entries(environ: Mapping[str, str], name: str) -> list[str]:
    return [entry for entry in re.split(r"[\s;]+", environ.get(name, "").strip()) if entry]


def bindings(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """Variable -> host patterns it may be sent to: QMSPEC_KEY_HOSTS over the defaults."""
    environ = os.environ if environ is None else environ
    bound = {name: list(hosts) for name, hosts in DEFAULT_BINDINGS.items()}
    for entry in _entries(environ, KEY_HOSTS):
        variable, _, hosts = entry.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable) or not hosts:
            raise QmspecError(f"{KEY_HOSTS}: {entry.split('=')[0]!r} is not VARIABLE=host[,host...]; write e.g. "
                              f"{KEY_HOSTS}='OPENAI_API_KEY=api.openai.com EMBED_TOKEN=embed.internal:8443'")
        bound.setdefault(variable, []).extend(host.strip().lower() for host in hosts.split(",") if host.strip())
    return {variable: tuple(hosts) for variable, hosts in bound.items()}


def host_of(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def _matches(pattern: str, host: str) -> bool:
    name, _, port = host.partition(":")
    wanted, _, wanted_port = pattern.partition(":")
    if wanted_port and wanted_port != port:
        return False
    if wanted.startswith("*."):
        return name.endswith(wanted[1:])
    return name == wanted


def require_key_destination(variable: str, url: str, what: str, environ: Mapping[str, str] | None = None,
                            also: tuple[str, ...] = ()) -> None:
    """Refuse to send the key in `variable` to `url`'s host unless it is bound there (`also`: hosts the caller binds,
    such as the URL given on the command line)."""
    host = host_of(url)
    allowed = (*bindings(environ).get(variable, ()), *also)
    if any(_matches(pattern, host) for pattern in allowed):
        return
    bound = f"it is bound to {', '.join(allowed)}" if allowed else "it is bound to no host"
    raise Untrusted(f"not sending the key in {variable} to {host} ({what}): {bound}. A spec cannot choose where a key goes; "
                    f"where qmspec runs (the CI workflow, your shell), bind it: {KEY_HOSTS}='{variable}={host}'")


def require_plugin(target: str, environ: Mapping[str, str] | None = None) -> None:
    """A plug-in backend (`package.module:Class`) is imported only when QMSPEC_PLUGINS allows its module."""
    environ = os.environ if environ is None else environ
    module = target.partition(":")[0]
    for allowed in _entries(environ, PLUGINS):
        if target == allowed or module == allowed or module.startswith(allowed.rstrip(".") + "."):
            return
    raise Untrusted(f"not importing the plug-in backend {target!r}: a spec cannot make qmspec run code. Where qmspec runs, "
                    f"allow it: {PLUGINS}='{module}'")


def require_remote_code(model: str, environ: Mapping[str, str] | None = None) -> None:
    """`trust_remote_code` runs code from a model's repository: only for models QMSPEC_REMOTE_CODE names."""
    environ = os.environ if environ is None else environ
    if model not in _entries(environ, REMOTE_CODE):
        raise Untrusted(f"not running the code of model {model!r} (trust_remote_code): a spec cannot make qmspec run code. "
                        f"Where qmspec runs, allow it: {REMOTE_CODE}='{model}'")


def bound_by_runner(url: str | None, raw: str | None = None, given: bool = False) -> tuple[str, ...]:
    """The hosts a connection binds its own key to: the URL given where qmspec runs (`given`: the command line), or
    one written as a single environment variable (`raw`, as in the file)."""
    return (host_of(url),) if url and (given or is_one_variable(raw)) else ()
