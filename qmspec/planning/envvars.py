"""`${VAR}` and `${VAR:-default}` in spec and project values, expanded from the environment."""
from __future__ import annotations

import re
from typing import Callable, Mapping

from ..errors import remember_secret

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
WHOLE_VARIABLE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def is_one_variable(text: str | None) -> bool:
    """Whether a value as written is exactly one `${VAR}`: all of it then comes from the environment."""
    return bool(text) and bool(WHOLE_VARIABLE.match(text.strip()))


def expand(value: str, environ: Mapping[str, str], missing: Callable[[str], None]) -> str:
    """Replace each reference by its variable's value, else its default; `missing(name)` is told of a variable
    that is unset and has no default (the reference then expands to nothing), so callers report it with a line."""
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            remember_secret(name, environ[name])
            return environ[name]
        if default is not None:
            return default
        missing(name)
        return ""

    return REFERENCE.sub(replace, value)
