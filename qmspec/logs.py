"""Logging: every module of qmspec logs through `logger(__name__)`, under the `qmspec` logger, with the standard
`logging` module, so a library user (an Airflow task, a Dagster op) configures it as any other library's.

Records are scrubbed of secrets when they are made, not by a handler: whichever handler a user attaches, no key
reaches it. qmspec adds only a NullHandler; the command line shows INFO on stderr (-v: DEBUG, -q: WARNING).

Levels: INFO for what an operator follows (steps, partitions, catch-ups, model loads, retries); DEBUG for each batch
and request; WARNING for what needs a look but does not stop the command.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Callable, Iterator

from .errors import redact

ROOT = "qmspec"
logging.getLogger(ROOT).addHandler(logging.NullHandler())


class ScrubbedLogger(logging.LoggerAdapter):
    """A logger whose messages are formatted and scrubbed before the record exists."""

    def __init__(self, logger: logging.Logger):
        super().__init__(logger, {})

    def log(self, level: int, msg, *args, **kwargs) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.setdefault("stacklevel", 2)
            self.logger.log(level, redact(text), **kwargs)


def logger(name: str) -> ScrubbedLogger:
    return ScrubbedLogger(logging.getLogger(name))


_plain = {"asked": False}  # `qmspec --no-color`


def plain_output(asked: bool | None = None) -> bool:
    """Whether what qmspec shows at a terminal (plans, progress bars) stays uncoloured: asked on the command line
    (`--no-color`, which sets this), or NO_COLOR in the environment (no-color.org), as a library caller has it."""
    if asked is not None:
        _plain["asked"] = asked
    return _plain["asked"] or bool(os.environ.get("NO_COLOR"))


EVENT = "qmspec_event"  # the LogRecord attribute of a structured event: {"type": ..., fields}


def event(log: ScrubbedLogger, kind: str, message: str, level: int = logging.INFO, /, **fields) -> None:
    """A log line that is also an event of the `--format json` stream (schemas/events.schema.json): the same record
    for a person and for a machine, so neither can say something the other does not."""
    log.log(level, message, extra={EVENT: {"type": kind, **fields}}, stacklevel=3)


class _Forward(logging.Handler):
    def __init__(self, sink: Callable[[str], None]):
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink(record.getMessage())


@contextmanager
def forwarded(sink: Callable[[str], None] | None, level: int = logging.INFO) -> Iterator[None]:
    """Hand qmspec's records of `level` and above to `sink` (one line each) while the block runs: the log sink a
    caller of the workflow passes in. None leaves logging as it is configured."""
    if sink is None:
        yield
        return
    root, handler = logging.getLogger(ROOT), _Forward(sink)
    handler.setLevel(level)
    previous = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
