"""Progress of the long parts of an apply: points written, texts embedded as each batch comes back, the rate and the
ETA. At a terminal, a live bar from rich above which log lines scroll (never interleaved with them); elsewhere (CI
logs, a pipe) a plain log line at most every `every_s` seconds, which `--format json` streams as `progress` events.
Phases with nothing to count (loading a model, waiting for green, the quality evaluation) say how long they take.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..logs import event, logger, plain_output
from ..planning.modelfacts import duration

log = logger(__name__)
_current: list = []  # the Progress of the running step: what embedding batches report to


def _live(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"


class Progress:
    """Points done of `total`, with texts embedded beside them: a rich bar at a terminal, plain lines otherwise."""

    def __init__(self, label: str, total: int | None, stream=None, every_s: float | None = None):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = float(os.environ.get("QMSPEC_PROGRESS_EVERY_S", 10)) if every_s is None else every_s
        self.started = time.monotonic()
        self.last = self.started - self.every_s  # the first batch shows at once: a log that says it started
        self.done = self.embedded = 0
        self.shown = -1
        self.lock = threading.Lock()
        self.bar = self.task = None
        if _live(self.stream):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            console = Console(file=self.stream, no_color=plain_output(), highlight=False)
            self.bar = Bar(TextColumn("      {task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[embedded]}"), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                           console=console, transient=False, redirect_stderr=True, redirect_stdout=False)
            self.task = self.bar.add_task(label, total=total, embedded="", rate="")
            self.bar.start()
        _current[:] = [self]

    def embedding(self, texts: int) -> None:
        """A batch of `texts` came back from the model: the bar moves before its page is written."""
        with self.lock:
            self.embedded += texts
        self._show(final=False)

    def update(self, done: int, final: bool = False) -> None:
        with self.lock:
            self.done = done
        self._show(final)

    def _show(self, final: bool) -> None:
        now = time.monotonic()
        rate = self.done / max(now - self.started, 1e-9)
        if self.bar is not None:
            embedded = f"{self.embedded:,} embedded" if self.embedded > self.done else ""
            self.bar.update(self.task, completed=self.done, embedded=embedded, rate=f"{rate:,.0f} points/s")
            if final:
                self.bar.stop()
                _current[:] = []
            return
        if (self.done, self.embedded) == self.shown or (not final and now - self.last < self.every_s):
            return
        self.last, self.shown = now, (self.done, self.embedded)
        line = f"{self.label}: {self.done:,}" + (f"/{self.total:,}" if self.total else "") + f" points, {rate:,.0f} points/s"
        if self.embedded > self.done:
            line += f" ({self.embedded:,} embedded)"
        eta = (self.total - self.done) / rate if self.total and rate and self.done < self.total else None
        if eta is not None:
            line += f", ETA {duration(eta)}"
        event(log, "progress", "      " + line, label=self.label, done=self.done, total=self.total, embedded=self.embedded or None,
              rate=round(rate, 1), eta_s=round(eta, 1) if eta is not None else None)
        if final:
            _current[:] = []


def embedded(texts: int) -> None:
    """Called by the embedding loop after each batch: moves the running step's progress, if any."""
    if _current:
        _current[0].embedding(texts)


@contextmanager
def phase(label: str, stream=None) -> Iterator[None]:
    """A part of a step with nothing to count: a spinner with the time so far at a terminal; otherwise a line when it
    starts and, if it took longer than a few seconds, one when it ends."""
    stream = stream if stream is not None else sys.stderr
    started = time.monotonic()
    if _live(stream):
        from rich.console import Console

        with Console(file=stream, no_color=plain_output(), highlight=False).status(f"      {label}"):
            yield
        log.info(f"      {label}: {duration(time.monotonic() - started)}")
        return
    log.info(f"      {label}")
    yield
    if time.monotonic() - started >= 3:
        event(log, "progress", f"      {label}: done in {duration(time.monotonic() - started)}", label=label, done=1, total=1)
