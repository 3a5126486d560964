"""A copy or a backfill split into id-range partitions, each journaled on its own, run by an engine (engines.py).

The ranges are cut at a sample of ids when the step first runs, and journaled, so a resumed apply works on the same
ranges and only on those not done. Each partition records its status, where it stands (the scroll offset), the
points it wrote and a digest of their payload hashes (a sum, so any order of pages gives the same digest).

Against a server, each worker runs whole partitions itself: it opens its own client, scrolls its range, embeds
and writes insert-only, and returns what it wrote. A worker that dies loses only its partition's progress, which is
redone (insert-only: nothing duplicated). The embedded store admits one client, so there the driver reads and writes
and the workers only embed, each page split between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from qdrant_client import models

from ..embed import get_embedder
from ..embed.vectors import carried_vectors
from ..planning.partitions import IdRange, id_ranges
from ..planning.plan import Carry, Embedding
from ..project import Target
from ..logs import logger
from .in_place import FilledPage, VectorFill
from .points import embed_into, embed_points
from .reconcile import WrittenPage, written
from .search import sample_ids
from .transfer import payload_hash, pipelined, scroll_range, update_vectors, upload

log = logger(__name__)

DIGEST_MODULUS = 2 ** 64


def digest(points: list, start: str = "0") -> str:
    """The partition's payload digest, extended by `points`: a sum of hash prefixes, independent of order."""
    total = int(start, 16)
    for point in points:
        total = (total + int(payload_hash(point.payload)[:16], 16)) % DIGEST_MODULUS
    return format(total, "x")


@dataclass(frozen=True)
class PointMaker:
    """Source points -> target points: stored vectors carried, new ones embedded. Picklable, so a worker process or a
    Ray task makes points exactly as the driver would (each loads its models once)."""

    carry: dict[str, Carry]
    embed: dict[str, Embedding]
    distances: dict
    maps: dict  # vector -> learned matrix (numpy)

    def __call__(self, page: list) -> list:
        return embed_into([models.PointStruct(id=p.id, vector=carried_vectors(p.vector, self.carry, self.distances, self.maps),
                                              payload=p.payload or {}) for p in page], self.embed)


def run_maker(job: tuple) -> list:
    """(a PointMaker or VectorMaker, points) -> what it makes of them: the function workers run."""
    make, page = job
    return make(page)


@dataclass(frozen=True)
class PartitionJob:
    """One partition, copied by a worker that talks to the server itself."""

    index: int
    ids: IdRange
    offset: object  # where its scroll starts: the range's start (a partition is redone whole)
    target: Target
    source: str
    collection: str
    maker: PointMaker
    carried: list  # the source vectors it reads because it carries them
    scroll_page: int
    batch_size: int
    parallel: int
    update_mode: str
    baseline: object  # the apply's baseline, which this worker records into with its own connection


def copy_partition(job: PartitionJob) -> dict:
    """Copy one partition: record each page in the baseline, then write it (as steps._recording does), so the
    driver holds nothing per point."""
    from ..connect import open_client  # in the worker: its own client, its own connections

    copied, summed = 0, "0"
    with open_client(job.target) as client:
        baseline = job.baseline.bound(client)
        try:
            for page, _ in scroll_range(client, job.source, job.ids, job.scroll_page, job.offset, job.carried or False):
                rows = job.maker(page)
                baseline.record([(point.id, written(point, job.carried)) for point in page], first_only=True)
                upload(client, job.collection, rows, job.batch_size, job.parallel, job.update_mode, False)
                copied, summed = copied + len(rows), digest(rows, summed)
        finally:
            baseline.close()
    return {"index": job.index, "copied": copied, "digest": summed}


class Partitions:
    """The journaled partitions of one step: cut at a sample of ids the first time, read back on resume."""

    def __init__(self, run, collection: str, count: int, progress):
        self.run, self.progress = run, progress
        self.position = run.checkpoint() or {}
        if "partitions" not in self.position:
            ranges = id_ranges(sample_ids(run.client, collection), max(count, run.engine.workers))
            self.position = {"partitions": [{"start": r.start, "end": r.end, "status": "pending", "offset": r.start, "copied": 0,
                                             "digest": "0"} for r in ranges], "copied": 0, "done": False}
            run.save_checkpoint(self.position)
        self.all = self.position["partitions"]
        log.info(f"      {len(self.all)} partition(s) on {run.engine.name}; {sum(p['status'] == 'done' for p in self.all)} done before")

    @property
    def pending(self) -> list:
        return [(index, part) for index, part in enumerate(self.all) if part["status"] != "done"]

    @property
    def points(self) -> int:
        return sum(part["copied"] for part in self.all)

    def save(self) -> None:
        self.position["copied"] = self.points
        self.position["done"] = all(part["status"] == "done" for part in self.all)
        self.run.save_checkpoint(self.position)
        self.progress.update(self.position["copied"])

    def drive(self, collection: str, page_size: int, with_vectors, with_payload, make: Callable[[list], list],
              write: Callable[[list], None], digested: bool, record: Callable[[list], list] | None = None) -> None:
        """The embedded store's loop: this process reads and writes, the engine's workers run `make` on slices of each
        page; reading the next page and writing the last overlap with it (transfer.pipelined). One stream over every
        pending partition, so the pipeline does not drain between them. `record`: a source page -> its baseline
        entries, recorded after each write."""
        engine = self.run.engine

        def made(page: list) -> list:
            chunks = [page[start::engine.workers] for start in range(engine.workers)] if engine.workers > 1 else [page]
            parts = engine.map(run_maker, [(make, chunk) for chunk in chunks if chunk])
            if parts and isinstance(parts[0], FilledPage):  # an in-place fill: the texts travel with the vectors
                return FilledPage([row for part in parts for row in part.rows], [text for part in parts for text in part.texts])
            rows = [row for rows in parts for row in rows]
            return rows if record is None else WrittenPage(rows, record(page))

        def pages():
            for index, part in self.pending:
                part["status"] = "running"
                ranged = scroll_range(self.run.client, collection, IdRange(part["start"], part["end"]), page_size, part["offset"],
                                      with_vectors, with_payload)
                for page, next_offset in ranged:
                    yield page, (index, next_offset)

        last_write: list = []  # the rows of the write the next checkpoint records (the writer thread runs both in turn)

        def write_and_keep(rows: list) -> None:
            if isinstance(rows, WrittenPage):  # recorded first, as a copy without partitions does (steps._recording)
                self.run.records.baseline.record(rows.entries, first_only=True)
            write(rows)
            last_write[:] = rows.rows if isinstance(rows, FilledPage) else rows

        def checkpoint(where, done: int) -> None:
            index, next_offset = where
            part = self.all[index]
            part.update(offset=next_offset, copied=part["copied"] + len(last_write), status="running" if next_offset is not None else "done",
                        digest=digest(last_write, part["digest"]) if digested else part["digest"])
            last_write.clear()
            self.save()

        pipelined(pages(), made, write_and_keep, checkpoint)

    def dispatch(self, work: Callable, job: Callable[[int, IdRange], object], record: Callable[[dict], None]) -> None:
        """A server's loop: each pending partition is one job a worker runs whole, against the server itself; a partition
        begun before is redone from its start (its writes are idempotent)."""
        pending = self.pending
        for _, part in pending:
            part.update(status="running", copied=0, digest="0", offset=part["start"])
        self.save()
        for result in self.run.engine.run(work, [job(index, IdRange(part["start"], part["end"])) for index, part in pending]):
            record(result)
            self.all[result["index"]].update(status="done", copied=result["copied"], digest=result["digest"], offset=None)
            self.save()


def copy_partitioned(step, run, maker: PointMaker, carried: list, write: Callable[[list], None], progress) -> int:
    """Copy `step` in partitions; returns the points copied. `write` is the driver's write to the target (the embedded
    store); what was written is recorded in the apply's baseline."""
    partitions = Partitions(run, step.source, step.partitions, progress)
    if run.embedded:
        partitions.drive(step.source, step.scroll_page, carried or False, True, maker, write, digested=True,
                         record=lambda page: [(point.id, written(point, carried)) for point in page])
    else:
        partitions.dispatch(copy_partition, lambda index, ids: PartitionJob(
            index, ids, ids.start, run.target, step.source, step.target, maker, carried, step.scroll_page, step.batch_size,
            step.parallel, step.update_mode, run.records.baseline), lambda result: None)
    return partitions.points


@dataclass(frozen=True)
class VectorMaker:
    """Records of the collection -> the vector `vector` embedded from their text: a backfill's unit of work."""

    vector: str
    model: dict
    text_field: str
    sparse: bool

    def __call__(self, page: list) -> list:
        return embed_points(get_embedder(self.model), page, self.vector, self.text_field, self.sparse)


@dataclass(frozen=True)
class BackfillJob:
    index: int
    ids: IdRange
    target: Target
    collection: str
    maker: VectorMaker | VectorFill
    page_size: int
    batch_size: int
    parallel: int
    ledger: object = None  # an in-place fill (maker is a VectorFill): the vector's ledger, bound to the worker's client


def backfill_partition(job: BackfillJob) -> dict:
    from ..connect import open_client

    filled = 0
    selector = models.PayloadSelectorInclude(include=[job.maker.text_field])
    with open_client(job.target) as client:
        ledger = job.ledger.bound(client) if job.ledger is not None else None
        try:
            for page, _ in scroll_range(client, job.collection, job.ids, job.page_size, None, False, selector):
                rows = job.maker(page)
                if ledger is not None:
                    job.maker.write(client, rows, ledger)
                else:
                    update_vectors(client, job.collection, rows, job.batch_size, job.parallel, False)
                filled += len(rows)
        finally:
            if ledger is not None:
                ledger.close()
    return {"index": job.index, "copied": filled, "digest": "0"}


def backfill_partitioned(step, run, page_size: int, write: Callable[[list], None], progress, fill: VectorFill | None = None,
                         ledger=None) -> int:
    """Fill one vector of an existing collection in partitions; returns the points filled. `fill` and `ledger`: an
    in-place backfill, its writes conditional and ledgered (in_place.py)."""
    maker = fill or VectorMaker(step.vector, step.model, step.text_field, step.sparse)
    partitions = Partitions(run, step.collection, step.partitions, progress)
    if run.embedded:
        partitions.drive(step.collection, page_size, False, models.PayloadSelectorInclude(include=[step.text_field]), maker, write,
                         digested=False)
    else:
        partitions.dispatch(backfill_partition, lambda index, ids: BackfillJob(
            index, ids, run.target, step.collection, maker, page_size, step.batch_size, step.parallel, ledger), lambda result: None)
    return partitions.points
