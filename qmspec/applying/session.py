"""One session of one alias: the Qdrant client, the state store, the alias's lock, its journal and every record an
apply writes (baseline, learned maps, verification reports, partitions in the journal), all kept by the store the
journal is in: local files keyed by the Qdrant they describe (`--state file`), or the `qmspec_state` collection in
that Qdrant itself (`--state qdrant`), so an apply begun on one CI runner is resumed, promoted or rolled back from
another with nothing shared but Qdrant.

A session opened without a command holds no lock and writes nothing: that is how `plan`, `show`, `status` and
`drift` read state, with a read-only key too.
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import QmspecError, redact
from ..logs import logger
from ..planning.record import AliasRecord, STATE_COLLECTION, slug
from ..project import Target
from .durable import write_atomically
from .journal import DEFAULT_STATE_DIR, FileStateStore, Journal, LockHeld, QdrantStateStore, describe_holder

log = logger(__name__)
STATE_KINDS = ("file", "qdrant")


@dataclass(frozen=True)
class StateOptions:
    """Where the journal, the lock and the records live, and how long to wait for another apply's lock."""

    kind: str = "file"  # file: local files; qdrant: the qmspec_state collection
    folder: str = DEFAULT_STATE_DIR
    lock_timeout: float = 0.0

    def options(self) -> list[str]:
        """These options as typed, for the exact commands that hints name."""
        return (["--state", self.kind] if self.kind != "file" else []) + \
               (["--state-dir", self.folder] if self.folder != DEFAULT_STATE_DIR else [])

    def describe(self) -> str:
        return f"the {STATE_COLLECTION} collection" if self.kind == "qdrant" else f"{self.folder}/"


def file_store(target: Target, state: StateOptions) -> FileStateStore:
    return FileStateStore.for_target(target.key, state.folder, target.legacy_key)


@dataclass
class Session:
    target: Target
    state: StateOptions
    alias: str
    client: object
    store: FileStateStore | QdrantStateStore

    @property
    def journal(self) -> Journal:
        """The alias's journal as it is now (read again on each use: a waited-for lock may have changed it)."""
        return Journal.read(self.store, self.alias)

    def record(self) -> AliasRecord:
        return self.store.read(self.alias)

    def lock_holder(self) -> dict | None:
        return self.store.lock_holder(self.alias)

    def write_report(self, journal: Journal) -> tuple[str, str] | None:
        """The verification report of the active apply as files for people and CI artifacts (`reports/<qdrant>/` beside
        the state folder); the journal keeps it too, wherever the state is."""
        verification = journal.active.verification if journal.active else None
        if not verification:
            return None
        folder = Path(self.state.folder).parent / "reports" / slug(self.target.key)
        stem = folder / f"{slug(journal.alias)}-{journal.active.plan_hash}"
        write_atomically(Path(f"{stem}.json"), redact(verification["json"]))
        write_atomically(Path(f"{stem}.md"), redact(verification["markdown"]))
        return f"{stem}.json", f"{stem}.md"


@contextmanager
def session(target: Target, state: StateOptions, alias: str, command: str | None = None, unlock_hint: str = "") -> Iterator[Session]:
    """Open the client and the state store; with a command (an apply, rollback, cleanup), hold the alias's lock
    throughout. The file lock is taken before the client opens, so a second apply hears about the lock, not about a
    busy embedded store."""
    from ..connect import open_client

    if state.kind not in STATE_KINDS:
        raise QmspecError(f"--state {state.kind!r}: use one of {', '.join(STATE_KINDS)}")
    with ExitStack() as stack:
        if state.kind == "file":
            store = stack.enter_context(_held(file_store(target, state), alias, command, state, unlock_hint))
            client = stack.enter_context(open_client(target, read_only=command is None))
        else:
            client = stack.enter_context(open_client(target, read_only=command is None))
            store = stack.enter_context(_held(QdrantStateStore(client), alias, command, state, unlock_hint))
        yield Session(target, state, alias, client, store)


@contextmanager
def _held(store, alias: str, command: str | None, state: StateOptions, unlock_hint: str):
    """Hold the alias's lock: wait up to the lock timeout for a live holder, take over from one proven dead."""
    if command:
        deadline = time.monotonic() + state.lock_timeout
        while True:
            try:
                dead = store.acquire(alias, command)
                break
            except LockHeld as held:
                if time.monotonic() >= deadline:
                    raise LockHeld(alias, held.holder, f"wait for it to finish (or pass --lock-timeout), and if it hangs, stop "
                                                       f"it, then `{unlock_hint}`") from None
                time.sleep(1)
        if dead:
            log.warning(f"took over the lock on alias {alias} from {describe_holder(dead)}: that process is gone")
    try:
        yield store
    finally:
        if command:
            store.release(alias)
