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


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


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
