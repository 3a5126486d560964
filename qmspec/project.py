"""Where Qdrant is: the project file `qmspec.yaml` with its named environments, and the Target a command resolves
to (a value; `connect.py` opens clients for it). `--env NAME` picks an environment on every command.

    environments:
      staging: {path: .qmspec/staging}
      prod: {url: "${QDRANT_PROD_URL}", api_key_env: QDRANT_PROD_API_KEY}
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import Problem, QdrantAccessError, SpecError, redact
from .planning import envvars
from .planning.spec import url_problem
from .planning.yamlpos import YamlSyntaxError, load_yaml
from .trust import bound_by_runner

PROJECT_FILE = "qmspec.yaml"
DEFAULT_PATH = ".qmspec/qdrant"
DEFAULT_API_KEY_ENV = "QDRANT_API_KEY"
URL_VARIABLE = "QDRANT_URL"


@dataclass(frozen=True)
class RetryPolicy:
    """How every call to Qdrant is retried when it fails in passing (retry.py), and how long one request may take;
    an environment of qmspec.yaml sets it with `retry: {attempts, max_seconds, timeout_s}`."""

    attempts: int = 6
    max_seconds: float = 120.0  # the whole budget of one call, waits included
    timeout_s: float = 30.0
    initial_wait: float = 0.5
    max_wait: float = 30.0


@dataclass(frozen=True)
class Target:
    """Where Qdrant is. Holds the *name* of the key's variable, never the key."""

    path: str | None = None
    url: str | None = None
    api_key_env: str | None = None
    cloud_inference: bool = False  # Qdrant embeds models.Document itself (Qdrant Cloud inference)
    retry: RetryPolicy = RetryPolicy()
    prefer_grpc: bool = False
    grpc_port: int = 6334
    key_hosts: tuple[str, ...] = ()  # hosts the runner bound the key to (trust.py): a URL from the command line or environment
    chosen_by: str = "the default"  # which rule of the connection precedence picked it: said with every plan

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def key(self) -> str:
        """Names this Qdrant in state paths: the store's path (relative to the working directory when inside it, so
        a moved project folder keeps its journals), or the URL without credentials."""
        if not self.embedded:
            return redact_url(self.url)
        path = os.path.abspath(self.path)
        return os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path

    @property
    def legacy_key(self) -> str:
        """The key journals were kept under before: the absolute path."""
        return os.path.abspath(self.path) if self.embedded else self.key

    def describe(self) -> str:
        if self.embedded:
            return f"embedded store {redact(self.path)}"
        return f"server {redact_url(self.url)}"

    @property
    def where(self) -> str:
        """What it ran against, as plans and reports name it: the server's URL without credentials, or the embedded
        store's absolute path."""
        return redact_url(self.url) if not self.embedded else os.path.abspath(self.path)


@dataclass(frozen=True)
class Connection:
    """How a command was told where Qdrant is (--path, --url, --api-key-env, --env), resolved to a Target together
    with a spec's `connection:`."""

    path: str | None = None
    url: str | None = None
    api_key_env: str | None = None
    env: str | None = None

    def target(self, spec_connection=None) -> Target:
        return resolve_target(self.path, self.url, self.api_key_env, spec_connection, env=self.env)

    def options(self) -> list[str]:
        """These options as typed, for the exact commands that hints name (a URL without its credentials)."""
        given = [("--path", self.path), ("--url", self.url and redact_url(self.url)), ("--api-key-env", self.api_key_env),
                 ("--env", self.env)]
        return [part for flag, value in given if value for part in (flag, value)]


def redact_url(url: str) -> str:
    """Drop user:password@ and query strings, and any secret expanded into it: URLs end up in plans, logs and PR
    comments."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return redact(urlunsplit((parts.scheme, host, parts.path, "", "")))


def resolve_target(path: str | None = None, url: str | None = None, api_key_env: str | None = None, spec_connection=None,
                   env: str | None = None, environ=None) -> Target:
    """Where Qdrant is, as a Terraform provider's configuration is found; the first that says wins:
    1. the command line: --path, --url, or --env NAME (that environment of qmspec.yaml);
    2. the spec's `connection:` (a path in it is relative to the spec's folder);
    3. QDRANT_URL in the environment, with the key in QDRANT_API_KEY (or the variable --api-key-env names);
    4. the embedded store .qmspec/qdrant in the working directory."""
    environ = os.environ if environ is None else environ
    if sum(map(bool, (path, url, env))) > 1:
        raise QdrantAccessError("give one of --path (embedded store), --url (server) or --env (qmspec.yaml), not several")
    if env:
        target = environment_target(env)
        return dataclasses.replace(target, api_key_env=api_key_env or target.api_key_env, chosen_by=f"--env {env} ({PROJECT_FILE})")
    spec_connection = spec_connection or _NoConnection
    if path:
        return Target(path=path, chosen_by="--path")
    if url:
        return _server(url, api_key_env or spec_connection.api_key_env, spec_connection, "--url", key_hosts=bound_by_runner(url, given=True))
    if spec_connection.url:
        return _server(spec_connection.url, api_key_env or spec_connection.api_key_env, spec_connection, "the spec's connection.url",
                       key_hosts=bound_by_runner(spec_connection.url, spec_connection.url_as_written))
    if spec_connection.path:
        return Target(path=spec_connection.path, chosen_by="the spec's connection.path")
    if environ.get(URL_VARIABLE):
        key = api_key_env or spec_connection.api_key_env or DEFAULT_API_KEY_ENV
        # the runner pairs QDRANT_URL with QDRANT_API_KEY (or the variable it names on the command line): bound there;
        # a variable only the spec names is not
        paired = key == (api_key_env or DEFAULT_API_KEY_ENV)
        return _server(environ[URL_VARIABLE], key, spec_connection, URL_VARIABLE,
                       key_hosts=bound_by_runner(environ[URL_VARIABLE], given=True) if paired else ())
    return Target(path=DEFAULT_PATH)


def _server(url: str, api_key_env: str | None, spec_connection, chosen_by: str, key_hosts: tuple) -> Target:
    if url_problem(url):
        raise QdrantAccessError(f"{chosen_by}: {url_problem(url)}; write it as http(s)://host:port, e.g. http://localhost:6333")
    return Target(url=url, api_key_env=api_key_env or DEFAULT_API_KEY_ENV, cloud_inference=bool(spec_connection.cloud_inference),
                  retry=retry_from_environment(), prefer_grpc=bool(spec_connection.prefer_grpc), grpc_port=spec_connection.grpc_port,
                  key_hosts=key_hosts, chosen_by=chosen_by)


def retry_from_environment(environ=None) -> RetryPolicy:
    """The default policy, or QMSPEC_RETRY_ATTEMPTS / QMSPEC_RETRY_MAX_SECONDS where set (a CI job's own budget)."""
    environ = os.environ if environ is None else environ
    values = {}
    for field, name in (("attempts", "QMSPEC_RETRY_ATTEMPTS"), ("max_seconds", "QMSPEC_RETRY_MAX_SECONDS")):
        if environ.get(name):
            try:
                values[field] = int(environ[name]) if field == "attempts" else float(environ[name])
            except ValueError:
                values[field] = -1
            if values[field] <= 0:
                raise QdrantAccessError(f"{name}={environ[name]!r} is not a positive {'whole ' if field == 'attempts' else ''}number; "
                                        f"e.g. {name}={'8' if field == 'attempts' else '300'}, or unset it for the default")
    return RetryPolicy(**values)


class _NoConnection:
    path = url = url_as_written = api_key_env = None
    cloud_inference = prefer_grpc = False
    grpc_port = 6334


def find_project(start: Path | None = None) -> Path | None:
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate / PROJECT_FILE
    return None


ENVIRONMENT_KEYS = {"path", "url", "api_key_env", "cloud_inference", "prefer_grpc", "grpc_port", "retry"}


def environment_target(name: str, project: Path | None = None, environ=None) -> Target:
    environ = os.environ if environ is None else environ
    project = project or find_project()
    if project is None:
        raise SpecError([Problem(PROJECT_FILE, None, "", f"--env {name} needs a {PROJECT_FILE} naming environments",
                                 f"create {PROJECT_FILE} with `environments: {{{name}: {{path: ...}}}}`")])
    file = str(project)
    try:
        document = load_yaml(project.read_text(encoding="utf-8"))
    except YamlSyntaxError as exc:
        raise SpecError([Problem(file, exc.line, "", exc.message, "fix the YAML at that line")]) from None
    environments = (document.data or {}).get("environments") if isinstance(document.data, dict) else None
    if not isinstance(environments, dict) or name not in environments:
        known = ", ".join(sorted(environments)) if isinstance(environments, dict) else "none"
        raise SpecError([Problem(file, document.line_of(("environments",)), "environments",
                                 f"no environment {name!r} (known: {known})", f"add `{name}:` under environments")])
    entry = environments[name] or {}
    where = ("environments", name)
    if not isinstance(entry, dict) or bool(entry.get("path")) == bool(entry.get("url")) or set(entry) - ENVIRONMENT_KEYS:
        raise SpecError([Problem(file, document.line_of(where), ".".join(where), "an environment has either `path` or `url` "
                                 "(and, with url, `api_key_env`), nothing else", "e.g. `prod: {url: ${QDRANT_URL}, api_key_env: QDRANT_API_KEY}`")])
    problems = []

    def expand(value: str, key: str) -> str:
        path = where + (key,)
        return envvars.expand(value, environ, lambda variable: problems.append(Problem(
            file, document.line_of(path), ".".join(path), f"environment variable {variable} is not set", f"export {variable}=...")))

    if entry.get("url") and url_problem(expand(entry["url"], "url")):
        problems.append(Problem(file, document.line_of(where + ("url",)), ".".join(where + ("url",)),
                                url_problem(expand(entry["url"], "url")), "write it as http(s)://host:port"))
    if entry.get("url"):
        url = expand(entry["url"], "url")
        target = Target(url=url, api_key_env=entry.get("api_key_env") or DEFAULT_API_KEY_ENV,
                        cloud_inference=bool(entry.get("cloud_inference")), prefer_grpc=bool(entry.get("prefer_grpc")),
                        grpc_port=int(entry.get("grpc_port", 6334)), key_hosts=bound_by_runner(url, entry["url"]))
    else:
        path = expand(entry["path"], "path")
        target = Target(path=str(project.parent / path) if not os.path.isabs(path) else path)
    retry = entry.get("retry") or {}
    if not isinstance(retry, dict) or set(retry) - {"attempts", "max_seconds", "timeout_s"} or \
            not all(isinstance(value, (int, float)) and value > 0 for value in retry.values()):
        problems.append(Problem(file, document.line_of(where + ("retry",)), ".".join(where + ("retry",)),
                                "retry takes attempts, max_seconds and timeout_s, each a positive number",
                                "e.g. `retry: {attempts: 8, max_seconds: 300, timeout_s: 60}`"))
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(target, retry=RetryPolicy(**retry)) if retry else target
