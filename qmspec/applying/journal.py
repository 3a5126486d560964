"""The apply journal (planning/record.py's typed record) saved after every change, in files or in Qdrant, the lock
that keeps two applies off one alias, and where each apply's other records live (records.py).

Written after every step and every checkpoint, atomically (write a temporary file, fsync, rename), so a
crash at any instant leaves either the previous record or the new one, never half of one. Reading state never
writes: the state collection in Qdrant is created by the first write, so `plan` and `status` work with a
read-only key.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import QmspecError
from ..planning.plan import Plan
from ..planning.record import STATE_COLLECTION, AliasRecord, ApplyRecord, RecordError, StepRecord, slug
from .durable import write_atomically
from .records import FileBaseline, QdrantBaseline, Records, ensure_state_collection

DEFAULT_STATE_DIR = ".qmspec/state"


class LockHeld(QmspecError):
    """The alias is locked by a process that may still run (on this host it is alive, elsewhere it cannot be told)."""

    def __init__(self, alias: str, holder: dict, way_out: str = ""):
        self.alias, self.holder = alias, holder
        super().__init__(f"another apply holds the lock on alias {alias!r}: {describe_holder(holder)}" + (f"; {way_out}" if way_out else ""))


def describe_holder(holder: dict) -> str:
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command', 'qmspec')}, since {holder.get('since')})"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class FileStateStore:
    """State files under `root/<target>/`: `<alias>.json` (the journal), `<alias>.lock`, and each apply's records
    (`<alias>.<plan>.baseline.sqlite`, `<alias>.<plan>.<vector>.npy`)."""

    root: Path
    kind = "file"
    _held: dict = field(default_factory=dict, repr=False)  # alias -> the open descriptor that holds its lock

    @classmethod
    def for_target(cls, target_key: str, base: str = DEFAULT_STATE_DIR, legacy_key: str | None = None) -> FileStateStore:
        """State of the Qdrant named `target_key`; journals an older qmspec kept under `legacy_key` are still found."""
        root, legacy = Path(base) / slug(target_key), Path(base) / slug(legacy_key or target_key)
        return cls(legacy if legacy.is_dir() and not root.is_dir() else root)

    def _journal(self, alias: str) -> Path:
        return self.root / f"{slug(alias)}.json"

    def _lock(self, alias: str) -> Path:
        return self.root / f"{slug(alias)}.lock"

    def read(self, alias: str) -> AliasRecord:
        path = self._journal(alias)
        if not path.exists():
            return AliasRecord(alias)
        try:
            return AliasRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, RecordError) as exc:
            raise QmspecError(f"state file {path} is unreadable ({exc}); restore it from a backup or move it away") from None

    def write(self, record: AliasRecord) -> None:
        write_atomically(self._journal(record.alias), json.dumps(record.to_dict(), indent=2) + "\n")

    def records(self, alias: str, plan_hash: str) -> Records:
        baseline = FileBaseline(self.root / f"{slug(alias)}.{plan_hash}.baseline.sqlite")
        return Records(alias, plan_hash, baseline, where=str(self.root), folder=self.root)

    def acquire(self, alias: str, command: str) -> dict | None:
        """Take the lock: an exclusive flock on `<alias>.lock`, held until release. The kernel drops it when its
        holder dies, however it dies, so taking over from a dead holder is the same atomic call as taking a free lock:
        two processes can never both hold it. Returns the holder a dead process left named in the file, if any."""
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._lock(alias), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for attempt in range(20):  # a reader holds a shared lock for an instant (lock_holder): try a few times
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 19 or _holder_in(descriptor):
                        raise LockHeld(alias, _holder_in(descriptor) or UNKNOWN_HOLDER) from None
                    time.sleep(0.01)
            left = _holder_in(descriptor)
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now(), "command": command}
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, json.dumps(holder).encode(), 0)
            os.fsync(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        self._held[alias] = descriptor
        return left

    def release(self, alias: str) -> None:
        """Clear the holder and drop the lock. The file stays: unlinking a locked path would let a second process lock
        a new file of the same name while a third still holds the old one."""
        descriptor = self._held.pop(alias, None)
        if descriptor is None:
            return
        try:
            os.ftruncate(descriptor, 0)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)  # closing releases the flock

    def break_lock(self, alias: str, holder: dict) -> None:
        """`qmspec unlock --force`: nothing to break where the lock is a flock: the kernel frees it with its holder."""
        if self.lock_holder(alias) is not None:
            raise QmspecError(f"the lock on {alias} is held by a running process ({describe_holder(holder)}); it is released "
                              "when that process ends: stop it (Ctrl-C or SIGTERM journal what it did)")

    def lock_holder(self, alias: str) -> dict | None:
        """Who holds the lock now: None when no process holds it (whatever a dead holder left in the file)."""
        try:
            descriptor = os.open(self._lock(alias), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder_in(descriptor) or UNKNOWN_HOLDER
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            return None
        finally:
            os.close(descriptor)


UNKNOWN_HOLDER = {"pid": None, "host": None, "since": "unknown", "command": "qmspec (starting or finishing)"}


def _holder_in(descriptor: int) -> dict | None:
    """The holder written in an open lock file, or None where it is empty."""
    size = os.fstat(descriptor).st_size
    text = os.pread(descriptor, size, 0).decode("utf-8", "replace") if size else ""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"pid": None, "host": None, "since": "unknown", "command": "unreadable lock file"}


def holder_is_dead(holder: dict) -> bool:
    """Proven dead: recorded on this host, and its process is gone. Elsewhere it cannot be told: assume alive."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class QdrantStateStore:
    """The journal, the lock and each apply's records kept in Qdrant itself, for CI runners that share no disk. One
    point per alias holds the journal; the lock is a fixed point created with insert_only, so of two applies racing
    for it exactly one insert lands, and each reads back whose it is."""

    kind = "qdrant"

    def __init__(self, client):
        from qdrant_client import models

        self.client, self.models = client, models
        self._tokens: dict = {}  # alias -> the token of the lock this process holds

    def _id(self, kind: str, alias: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qmspec:{kind}:{alias}"))

    def _payload(self, kind: str, alias: str) -> dict | None:
        if not self.client.collection_exists(STATE_COLLECTION):
            return None
        found = self.client.retrieve(STATE_COLLECTION, [self._id(kind, alias)], with_payload=True)
        return found[0].payload if found else None

    def records(self, alias: str, plan_hash: str) -> Records:
        return Records(alias, plan_hash, QdrantBaseline(self.client, alias, plan_hash), where=f"the {STATE_COLLECTION} collection",
                       client=self.client)

    def read(self, alias: str) -> AliasRecord:
        payload = self._payload("journal", alias)
        if payload is None:
            return AliasRecord(alias)
        return AliasRecord.from_dict(json.loads(payload["record"]))

    def write(self, record: AliasRecord) -> None:
        point = self.models.PointStruct(id=self._id("journal", record.alias), vector={},
                                        payload={"kind": "journal", "alias": record.alias, "record": json.dumps(record.to_dict())})
        ensure_state_collection(self.client)
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True)

    def acquire(self, alias: str, command: str) -> dict | None:
        """Insert the lock point insert-only: of two applies racing, one insert lands. A holder proven dead is taken
        over by compare-and-swap: the point is replaced only while it still names that holder's token, so of two
        processes taking over, one wins and the other reads back the winner."""
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now(), "command": command,
                  "token": uuid.uuid4().hex}
        point = self.models.PointStruct(id=self._id("lock", alias), vector={}, payload={"kind": "lock", "holder": holder})
        ensure_state_collection(self.client)
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True, update_mode=self.models.UpdateMode.INSERT_ONLY)
        current = self.lock_holder(alias) or {}
        if current.get("token") != holder["token"]:
            if not holder_is_dead(current):
                raise LockHeld(alias, current)
            self.client.upsert(STATE_COLLECTION, points=[point], wait=True, update_filter=self._naming(alias, current))
            winner = self.lock_holder(alias) or {}
            if winner.get("token") != holder["token"]:  # another process took it over first
                raise LockHeld(alias, winner)
        self._tokens[alias] = holder["token"]
        return current if current.get("token") != holder["token"] else None

    def _naming(self, alias: str, holder: dict):
        """A filter matching the lock point only while `holder` holds it (0.1.0's holders had no token)."""
        models = self.models
        token = holder.get("token")
        owner = (models.FieldCondition(key="holder.token", match=models.MatchValue(value=token)) if token
                 else models.IsEmptyCondition(is_empty=models.PayloadField(key="holder.token")))
        return models.Filter(must=[models.HasIdCondition(has_id=[self._id("lock", alias)]), owner])

    def release(self, alias: str) -> None:
        """Delete the lock point, only if this process still holds it."""
        token = self._tokens.pop(alias, None)
        if token is not None and self.client.collection_exists(STATE_COLLECTION):
            self.client.delete(STATE_COLLECTION, points_selector=self.models.FilterSelector(filter=self._naming(alias, {"token": token})),
                               wait=True)

    def break_lock(self, alias: str, holder: dict) -> None:
        """`qmspec unlock`: delete the lock of the holder the person saw, and nobody else's."""
        self.client.delete(STATE_COLLECTION, points_selector=self.models.FilterSelector(filter=self._naming(alias, holder)), wait=True)

    def lock_holder(self, alias: str) -> dict | None:
        payload = self._payload("lock", alias)
        return payload["holder"] if payload else None


@dataclass
class Journal:
    """The record of one alias, saved through `store` after every change."""

    store: FileStateStore | QdrantStateStore
    record: AliasRecord

    @classmethod
    def read(cls, store, alias: str) -> Journal:
        return cls(store, store.read(alias))

    @property
    def alias(self) -> str:
        return self.record.alias

    @property
    def active(self) -> ApplyRecord:
        return self.record.active

    def start(self, plan: Plan) -> None:
        self.record.active = ApplyRecord.begin(plan, now(), records=self.store.kind)
        self.save()

    def records(self) -> Records:
        """The active apply's baseline and learned maps, kept where this journal is."""
        return self.store.records(self.alias, self.active.plan_hash)

    def step(self, index: int) -> StepRecord:
        return self.active.steps[index]

    def save(self) -> None:
        self.store.write(self.record)

    def finish(self, status: str) -> None:
        self.record.close(status, now())
        self.save()


_fault_counts: dict[str, int] = {}


def fault_point(kind: str) -> None:
    """Fault injection for the crash tests: QMSPEC_FAULT="effect:3" kills this process with SIGKILL right after
    the third step's effect and before it is journaled; "checkpoint:2" right after the second batch checkpoint."""
    wanted = os.environ.get("QMSPEC_FAULT")
    if not wanted:
        return
    _fault_counts[kind] = _fault_counts.get(kind, 0) + 1
    if wanted == f"{kind}:{_fault_counts[kind]}":
        crash()


def crash() -> None:
    """Die as a power cut would: no handler runs, nothing is cleaned up (in-process tests replace it)."""
    os.kill(os.getpid(), signal.SIGKILL)
