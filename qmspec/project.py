"""The project file `qmspec.yaml`: named environments, each an embedded path or a server URL with the name of the
environment variable that holds its API key. `--env NAME` picks one on every command.

    environments:
      staging: {path: .qmspec/staging}
      prod: {url: "${QDRANT_PROD_URL}", api_key_env: QDRANT_PROD_API_KEY}
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .connect import Target
from .errors import Problem, SpecError
from .yamlpos import YamlSyntaxError, load_yaml

PROJECT_FILE = "qmspec.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def find_project(start: Path | None = None) -> Path | None:
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate / PROJECT_FILE
    return None


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
    if not isinstance(entry, dict) or bool(entry.get("path")) == bool(entry.get("url")) or set(entry) - {"path", "url", "api_key_env"}:
        raise SpecError([Problem(file, document.line_of(where), ".".join(where), "an environment has either `path` or `url` "
                                 "(and, with url, `api_key_env`), nothing else", "e.g. `prod: {url: ${QDRANT_URL}, api_key_env: QDRANT_API_KEY}`")])
    problems = []

    def expand(value: str, key: str) -> str:
        def replace(match):
            if match.group(1) in environ:
                return environ[match.group(1)]
            if match.group(2) is not None:
                return match.group(2)
            problems.append(Problem(file, document.line_of(where + (key,)), ".".join(where + (key,)),
                                    f"environment variable {match.group(1)} is not set", f"export {match.group(1)}=..."))
            return ""
        return _ENV_REF.sub(replace, value)

    if entry.get("url"):
        target = Target(url=expand(entry["url"], "url"), api_key_env=entry.get("api_key_env") or "QDRANT_API_KEY")
    else:
        path = expand(entry["path"], "path")
        target = Target(path=str(project.parent / path) if not os.path.isabs(path) else path)
    if problems:
        raise SpecError(problems)
    return target
