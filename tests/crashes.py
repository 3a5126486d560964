"""A crash at a journal fault point ("effect:N" after a step's effect, "checkpoint:N" after a batch checkpoint), in
process: the fast tier's stand-in for kill -9 (tests/test_apply_resume.py kills real processes)."""
from __future__ import annotations

import pytest

from qmspec.applying import journal as journal_module


class SimulatedCrash(BaseException):
    """Not an Exception: nothing in qmspec handles it, as nothing runs after a SIGKILL."""


@pytest.fixture()
def crash_at(monkeypatch):
    """Arm the fault point `fault` for the next apply; None disarms it."""
    def arm(fault: str | None) -> None:
        def crash() -> None:
            raise SimulatedCrash(fault)

        if fault is None:
            monkeypatch.delenv("QMSPEC_FAULT", raising=False)
        else:
            monkeypatch.setenv("QMSPEC_FAULT", fault)
        monkeypatch.setattr(journal_module, "crash", crash)
        journal_module._fault_counts.clear()

    yield arm
    journal_module._fault_counts.clear()
