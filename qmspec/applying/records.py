"""What one apply writes besides its journal, kept where the journal is: the baseline of the points it wrote and the
linear maps it learned. With `--state file` they lie in the state folder beside the journal; with `--state qdrant`
they are points of the state collection, so an apply begun on one CI runner resumes on another with nothing shared
but Qdrant.

The baseline is what tells, at a cutover, a change in the old collection (carry it over) from the application's own
write to the new one (keep it): for every point qmspec copied, a digest of the source point as it was read (its
payload and the vectors it carried) and the hash of the payload written. It is never held in memory: it is written a
page at a time, durably (SQLite with synchronous=FULL, or Qdrant with wait=True) before the copy's checkpoint moves,
and looked up a page of ids at a time, so memory stays flat at any collection size.

Older qmspec versions kept the baseline in `.qmspec/baselines/<alias>-<plan>.jsonl` and adapters in
`.qmspec/adapters/`, relative to the working directory: an apply begun there is read from there.
"""
from __future__ import annotations

import base64
import io
import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from ..errors import QmspecError
from ..logs import logger
from ..planning.record import STATE_COLLECTION, slug
from .durable import write_atomically

log = logger(__name__)

LEGACY_BASELINES = Path(".qmspec/baselines")  # qmspec 0.1.0, relative to the working directory
LEGACY_ADAPTERS = Path(".qmspec/adapters")
DIGEST_BYTES = 16  # of a sha256 hex digest: 128 bits, far from any collision at a billion points
ADAPTER_CHUNK = 1 << 20  # bytes of a learned matrix per state point: far below Qdrant's request limit


class RecordsMissing(QmspecError):
    """A resumed apply cannot find what it recorded: resuming without it would silently break a promise."""


class Written(NamedTuple):
    """What the baseline knows of one point: the source as qmspec read it, the payload as qmspec wrote it."""

    source: str  # digest of the source point's payload and carried vectors (hex, DIGEST_BYTES)
    payload: str  # hash of the payload written to the target (hex, DIGEST_BYTES)


class TextHash(NamedTuple):
    """What a vector's ledger knows of one point: the hash of the text its vector was embedded from."""

    text: str


def short(digest: str) -> str:
    return digest[: DIGEST_BYTES * 2]


class FileDigests:
    """Digests per point id in one SQLite file, one row per id (integers and UUID strings share the key column):
    durable at each commit (WAL, synchronous=FULL), looked up a page of ids at a time, never held in memory."""

    TABLE = ""
    VALUE: type = tuple  # a NamedTuple of hex digests: its fields are the columns

    def __init__(self, path: Path):
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        if getattr(self, "_db", None) is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the step's checkpoint moves past it
            columns = ", ".join(f"{name} BLOB NOT NULL" for name in self.VALUE._fields)
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (id PRIMARY KEY, {columns}) WITHOUT ROWID")
            self._db = db
        return self._db

    def __getstate__(self) -> dict:  # a worker process opens its own connection
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def bound(self, client) -> FileDigests:
        """The same records for a worker with its own client (files need none)."""
        return type(self)(self.path)

    def record(self, entries: Iterable[tuple[object, tuple]], first_only: bool = False) -> None:
        """Keep these entries durably. `first_only`: an id recorded before keeps its entry (a copy records what it is
        about to write; a resumed copy sending the page again must not replace what the first write was)."""
        rows = [(point_id, *(bytes.fromhex(short(digest)) for digest in value)) for point_id, value in entries]
        if not rows:
            return
        db = self._connect()
        with _transaction(db):
            marks = ", ".join("?" * (1 + len(self.VALUE._fields)))
            db.executemany(f"INSERT OR {'IGNORE' if first_only else 'REPLACE'} INTO {self.TABLE} VALUES ({marks})", rows)

    def lookup(self, ids: list) -> dict:
        if not ids or not self.path.exists():
            return {}
        db, found = self._connect(), {}
        for start in range(0, len(ids), 900):  # SQLite's limit on bound parameters
            chunk = ids[start:start + 900]
            query = f"SELECT * FROM {self.TABLE} WHERE id IN ({','.join('?' * len(chunk))})"
            found.update((point_id, self.VALUE(*(value.hex() for value in values))) for point_id, *values in db.execute(query, chunk))
        return found

    def forget(self, ids: list) -> None:
        if ids and self.path.exists():
            db = self._connect()
            with _transaction(db):
                db.executemany(f"DELETE FROM {self.TABLE} WHERE id = ?", [(point_id,) for point_id in ids])

    def count(self) -> int:
        return self._connect().execute(f"SELECT count(*) FROM {self.TABLE}").fetchone()[0] if self.path.exists() else 0

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
            self._db = None

    def discard(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class FileBaseline(FileDigests):
    TABLE, VALUE = "written", Written


class FileLedger(FileDigests):
    TABLE, VALUE = "ledger", TextHash


class _transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *rest):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class QdrantDigests:
    """Digests per point id as points of the state collection, one per id, addressed by a UUID derived from the
    records' scope and the id: written with wait=True beside the write they describe, looked up with one retrieve per
    page."""

    KIND = ""
    VALUE: type = tuple

    def __init__(self, client, scope: str):
        self.client, self.scope = client, scope

    def __getstate__(self) -> dict:  # a worker binds its own client
        return {"client": None, "scope": self.scope}

    def bound(self, client) -> QdrantDigests:
        bound = type(self).__new__(type(self))
        bound.client, bound.scope = client, self.scope
        return bound

    def _id(self, point_id) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qmspec:{self.KIND}:{self.scope}:{json.dumps(point_id)}"))

    @property
    def exists(self) -> bool:
        return self.count() > 0

    def record(self, entries: Iterable[tuple[object, tuple]], first_only: bool = False) -> None:
        from qdrant_client import models

        points = [models.PointStruct(id=self._id(point_id), vector={}, payload={
            "kind": self.KIND, "scope": self.scope, "id": point_id} | {name: short(digest) for name, digest in zip(self.VALUE._fields, value)})
            for point_id, value in entries]
        if points:
            ensure_state_collection(self.client)
            mode = {"update_mode": models.UpdateMode.INSERT_ONLY} if first_only else {}
            self.client.upsert(STATE_COLLECTION, points=points, wait=True, **mode)

    def lookup(self, ids: list) -> dict:
        if not ids or not self.client.collection_exists(STATE_COLLECTION):
            return {}
        found = self.client.retrieve(STATE_COLLECTION, [self._id(point_id) for point_id in ids], with_payload=True)
        return {point.payload["id"]: self.VALUE(*(point.payload[name] for name in self.VALUE._fields)) for point in found}

    def forget(self, ids: list) -> None:
        from qdrant_client import models

        if ids and self.client.collection_exists(STATE_COLLECTION):
            self.client.delete(STATE_COLLECTION, points_selector=models.PointIdsList(points=[self._id(i) for i in ids]), wait=True)

    def _mine(self):
        from qdrant_client import models

        return models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))
                                   for key, value in (("kind", self.KIND), ("scope", self.scope))])

    def count(self) -> int:
        if not self.client.collection_exists(STATE_COLLECTION):
            return 0
        return self.client.count(STATE_COLLECTION, count_filter=self._mine(), exact=True).count

    def close(self) -> None:
        pass

    def discard(self) -> None:
        from qdrant_client import models

        if self.client.collection_exists(STATE_COLLECTION):
            self.client.delete(STATE_COLLECTION, points_selector=models.FilterSelector(filter=self._mine()), wait=True)


class QdrantBaseline(QdrantDigests):
    KIND, VALUE = "baseline", Written

    def __init__(self, client, alias: str, plan_hash: str):
        super().__init__(client, f"{alias}:{plan_hash}")


class QdrantLedger(QdrantDigests):
    KIND, VALUE = "ledger", TextHash


def ensure_state_collection(client) -> None:
    """Created on the first write only: reading state must never create it (a read-only key, `qmspec plan`)."""
    if not client.collection_exists(STATE_COLLECTION):
        client.create_collection(STATE_COLLECTION, vectors_config={})


@dataclass
class Records:
    """The records of one apply (alias and plan): its baseline and its learned maps, in files or in Qdrant."""

    alias: str
    plan_hash: str
    baseline: FileBaseline | QdrantBaseline
    where: str  # said in messages: the folder, or the state collection
    folder: Path | None = None  # file records: where the adapters lie
    client: object = None  # Qdrant records: the client of the state collection

    def save_adapter(self, vector: str, matrix: np.ndarray) -> str:
        """Keep a learned map; returns where it went (for the journal's step result)."""
        buffer = io.BytesIO()
        np.save(buffer, matrix)
        if self.folder is not None:
            path = self.folder / f"{slug(self.alias)}.{self.plan_hash}.{vector}.npy"
            write_atomically(path, buffer.getvalue())
            return str(path)
        from qdrant_client import models

        data = buffer.getvalue()
        chunks = [data[start:start + ADAPTER_CHUNK] for start in range(0, len(data), ADAPTER_CHUNK)]
        ensure_state_collection(self.client)
        self.client.upsert(STATE_COLLECTION, wait=True, points=[models.PointStruct(
            id=self._adapter_id(vector, index), vector={}, payload={"kind": "adapter", "alias": self.alias, "plan": self.plan_hash,
                                                                    "vector": vector, "chunk": index, "chunks": len(chunks),
                                                                    "data": base64.b64encode(chunk).decode()})
            for index, chunk in enumerate(chunks)])
        return f"{STATE_COLLECTION} in Qdrant"

    def load_adapter(self, vector: str) -> np.ndarray | None:
        if self.folder is not None:
            for path in (self.folder / f"{slug(self.alias)}.{self.plan_hash}.{vector}.npy",
                         LEGACY_ADAPTERS / f"{self.alias}-{self.plan_hash}-{vector}.npy"):
                if path.exists():
                    return np.load(path)
            return None
        if not self.client.collection_exists(STATE_COLLECTION):
            return None
        first = self.client.retrieve(STATE_COLLECTION, [self._adapter_id(vector, 0)], with_payload=True)
        if not first:
            return None
        ids = [self._adapter_id(vector, index) for index in range(first[0].payload["chunks"])]
        chunks = sorted(self.client.retrieve(STATE_COLLECTION, ids, with_payload=True), key=lambda point: point.payload["chunk"])
        return np.load(io.BytesIO(b"".join(base64.b64decode(point.payload["data"]) for point in chunks)))

    def _adapter_id(self, vector: str, index: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qmspec:adapter:{self.alias}:{self.plan_hash}:{vector}:{index}"))

    def ledger(self, collection: str, vector: str) -> FileLedger | QdrantLedger:
        """The ledger of a vector backfilled in place: which text each point's vector was embedded from. It outlives the
        apply that began it (each apply until the application's query uses the vector catches up against it), so it is
        keyed by alias, collection and vector, not by plan."""
        if self.folder is not None:
            return FileLedger(self.folder / f"{slug(self.alias)}.{slug(collection)}.{slug(vector)}.ledger.sqlite")
        return QdrantLedger(self.client, f"{self.alias}:{collection}:{vector}")

    def adopt_legacy(self) -> bool:
        """Read a 0.1.0 baseline (`.qmspec/baselines/<alias>-<plan>.jsonl`, pages of [id, payload hash]) into this store,
        a page at a time; True where there was one. Then the old file is left as it was, for anyone to inspect."""
        path = LEGACY_BASELINES / f"{self.alias}-{self.plan_hash}.jsonl"
        if not path.exists():
            return False
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    pairs = json.loads(line)
                except json.JSONDecodeError:
                    raise RecordsMissing(f"{path}:{number}: a torn line in the baseline qmspec 0.1.0 wrote (a crash while it was "
                                         "written); delete that last line and run the same apply again") from None
                self.baseline.record((point_id, Written(digest, digest)) for point_id, digest in pairs)
        log.info(f"      read the baseline an earlier qmspec kept in {path}")
        return True

    def discard(self) -> None:
        """Once the apply is over (succeeded or rolled back): nothing reads these again."""
        self.baseline.discard()
        if self.folder is not None:
            for path in self.folder.glob(f"{slug(self.alias)}.{self.plan_hash}.*.npy"):
                path.unlink(missing_ok=True)
        elif self.client.collection_exists(STATE_COLLECTION):
            from qdrant_client import models

            self.client.delete(STATE_COLLECTION, wait=True, points_selector=models.FilterSelector(filter=models.Filter(must=[
                models.FieldCondition(key=key, match=models.MatchValue(value=value))
                for key, value in (("kind", "adapter"), ("alias", self.alias), ("plan", self.plan_hash))])))
