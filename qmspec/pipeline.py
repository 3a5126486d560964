"""Move points: scroll a collection page by page (resumable from an offset), read JSON Lines records
(resumable from a line), upload in batches with one or more streams, and hash payloads for parity checks."""
from __future__ import annotations

import hashlib
import json
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np
from qdrant_client import models

from .errors import QmspecError


class SourceFileError(QmspecError):
    pass


def scroll_pages(client, collection: str, page_size: int, offset=None, with_payload=True, with_vectors=False) -> Iterator[tuple[list, object]]:
    """Yield (points, next_offset). Local mode re-sorts all ids on every call, so pages should be large (1,000+)."""
    while True:
        points, next_offset = client.scroll(collection, limit=page_size, offset=offset, with_payload=with_payload,
                                            with_vectors=with_vectors)
        yield points, next_offset
        if next_offset is None or not points:
            return
        offset = next_offset


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def upload(client, collection: str, points: list, batch_size: int, streams: int, update_mode: str, embedded: bool) -> None:
    """Upsert `points` in batches of `batch_size` over `streams` parallel requests."""
    extra = {"update_mode": models.UpdateMode.INSERT_ONLY} if update_mode == "insert_only" else {}
    _send(lambda chunk: client.upsert(collection, points=chunk, wait=True, **extra), points, batch_size, streams, embedded)


def update_vectors(client, collection: str, vectors: list, batch_size: int, streams: int, embedded: bool) -> None:
    _send(lambda chunk: client.update_vectors(collection, points=chunk, wait=True), vectors, batch_size, streams, embedded)


def _send(send, items: list, batch_size: int, streams: int, embedded: bool) -> None:
    """The embedded store has a single writer, so it always gets one stream."""
    chunks = list(batches(items, batch_size))
    if embedded or streams <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            send(chunk)
        return
    with ThreadPoolExecutor(max_workers=streams) as pool:
        list(pool.map(send, chunks))


def carried_vectors(record_vector: dict | None, carry: dict, distances: dict, maps: dict | None = None) -> dict:
    """The vectors a copied point keeps: renamed; for Matryoshka truncated, or mapped through a learned linear map
    (`maps`: target vector -> matrix); then re-normalized where the distance wants unit vectors."""
    result = {}
    for target_name, how in carry.items():
        value = (record_vector or {}).get(how["from"])
        if value is None:
            continue
        if how.get("truncate_to") or how.get("adapter"):
            changed = np.asarray(value, dtype=np.float32)
            changed = changed[: how["truncate_to"]] if how.get("truncate_to") else changed @ maps[target_name]
            if distances.get(target_name) in ("Cosine", "Dot"):
                norm = float(np.linalg.norm(changed))
                changed = changed / norm if norm else changed
            value = changed.tolist()
        result[target_name] = value
    return result


def fit_linear_map(old: np.ndarray, new: np.ndarray, ridge: float = 0.01) -> np.ndarray:
    """Least squares W minimizing |old @ W - new|^2 + ridge |W|^2 (scaled by samples per dimension): maps stored
    vectors into the new model's space. The small ridge keeps it stable when samples barely outnumber dimensions."""
    x, y = old.astype(np.float64), new.astype(np.float64)
    penalty = ridge * len(x) / x.shape[1] * np.eye(x.shape[1])
    return np.linalg.solve(x.T @ x + penalty, x.T @ y).astype(np.float32)


def map_recall(mapped: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Recall@k of search over mapped vectors against search over the new model's own vectors: each held-out text's
    true vector queries both sets, and the share of the true top-k that the mapped top-k also returns is averaged.
    1.0 means the map loses nothing a search would notice."""
    def unit(rows):
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    truth, mapped = unit(truth), unit(mapped)
    k = min(k, len(truth) - 1)
    true_top = np.argsort(-(truth @ truth.T), axis=1)[:, 1:k + 1]  # the query itself ranks first in both
    mapped_top = np.argsort(-(truth @ mapped.T), axis=1)[:, :k + 1]
    hits = [len(set(t) & (set(m) - {i})) for i, (t, m) in enumerate(zip(true_top, mapped_top))]
    return float(np.mean(hits) / k)


def read_records(path: str, id_field: str, start_line: int = 0) -> Iterator[tuple[int, object, dict]]:
    """Yield (line number, point id, payload) from a JSON Lines file, starting after `start_line` lines."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if number <= start_line or not line.strip():
                continue
            yield number, *parse_record(path, number, line, id_field)


def parse_record(path: str, number: int, line: str, id_field: str) -> tuple[object, dict]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceFileError(f"{path}:{number}: not valid JSON ({exc.msg}); fix the record") from None
    if not isinstance(record, dict) or id_field not in record:
        raise SourceFileError(f"{path}:{number}: the record has no {id_field!r} field; add one or set source.id_field")
    return point_id(record.pop(id_field), path, number), record


def point_id(value, path: str, number: int):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise SourceFileError(f"{path}:{number}: id {value!r} is neither an unsigned integer nor a UUID; Qdrant accepts only those")


def check_source_files(paths: tuple[str, ...], id_field: str) -> int:
    """Read every record once before anything is written: a bad line fails the apply at its start, not halfway."""
    seen = set()
    for path in paths:
        try:
            for number, pid, _ in read_records(path, id_field):
                if pid in seen:
                    raise SourceFileError(f"{path}:{number}: id {pid!r} appears twice; ids must be unique across the source files")
                seen.add(pid)
        except OSError as exc:
            raise SourceFileError(f"cannot read {path}: {exc.strerror}") from None
    return len(seen)


def payload_hash(payload: dict | None) -> str:
    return hashlib.sha256(json.dumps(payload or {}, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- overlapping read, transform and write


_DONE = object()


def pipelined(pages: Iterator[tuple[list, object]], transform: Callable[[list], list], write: Callable[[list], None],
              checkpoint: Callable[[object, int], None], depth: int = 2) -> int:
    """Run `pages` (a generator of (items, position)) in a reader thread and `write` in a writer thread while this
    thread runs `transform` (the model), so the model never waits for I/O. Queues hold at most `depth` pages each
    side: memory stays flat however large the collection. `checkpoint(position, done)` follows each write, in
    order, so a recorded position never runs ahead of what was written. Returns the number of items written."""
    to_transform: queue.Queue = queue.Queue(maxsize=depth)
    to_write: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()
    written = [0]

    def read() -> None:
        try:
            for page in pages:
                if not _put(to_transform, page, stop):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failure.append(error)
        finally:
            _put(to_transform, _DONE, stop)

    def drain() -> None:
        try:
            while (item := to_write.get()) is not _DONE:
                rows, position = item
                if rows:
                    write(rows)
                written[0] += len(rows)
                checkpoint(position, written[0])
        except BaseException as error:  # noqa: BLE001
            failure.append(error)
            stop.set()
            while to_write.get() is not _DONE:  # keep the producer from blocking
                pass

    reader = threading.Thread(target=read, name="qmspec-read", daemon=True)
    writer = threading.Thread(target=drain, name="qmspec-write", daemon=True)
    reader.start()
    writer.start()
    try:
        while not failure and (page := to_transform.get()) is not _DONE:
            items, position = page
            to_write.put((transform(items) if items else [], position))
    except BaseException as error:  # noqa: BLE001
        failure.append(error)
    finally:
        stop.set()
        to_write.put(_DONE)
        writer.join()
        reader.join(timeout=60)
    if failure:
        raise failure[0]
    return written[0]


def _put(target: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class SerializedClient:
    """The embedded store is not made for concurrent calls: the reader and writer threads take turns through this
    wrapper (both overlap with the model, which is where the time goes)."""

    def __init__(self, client):
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class Progress:
    """Points done, points/s and ETA: a live line on a terminal, a plain line every `every_s` seconds otherwise (CI)."""

    def __init__(self, label: str, total: int | None, log: Callable[[str], None], stream=None, every_s: float = 10.0):
        self.label, self.total, self.log = label, total, log
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
            line += f", ETA {_duration((self.total - done) / rate)}"
        if self.live:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.stream.flush()
        else:
            self.log("      " + line)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
