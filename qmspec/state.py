"""The apply journal: which plan is being applied, each step's status and batch checkpoint, the alias target
before the swap, and a history of finished applies. Plus the lock that keeps two applies off one alias.

Written after every step and every checkpoint, atomically (write a temporary file, fsync, rename), so a
crash at any instant leaves either the previous record or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import QmspecError

STATE_FORMAT = 1
DEFAULT_STATE_DIR = ".qmspec/state"


class LockHeld(QmspecError):
    def __init__(self, alias: str, holder: dict, stale: bool):
        self.holder = holder
        self.stale = stale
        who = f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command', 'qmspec')}, since {holder.get('since')})"
        advice = ("that process is gone: release the stale lock with `qmspec unlock SPEC`" if stale
                  else "wait for it to finish; if it hangs, stop it, then `qmspec unlock SPEC`")
        super().__init__(f"another apply holds the lock on alias {alias!r}: {who}; {advice}")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "default"


@dataclass
class FileStateStore:
    """State files under `root/<target>/`: `<alias>.json` (the journal) and `<alias>.lock`."""

    root: Path

    @classmethod
    def for_target(cls, target_key: str, base: str = DEFAULT_STATE_DIR) -> FileStateStore:
        return cls(Path(base) / slug(target_key))

    def _journal(self, alias: str) -> Path:
        return self.root / f"{slug(alias)}.json"

    def _lock(self, alias: str) -> Path:
        return self.root / f"{slug(alias)}.lock"

    def read(self, alias: str) -> dict:
        path = self._journal(alias)
        if not path.exists():
            return {"format": STATE_FORMAT, "alias": alias, "active": None, "history": []}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise QmspecError(f"state file {path} is unreadable ({exc}); restore it from a backup or move it away") from None

    def write(self, alias: str, record: dict) -> None:
        write_atomically(self._journal(alias), json.dumps(record, indent=2) + "\n")

    def acquire(self, alias: str, command: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now(), "command": command}
        # Write the holder to a private file, then hard-link it into place: link() fails if the lock exists, and
        # a reader never sees a lock file without its holder in it.
        candidate = self.root / f".{slug(alias)}.lock.{os.getpid()}"
        write_atomically(candidate, json.dumps(holder))
        try:
            os.link(candidate, self._lock(alias))
        except FileExistsError:
            current = self.lock_holder(alias) or {}
            raise LockHeld(alias, current, stale=holder_is_dead(current)) from None
        finally:
            candidate.unlink(missing_ok=True)

    def release(self, alias: str) -> None:
        self._lock(alias).unlink(missing_ok=True)

    def lock_holder(self, alias: str) -> dict | None:
        try:
            return json.loads(self._lock(alias).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return {"pid": None, "host": None, "since": "unknown", "command": "unreadable lock file"}


def holder_is_dead(holder: dict) -> bool:
    """A lock is stale when its process is gone. Only provable on the same host; elsewhere assume alive."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return holder.get("pid") is None
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


STATE_COLLECTION = "qmspec_state"


class QdrantStateStore:
    """The journal and lock kept in Qdrant itself, for CI runners that share no disk. One point per alias holds
    the journal; the lock is a fixed point created with insert_only, so of two applies racing for it exactly
    one insert lands, and each reads back whose it is."""

    def __init__(self, client):
        from qdrant_client import models

        self.client, self.models = client, models
        if not client.collection_exists(STATE_COLLECTION):
            client.create_collection(STATE_COLLECTION, vectors_config={})

    def _id(self, kind: str, alias: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qmspec:{kind}:{alias}"))

    def _payload(self, kind: str, alias: str) -> dict | None:
        found = self.client.retrieve(STATE_COLLECTION, [self._id(kind, alias)], with_payload=True)
        return found[0].payload if found else None

    def read(self, alias: str) -> dict:
        payload = self._payload("journal", alias)
        if payload is None:
            return {"format": STATE_FORMAT, "alias": alias, "active": None, "history": []}
        return json.loads(payload["record"])

    def write(self, alias: str, record: dict) -> None:
        point = self.models.PointStruct(id=self._id("journal", alias), vector={},
                                        payload={"kind": "journal", "alias": alias, "record": json.dumps(record)})
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True)

    def acquire(self, alias: str, command: str) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": now(), "command": command,
                  "token": uuid.uuid4().hex}
        point = self.models.PointStruct(id=self._id("lock", alias), vector={}, payload={"kind": "lock", "holder": holder})
        self.client.upsert(STATE_COLLECTION, points=[point], wait=True, update_mode=self.models.UpdateMode.INSERT_ONLY)
        current = self.lock_holder(alias) or {}
        if current.get("token") != holder["token"]:
            raise LockHeld(alias, current, stale=holder_is_dead(current))

    def release(self, alias: str) -> None:
        self.client.delete(STATE_COLLECTION, points_selector=self.models.PointIdsList(points=[self._id("lock", alias)]), wait=True)

    def lock_holder(self, alias: str) -> dict | None:
        payload = self._payload("lock", alias)
        return payload["holder"] if payload else None
