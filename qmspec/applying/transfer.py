"""Move points: scroll a collection page by page (resumable from an offset), upload in batches over one or more
streams, hash payloads for parity checks, and overlap reading, embedding and writing."""
from __future__ import annotations

import functools
import hashlib
import json
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

from qdrant_client import models

from ..logs import logger
from ..planning.partitions import IdRange

log = logger(__name__)


def scroll_pages(client, collection: str, page_size: int, offset=None, with_payload=True, with_vectors=False) -> Iterator[tuple[list, object]]:
    """Yield (points, next_offset). Local mode re-sorts all ids on every call, so pages should be large (1,000+)."""
    while True:
        points, next_offset = client.scroll(collection, limit=page_size, offset=offset, with_payload=with_payload,
                                            with_vectors=with_vectors)
        yield points, next_offset
        if next_offset is None or not points:
            return
        offset = next_offset


def scroll_range(client, collection: str, ids: IdRange, page_size: int, offset=None, with_vectors=False, with_payload=True):
    """(points, offset of the next page or None) for the points of `ids`, from `offset` (default: the range's start)."""
    offset = ids.start if offset is None else offset
    while True:
        points, next_offset = client.scroll(collection, limit=page_size, offset=offset, with_payload=with_payload, with_vectors=with_vectors)
        inside = [point for point in points if not ids.past_end(point.id)]
        finished = next_offset is None or len(inside) < len(points) or ids.past_end(next_offset)
        yield inside, None if finished else next_offset
        if finished:
            return
        offset = next_offset


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def upload(client, collection: str, points: list, batch_size: int, streams: int, update_mode: str, embedded: bool) -> None:
    """Upsert `points` in batches of `batch_size` over `streams` parallel requests."""
    extra = {"update_mode": models.UpdateMode.INSERT_ONLY} if update_mode == "insert_only" else {}
    _send(lambda chunk: client.upsert(collection, points=chunk, wait=True, **extra), points, batch_size, streams, embedded)
    log.debug(f"      wrote {len(points)} points to {collection} ({update_mode}, batches of {batch_size})")


def update_vectors(client, collection: str, vectors: list, batch_size: int, streams: int, embedded: bool) -> None:
    _send(lambda chunk: client.update_vectors(collection, points=chunk, wait=True), vectors, batch_size, streams, embedded)
    log.debug(f"      updated the vectors of {len(vectors)} points in {collection} (batches of {batch_size})")


def _send(send, items: list, batch_size: int, streams: int, embedded: bool) -> None:
    """The embedded store has a single writer, so it always gets one stream."""
    chunks = list(batches(items, batch_size))
    if embedded or streams <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            send(chunk)
        return
    with ThreadPoolExecutor(max_workers=streams) as pool:
        list(pool.map(send, chunks))


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


class OnShardKey:
    """A client whose point reads and writes address one shard key of a custom-sharded collection, so a copy puts
    every point on the key it had (Qdrant's migration tool copies shard key by shard key the same way)."""

    KEYED = frozenset({"scroll", "count", "retrieve", "upsert", "update_vectors", "delete"})

    def __init__(self, client, key):
        self._client = client
        self._key = key

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name in self.KEYED:
            return functools.partial(attribute, shard_key_selector=self._key)
        return attribute
