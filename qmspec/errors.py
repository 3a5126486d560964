"""qmspec's own error types: every failure a user can cause ends as one of these, never a traceback."""
from __future__ import annotations

import re
from dataclasses import dataclass

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
_secrets: set[str] = set()


def remember_secret(name: str, value: str, always: bool = False) -> None:
    """A value expanded from a variable named like a key or token (or, `always`, one read because a setting names it
    as a key's variable): never shown again, wherever it ends up."""
    if (always or SECRET_NAME.search(name)) and value and len(value) >= 4:
        _secrets.add(value)


# What a secret looks like where its value is not known: a URL's user:password@, key-like query parameters, the
# credentials of an Authorization header, and headers named like keys, as servers echo them in error bodies.
URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s@:]+:[^/\s@]*@")
KEY_PARAMETERS = re.compile(r"([?&;](?:api[-_]?key|apikey|key|token|access[-_]?token|auth|sig|signature|password|passwd|pwd|secret|"
                            r"client[-_]?secret|code)=)[^&\s#\"']+", re.IGNORECASE)
AUTHORIZATION = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}")
KEY_HEADERS = re.compile(r"((?:x-)?api[-_]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}\]]{4,}", re.IGNORECASE)


def redact(text: str) -> str:
    """The one scrubber for everything that leaves the process (messages, logs, reports, journals): every secret
    value qmspec has read, and anything shaped like a credential."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = URL_CREDENTIALS.sub("***@", text)
    text = KEY_PARAMETERS.sub(r"\1***", text)
    text = AUTHORIZATION.sub(r"\1 ***", text)
    return KEY_HEADERS.sub(r"\1***", text)


def has_credentials(url: str) -> bool:
    """A URL that carries a secret itself (user:password@, ?key=...): it must be written with ${VAR} instead."""
    return bool(URL_CREDENTIALS.search(url) or KEY_PARAMETERS.search(url))


class QmspecError(Exception):
    """Base for errors shown to the user as a message, with exit code 1."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located precisely enough to fix without reading the source."""

    file: str
    line: int | None
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}\n    fix: {self.fix}"


class SpecError(QmspecError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class QdrantAccessError(QmspecError):
    """Qdrant could not be reached or refused a read; the message says which store and what to check."""


class PlanFileError(QmspecError):
    """A saved plan file is unreadable or was written by an incompatible qmspec."""
