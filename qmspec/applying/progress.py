"""Progress of a long step: points done, points/s and the ETA."""
from __future__ import annotations

import sys
import time

from ..logs import event, logger
from ..planning.modelfacts import duration

log = logger(__name__)


class Progress:
    """Points done, points/s and ETA: a live line on a terminal, a plain line every `every_s` seconds otherwise (CI)."""

    def __init__(self, label: str, total: int | None, stream=None, every_s: float = 10.0):
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every_s = every_s
        self.started = self.last = time.monotonic()
        self.shown = -1

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if done == self.shown or not (final or self.live or now - self.last >= self.every_s):
            return
        self.last, self.shown = now, done
        rate = done / max(now - self.started, 1e-9)
        line = f"{self.label}: {done:,}" + (f"/{self.total:,}" if self.total else "") + f" points, {rate:,.0f} points/s"
        if self.total and rate and done < self.total:
            line += f", ETA {duration((self.total - done) / rate)}"
        if self.live:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.stream.flush()
        else:
            event(log, "progress", "      " + line, label=self.label, done=done, total=self.total, rate=round(rate, 1),
                  eta_s=round((self.total - done) / rate, 1) if self.total and rate and done < self.total else None)
