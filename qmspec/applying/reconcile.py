"""Source, target and baseline side by side, a page at a time: what the catch-up carries over and what verify
compares. Nothing here holds more than a page, whatever the size of the collections.

Two passes over each id range (the partitions the copy journaled, or the whole collection): the source's pages, each
with the same ids retrieved from the target and looked up in the baseline; then the target's pages, each with the
same ids retrieved from the source, for the points only the target has. Retrieving by id instead of merging two
scrolls keeps the comparison independent of how a server orders ids across shards.

What the catch-up does with each point (S: the source point's digest now, P: its payload hash, T: the target's
payload hash, W: what the baseline recorded when qmspec wrote the point):
- source only: inserted (insert-only) unless W says qmspec wrote it before, then the application deleted it: kept deleted;
- S equals W's source digest: the source has not moved since the copy; nothing to do;
- T equals W's payload: the target is as qmspec left it and the source moved on: rewritten (re-embedded);
- T equals P: the application wrote the same change to both (dual writes): recorded as agreed;
- otherwise the application wrote this point in the target: kept;
- target only: removed if W says qmspec wrote it and the target is as qmspec left it (the source deleted it), else kept.
The digest covers the payload and the vectors the copy carries, so an edit of a carried vector alone is seen too.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
from qdrant_client import models

from ..logs import logger
from ..planning.partitions import IdRange
from .records import Written, short
from .transfer import payload_hash, scroll_range, upload

log = logger(__name__)


def point_digest(point, carried: list[str]) -> str:
    """The payload's hash, and where vectors are carried, of the payload and those vectors' float32 bytes (Qdrant
    stores float32: the bytes of what it returns are exact, and far cheaper to hash than their text)."""
    payload = payload_hash(point.payload)
    if not carried:
        return short(payload)
    digest = hashlib.sha256(payload.encode())
    for name in carried:
        digest.update(name.encode() + b"\0" + _vector_bytes((point.vector or {}).get(name)))
    return short(digest.hexdigest())


def _vector_bytes(vector) -> bytes:
    if vector is None:
        return b"none"
    if isinstance(vector, models.SparseVector):
        return np.asarray(vector.indices, dtype=np.int64).tobytes() + b"|" + np.asarray(vector.values, dtype=np.float32).tobytes()
    values = np.asarray(vector, dtype=np.float32)
    return str(values.shape).encode() + values.tobytes()  # a multivector's shape tells its token count


def written(point, carried: list[str]) -> Written:
    """What the baseline keeps of a source point qmspec copies as it is."""
    return Written(point_digest(point, carried), short(payload_hash(point.payload)))


class WrittenPage(list):
    """Target points made from a source page, with what the baseline keeps of each source point (recorded after the
    page is written)."""

    def __init__(self, rows: list, entries: list):
        super().__init__(rows)
        self.entries = entries


@dataclass
class Pair:
    source: object | None  # the source point (payload, carried vectors), or None: only the target has it
    target: object | None  # the target point (payload), or None: only the source has it
    recorded: Written | None  # what qmspec wrote, per the baseline


def _scroll(client, collection: str, ids: IdRange, page_size: int, with_payload, with_vectors):
    for page, _ in scroll_range(client, collection, ids, page_size, None, with_vectors, with_payload):
        if page:
            yield page


def pages(client, source: str, target: str, baseline, carried: list[str], page_size: int, ranges: list[IdRange],
          target_vectors: list[str] | None = None) -> Iterator[list[Pair]]:
    """Every point of source and target once, as pages of Pairs (see the module's docstring). `carried`: the source
    vectors read with each source point; `target_vectors`: those read with each target point."""
    for ids in ranges:
        for page in _scroll(client, source, ids, page_size, True, carried or False):
            point_ids = [point.id for point in page]
            theirs = {point.id: point for point in client.retrieve(target, point_ids, with_payload=True, with_vectors=target_vectors or False)}
            recorded = baseline.lookup(point_ids) if baseline is not None else {}
            yield [Pair(point, theirs.get(point.id), recorded.get(point.id)) for point in page]
        for page in _scroll(client, target, ids, page_size, True, False):
            present = {point.id for point in client.retrieve(source, [point.id for point in page], with_payload=False, with_vectors=False)}
            only_target = [point for point in page if point.id not in present]
            if only_target:
                recorded = baseline.lookup([point.id for point in only_target]) if baseline is not None else {}
                yield [Pair(None, point, recorded.get(point.id)) for point in only_target]


@dataclass
class CatchUpCounts:
    changed: int = 0
    added: int = 0
    removed: int = 0
    kept: int = 0

    def add(self, other: CatchUpCounts) -> None:
        for name in ("changed", "added", "removed", "kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {"changed": self.changed, "added": self.added, "removed": self.removed, "kept": self.kept}


def catch_up(client, source: str, target: str, baseline, known: bool, carried: list[str], to_points: Callable[[list], list],
             batch_size: int, embedded: bool, page_size: int, ranges: list[IdRange]) -> CatchUpCounts:
    """Carry into `target` what changed in `source` since qmspec wrote each point, keep what the application wrote to
    `target` itself. `known`: the apply recorded a baseline (False only for applies begun before baselines existed:
    then the source wins, as it did then)."""
    counts = CatchUpCounts()
    for page in pages(client, source, target, baseline if known else None, carried, page_size, ranges):
        rewrite, insert, agreed, remove = [], [], [], []
        for pair in page:
            action = _action(pair, known, carried)
            {"rewrite": rewrite, "insert": insert, "agreed": agreed, "remove": remove}.get(action, []).append(pair)
            counts.kept += action == "kept"
        if rewrite:
            upload(client, target, to_points([pair.source for pair in rewrite]), batch_size, 1, "upsert", embedded)
        if insert:
            upload(client, target, to_points([pair.source for pair in insert]), batch_size, 1, "insert_only", embedded)
        if remove:
            client.delete(target, points_selector=models.PointIdsList(points=[pair.target.id for pair in remove]), wait=True)
        if baseline is not None:
            baseline.record((pair.source.id, written(pair.source, carried)) for pair in (*rewrite, *insert, *agreed))
            baseline.forget([pair.target.id for pair in remove])
        counts.changed, counts.added, counts.removed = counts.changed + len(rewrite), counts.added + len(insert), counts.removed + len(remove)
        log.debug(f"      catch-up page: {len(rewrite)} rewritten, {len(insert)} added, {len(remove)} removed")
    return counts


def _action(pair: Pair, known: bool, carried: list[str]) -> str:
    recorded, theirs = pair.recorded, short(payload_hash(pair.target.payload)) if pair.target is not None else None
    if pair.source is None:
        return "remove" if not known or (recorded is not None and theirs == recorded.payload) else "kept"
    if pair.target is None:
        return "insert" if not known or recorded is None else "kept"
    source_payload = short(payload_hash(pair.source.payload))
    if not known:
        return "agreed" if theirs == source_payload and not carried else "rewrite"
    if recorded is not None and point_digest(pair.source, carried) == recorded.source:
        return "same"
    if recorded is not None and theirs == recorded.payload:
        return "rewrite"
    return "agreed" if theirs == source_payload else "kept"


@dataclass
class Parity:
    """Verify's view of the same pages: payloads that match, differ or are missing, and the application's own writes
    to the target (kept by the catch-up, so not counted against the source)."""

    compared: int = 0
    mismatched: list = field(default_factory=list)  # the first few ids that differ or are missing
    mismatches: int = 0
    application_inserted: int = 0
    application_changed: int = 0
    application_deleted: int = 0
    vectors_compared: int = 0  # carried vectors checked against their source
    vectors_mismatched: list = field(default_factory=list)
    vector_mismatches: int = 0

    def describe_application(self) -> str:
        found = [f"{count} {what}" for what, count in (("inserted", self.application_inserted), ("changed", self.application_changed),
                                                       ("deleted", self.application_deleted)) if count]
        return f"; {', '.join(found)} by the application in the target, kept and not compared" if found else ""

    def differs(self, point_id) -> None:
        self.mismatches += 1
        if len(self.mismatched) < 5:
            self.mismatched.append(point_id)


def parity(pairs: Iterator[list[Pair]], known: bool, sampled: Callable[[object], bool] = lambda point_id: True,
           carried_match: Callable[[Pair], bool] | None = None) -> Parity:
    """Payload parity of every pair (those `sampled` says), telling the application's writes apart where the
    baseline is known; with `carried_match`, whether each compared point's carried vectors are its source's."""
    result = Parity()
    for page in pairs:
        for pair in page:
            theirs = short(payload_hash(pair.target.payload)) if pair.target is not None else None
            ours = pair.recorded
            if pair.source is None:
                if known and (ours is None or theirs != ours.payload):
                    result.application_inserted += 1
                elif sampled(pair.target.id):
                    result.compared += 1
                    result.differs(pair.target.id)  # qmspec wrote it and the source no longer has it: the catch-up missed it
                continue
            if pair.target is None:
                if known and ours is not None:
                    result.application_deleted += 1
                elif sampled(pair.source.id):
                    result.compared += 1
                    result.differs(pair.source.id)
                continue
            if theirs != short(payload_hash(pair.source.payload)) and known and (ours is None or theirs != ours.payload):
                result.application_changed += 1
                continue
            if sampled(pair.source.id):
                result.compared += 1
                if theirs != short(payload_hash(pair.source.payload)):
                    result.differs(pair.source.id)
                if carried_match is not None:
                    result.vectors_compared += 1
                    if not carried_match(pair):
                        result.vector_mismatches += 1
                        if len(result.vectors_mismatched) < 5:
                            result.vectors_mismatched.append(pair.source.id)
    return result
