"""Move points: scroll a collection page by page (resumable from an offset), read JSON Lines records
(resumable from a line), upload in batches with one or more streams, and hash payloads for parity checks."""
from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

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


def carried_vectors(record_vector: dict | None, carry: dict, distances: dict) -> dict:
    """The vectors a copied point keeps: renamed, and for Matryoshka truncated then re-normalized."""
    result = {}
    for target_name, how in carry.items():
        value = (record_vector or {}).get(how["from"])
        if value is None:
            continue
        if how.get("truncate_to"):
            truncated = np.asarray(value, dtype=np.float32)[: how["truncate_to"]]
            if distances.get(target_name) in ("Cosine", "Dot"):
                norm = float(np.linalg.norm(truncated))
                truncated = truncated / norm if norm else truncated
            value = truncated.tolist()
        result[target_name] = value
    return result


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
