"""A copy split into id-range partitions, each journaled on its own, run by an engine (engines.py).

The ranges are cut at a sample of ids when the step first runs, and journaled, so a resumed apply works on the same
ranges and only on those not done. Each partition records its status, where it stands (the scroll offset), the
points it wrote and a digest of their payload hashes (a sum, so any order of pages gives the same digest).

Against a server, each worker copies whole partitions itself: it opens its own client, scrolls its range, embeds
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
from ..project import Target
from .points import embed_points
from .search import sample_ids
from .transfer import payload_hash, pipelined, upload

DIGEST_MODULUS = 2 ** 64


def scroll_range(client, collection: str, ids: IdRange, page_size: int, offset=None, with_vectors=False):
    """(points, offset of the next page or None) for the points of `ids`, from `offset` (default: the range's start)."""
    offset = ids.start if offset is None else offset
    while True:
        points, next_offset = client.scroll(collection, limit=page_size, offset=offset, with_payload=True, with_vectors=with_vectors)
        inside = [point for point in points if not ids.past_end(point.id)]
        finished = next_offset is None or len(inside) < len(points) or ids.past_end(next_offset)
        yield inside, None if finished else next_offset
        if finished:
            return
        offset = next_offset


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

    carry: dict
    embed: dict
    distances: dict
    maps: dict  # vector -> learned matrix (numpy)

    def __call__(self, page: list) -> list:
        points = [models.PointStruct(id=p.id, vector=carried_vectors(p.vector, self.carry, self.distances, self.maps), payload=p.payload or {})
                  for p in page]
        for vector, args in self.embed.items():
            computed = embed_points(get_embedder(args["model"]), points, vector, args["text_field"], args["sparse"])
            for point, value in zip(points, computed):
                point.vector[vector] = value.vector[vector]
        return points


def make_points(job: tuple) -> list:
    maker, page = job
    return maker(page)


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
    with_vectors: object
    scroll_page: int
    batch_size: int
    parallel: int
    update_mode: str


def copy_partition(job: PartitionJob) -> dict:
    from ..connect import open_client  # in the worker: its own client, its own connections

    copied, summed, hashes = 0, "0", []
    with open_client(job.target) as client:
        for page, _ in scroll_range(client, job.source, job.ids, job.scroll_page, job.offset, job.with_vectors):
            rows = job.maker(page)
            upload(client, job.collection, rows, job.batch_size, job.parallel, job.update_mode, False)
            copied, summed = copied + len(rows), digest(rows, summed)
            hashes += [(row.id, payload_hash(row.payload)) for row in rows]
    return {"index": job.index, "copied": copied, "digest": summed, "hashes": hashes}


def copy_partitioned(step, run, maker: PointMaker, with_vectors, write: Callable[[list], None], baseline, progress) -> int:
    """Copy `step` in partitions; returns the points copied. `write` is the driver's write to the target (the
    embedded store), `baseline` records what qmspec wrote."""
    engine = run.engine
    position = run.checkpoint() or {}
    if "partitions" not in position:
        count = max(step.partitions, engine.workers)
        ranges = id_ranges(sample_ids(run.client, step.source), count)
        position = {"partitions": [{"start": r.start, "end": r.end, "status": "pending", "offset": r.start, "copied": 0, "digest": "0"}
                                   for r in ranges], "copied": 0, "done": False}
        run.save_checkpoint(position)
    partitions = position["partitions"]
    run.log(f"      {len(partitions)} partition(s) on {engine.name}; "
            f"{sum(p['status'] == 'done' for p in partitions)} done before")

    def save() -> None:
        position["copied"] = sum(p["copied"] for p in partitions)
        position["done"] = all(p["status"] == "done" for p in partitions)
        run.save_checkpoint(position)
        progress.update(position["copied"])

    pending = [(index, part) for index, part in enumerate(partitions) if part["status"] != "done"]
    if run.embedded:
        # one client: the driver reads and writes, the workers embed slices of each page; reading the next page and
        # writing the last overlap with the embedding (transfer.pipelined), as in an unpartitioned copy
        def make(page: list) -> list:
            chunks = [page[start::engine.workers] for start in range(engine.workers)] if engine.workers > 1 else [page]
            return [row for made in engine.map(make_points, [(maker, chunk) for chunk in chunks if chunk]) for row in made]

        def pages():  # every pending partition's pages in one stream: the pipeline does not drain between partitions
            for index, part in pending:
                part["status"] = "running"
                ranged = scroll_range(run.client, step.source, IdRange(part["start"], part["end"]), step.scroll_page, part["offset"], with_vectors)
                for page, next_offset in ranged:
                    yield page, (index, next_offset)

        written: list = []  # the rows of the write the next checkpoint records (the writer thread runs both in turn)

        def write_and_record(rows: list) -> None:
            write(rows)
            baseline.record(rows)
            written[:] = rows

        def checkpoint(position, done: int) -> None:
            index, next_offset = position
            part = partitions[index]
            part.update(offset=next_offset, copied=part["copied"] + len(written), digest=digest(written, part["digest"]),
                        status="running" if next_offset is not None else "done")
            written.clear()
            save()

        pipelined(pages(), make, write_and_record, checkpoint)
    else:
        jobs = [PartitionJob(index, IdRange(part["start"], part["end"]), part["start"], run.target,
                             step.source, step.target, maker, with_vectors, step.scroll_page, step.batch_size, step.parallel, step.update_mode)
                for index, part in pending]
        for index, part in pending:
            part.update(status="running", copied=0, digest="0")  # a partition begun before is redone whole
        save()
        for result in engine.run(copy_partition, jobs):
            baseline.record_hashes(result["hashes"])
            partitions[result["index"]].update(status="done", copied=result["copied"], digest=result["digest"], offset=None)
            save()
    return sum(p["copied"] for p in partitions)
