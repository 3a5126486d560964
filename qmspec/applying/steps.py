"""One idempotent executor per step type, registered in the `execute` table (alembic's `implementation_for`).

Each looks at what Qdrant already has before it acts, and records batch progress through `run.save_checkpoint`
only after the batch was written, so a resumed step re-sends at most the batches in flight.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from qdrant_client import models

from ..embed import get_embedder, is_loaded
from ..embed.vectors import fit_linear_map, map_recall
from ..errors import QmspecError
from ..logs import event, logger
from ..planning.modelfacts import model_needs
from ..planning.partitions import IdRange
from ..planning.plan import (BackfillVector, CatchUp, CatchUpVector, CopyPoints, CreateCollection, CreateShardKeys, CreateVector,
                             DeleteCollection, DeleteVector, EmbedVectors, LearnAdapter, LoadFiles, Plan, RestoreIndexing, SetPayloadIndex,
                             StepTable, SwapAlias, SwitchQuery, UpdateCollection, Verify)
from ..project import Target
from ..sourcefiles import read_records
from . import in_place, qdrant_ops
from .engines import InlineEngine
from .journal import Journal, fault_point, now
from .partitioned import PointMaker, backfill_partitioned, copy_partitioned
from .points import embed_into, embed_points
from .progress import Progress, phase
from .reconcile import CatchUpCounts, WrittenPage, catch_up, written
from .records import Records
from .transfer import OnShardKey, pipelined, scroll_pages, update_vectors, upload
from .verify import CarriedVectors, Ledgered, VerificationFailed, verify

DEFAULT_SCROLL_PAGE = 1000

log = logger(__name__)
execute = StepTable("executor")


class ApplyError(QmspecError):
    """A step failed. The message names the step and how to resume or roll back."""


@dataclass
class Run:
    """What an executor gets besides its step: the client, the journal and where the step stands in it, and the
    apply's records (its baseline and learned maps)."""

    client: object
    embedded: bool
    journal: Journal
    index: int
    records: Records
    baseline_known: bool = True  # False only for an apply begun before qmspec kept baselines: the source wins
    resumed: bool = False  # this step began before and is run again
    engine: object = InlineEngine()  # where partitions run (engines.py)
    target: Target | None = None  # the Qdrant workers connect to themselves (a server)

    @property
    def plan(self) -> Plan:
        return self.journal.active.plan

    def checkpoint(self) -> dict | None:
        return self.journal.step(self.index).checkpoint

    def save_checkpoint(self, data: dict) -> None:
        self.journal.step(self.index).checkpoint = data
        self.journal.save()
        fault_point("checkpoint")


@execute.register(CreateCollection)
def create_collection(step: CreateCollection, run: Run) -> dict:
    if run.client.collection_exists(step.collection):
        names = qdrant_ops.vector_names(run.client, step.collection)
        if names != set(step.vectors) | set(step.sparse_vectors):
            raise ApplyError(f"collection {step.collection} exists with vectors {sorted(names)}, not the planned ones; "
                             "it was not created by this apply: choose another collection name")
        return {"created": False}
    qdrant_ops.create_collection(run.client, step.collection, step.vectors, step.sparse_vectors, step.settings,
                                 step.deferred_indexing, step.metadata)
    return {"created": True}


@execute.register(CreateShardKeys)
def create_shard_keys(step: CreateShardKeys, run: Run) -> dict:
    return {"created": qdrant_ops.create_shard_keys(run.client, step.collection, step.keys)}


@execute.register(SetPayloadIndex)
def set_payload_index(step: SetPayloadIndex, run: Run) -> dict:
    """Waits for the index to be built: a swap before that would serve filtered queries without it."""
    return {"changed": qdrant_ops.set_payload_index(run.client, step.collection, step.field, step.schema)}


@execute.register(LoadFiles)
def load_files(step: LoadFiles, run: Run) -> dict:
    position = run.checkpoint() or {"file": 0, "line": 0, "loaded": 0}
    per_page = step.batch_size * max(1, step.parallel)
    embed_new = _embedding_on_the_way(step.embed)
    progress = Progress(f"load {step.collection}", step.points)  # after the models loaded: rates exclude start-up

    def pages():
        for file_index, path in enumerate(step.files):
            if file_index < position["file"]:
                continue
            start = position["line"] if file_index == position["file"] else 0
            page = []
            for number, pid, payload in read_records(path, step.id_field, start_line=start):
                page.append(models.PointStruct(id=pid, vector={}, payload=payload))
                if len(page) >= per_page:
                    yield page, {"file": file_index, "line": number}
                    page = []
            yield page, {"file": file_index + 1, "line": 0}

    def checkpoint(where: dict, done: int) -> None:
        run.save_checkpoint(where | {"loaded": position["loaded"] + done})
        progress.update(position["loaded"] + done)

    loaded = pipelined(pages(), embed_new, _writer(run, step.collection, step), checkpoint)
    progress.update(position["loaded"] + loaded, final=True)
    return {"points": position["loaded"] + loaded}


def _writer(run: Run, collection: str, step) -> Callable[[list], None]:
    return lambda rows: upload(run.client, collection, rows, step.batch_size, step.parallel, step.update_mode, run.embedded)


@execute.register(LearnAdapter)
def learn_adapter(step: LearnAdapter, run: Run) -> dict:
    """Fit on `sample` texts, measure on a quarter more held out; the matrix is kept with the apply's records."""
    held_out = max(step.sample // 4, 10)
    points, _ = run.client.scroll(step.source, limit=step.sample + held_out, with_payload=models.PayloadSelectorInclude(
        include=[step.text_field]), with_vectors=[step.from_vector])
    points = [p for p in points if isinstance((p.payload or {}).get(step.text_field), str) and (p.vector or {}).get(step.from_vector)]
    if len(points) < 20:
        raise ApplyError(f"only {len(points)} points of {step.source} have text and {step.from_vector!r}: too few to learn a map")
    split = max(len(points) - held_out, len(points) * 3 // 4)
    old = np.asarray([p.vector[step.from_vector] for p in points], dtype=np.float32)
    new = np.asarray(get_embedder(step.model).embed([p.payload[step.text_field] for p in points]), dtype=np.float32)
    matrix = fit_linear_map(old[:split], new[:split])
    recall = map_recall(old[split:] @ matrix, new[split:])
    log.info(f"      learned on {split} texts; recall@10 on {len(points) - split} held-out texts: {recall:.2f} (min {step.min_recall})")
    if recall < step.min_recall:
        raise ApplyError(f"the learned map keeps recall@10 {recall:.2f}, below min_recall {step.min_recall}: "
                         "re-embed instead (remove `adapter`), or learn from a larger sample")
    kept = run.records.save_adapter(step.vector, matrix)
    return {"recall_at_10": recall, "trained_on": split, "held_out": len(points) - split, "matrix": kept}


def _learned_maps(run: Run, carry: dict) -> dict:
    """Matrices of the adapters this plan learned, from the apply's records."""
    maps = {}
    for vector, how in carry.items():
        if how.adapter:
            matrix = run.records.load_adapter(vector)
            if matrix is None:
                raise ApplyError(f"the linear map learned for {vector} is not in {run.records.where}: this apply began where its "
                                 "records are kept elsewhere (another working directory or --state-dir); resume it there, use "
                                 "--state qdrant so every runner shares them, or roll back and apply again to learn it anew")
            maps[vector] = matrix
    return maps


def carried_names(step: CopyPoints | CatchUp) -> list[str]:
    """The source vectors a copy reads because it carries them."""
    return sorted({how.source_vector for how in step.carry.values()})


def _carrying(run: Run, step: CopyPoints | CatchUp) -> PointMaker:
    """How a copy turns source points into target points: stored vectors carried, new ones embedded on the way."""
    _load_models(step.embed)
    return PointMaker(step.carry, step.embed, qdrant_ops.distances(run.client, step.target), _learned_maps(run, step.carry))


@execute.register(CopyPoints)
def copy_points(step: CopyPoints, run: Run) -> dict:
    """Scroll the source (vectors only where they are carried), insert-only into the target, checkpoint the offset
    after each page: a resumed copy re-sends at most the pages in flight, which insert-only mode makes harmless.
    With custom sharding, one shard key after the other, each point written to the key it had."""
    position = run.checkpoint() or {"offset": None, "copied": 0}
    if position.get("done"):
        return {"points": position["copied"]}
    to_points, carried = _carrying(run, step), carried_names(step)
    progress = Progress(f"copy {step.source} -> {step.target}", step.points)
    if (step.partitions > 1 or run.engine.workers > 1) and not step.shard_keys:
        copied = copy_partitioned(step, run, to_points, carried, _writer(run, step.target, step), progress)
        progress.update(copied, final=True)
        return {"points": copied}
    copied = position["copied"]
    for keyed, offset, checkpoint in _per_shard_key(run, step.shard_keys, position, "copied", progress):
        pages = scroll_pages(keyed.client, step.source, step.scroll_page, offset, True, carried or False)
        copied += pipelined(pages, _recorded(to_points, carried), _recording(run, _writer(keyed, step.target, step)), checkpoint)
    progress.update(copied, final=True)
    return {"points": copied}


def _per_shard_key(run: Run, keys: tuple, position: dict, counter: str, progress: Progress):
    """(run, offset to resume from, checkpoint) for each shard key left, the run's client addressing that key; one
    pass with the run itself where the collection has no custom sharding. The checkpoint records the key, the
    offset within it and the running count, and `done` once the last key is through."""
    keys = tuple(keys) or (None,)
    start = position.get("key", 0)
    before = position[counter]
    for index in range(start, len(keys)):
        keyed = run if keys[index] is None else dataclasses.replace(run, client=OnShardKey(run.client, keys[index]))

        def checkpoint(next_offset, done: int, index=index, base=before) -> None:
            finished = next_offset is None
            run.save_checkpoint({"key": index + finished, "offset": next_offset, counter: base + done,
                                 "done": finished and index == len(keys) - 1})
            progress.update(base + done)

        yield keyed, position.get("offset") if index == start else None, checkpoint
        before = run.checkpoint()[counter] if run.checkpoint() else before


def _recorded(to_points: Callable[[list], list], carried: list[str]) -> Callable[[list], WrittenPage]:
    """Source pages -> target points and their baseline entries, computed beside the model's work."""
    return lambda page: WrittenPage(to_points(page), [(point.id, written(point, carried)) for point in page])


def _recording(run: Run, write: Callable[[list], None]) -> Callable[[WrittenPage], None]:
    """Record a page in the baseline, then write it (insert-only). The record comes first and a point's first record
    stays: after a crash anywhere in between, the resumed copy sends the page again (the checkpoint follows the
    write), insert-only leaves what landed the first time, and the baseline still says what that was, so a source
    edit made meanwhile is carried over by the catch-up instead of being taken for the application's."""
    def record_and_write(rows: WrittenPage) -> None:
        run.records.baseline.record(rows.entries, first_only=True)
        fault_point("recorded")
        write(rows)
        fault_point("written")

    return record_and_write


def _embedding_on_the_way(embed: dict) -> Callable[[list], list]:
    """Fill each point's new vectors from its payload text before it is written: one write per point."""
    _load_models(embed)
    return lambda points: embed_into(points, embed)


def _load_models(embed: dict) -> None:
    """Load the models a step embeds with before its first page arrives, saying so."""
    for how in embed.values():
        _loaded(how.model)


def _loaded(model: dict):
    if is_loaded(model):
        return get_embedder(model)
    with phase(f"loading {model['name']} ({model.get('backend')})"):  # the first use in this process loads the weights
        return get_embedder(model)


@execute.register(EmbedVectors)
def embed_vectors(step: EmbedVectors, run: Run) -> dict:
    """Read texts from the target's payloads page by page, embed, write with update_vectors (idempotent). Reading
    the next page and writing the last one overlap with the model."""
    embedder = _loaded(step.model)
    position = run.checkpoint() or {"offset": None, "embedded": 0}
    if position.get("done"):
        return {"points": position["embedded"]}
    page_size = max(_scroll_page(run.plan), step.batch_size)
    selector = models.PayloadSelectorInclude(include=[step.text_field])
    progress = Progress(f"embed {step.vector}", step.points)
    if (step.partitions > 1 or run.engine.workers > 1) and not step.shard_keys:
        filled = backfill_partitioned(step, run, page_size, lambda rows: update_vectors(
            run.client, step.collection, rows, step.batch_size, step.parallel, run.embedded), progress)
        progress.update(filled, final=True)
        return {"points": filled}
    embedded = position["embedded"]
    for keyed, offset, checkpoint in _per_shard_key(run, step.shard_keys, position, "embedded", progress):
        def write(vectors: list, client=keyed.client) -> None:
            update_vectors(client, step.collection, vectors, step.batch_size, step.parallel, run.embedded)

        pages = scroll_pages(keyed.client, step.collection, page_size, offset, selector, False)
        embedded += pipelined(pages, lambda page: embed_points(embedder, page, step.vector, step.text_field, step.sparse), write, checkpoint)
    progress.update(embedded, final=True)
    return {"points": embedded}


def _scroll_page(plan: Plan) -> int:
    """Embedding pages follow the plan's scroll page (local mode re-sorts every id per scroll call: pages of 1,000+)."""
    return next((s.scroll_page for s in plan.steps if isinstance(s, (CopyPoints, CatchUp, CatchUpVector))), DEFAULT_SCROLL_PAGE)


@execute.register(CatchUp)
def catch_up_step(step: CatchUp, run: Run) -> dict:
    return reconcile(step, run)


def reconcile(step: CatchUp, run: Run) -> dict:
    """Carry into the target every change made in the source since qmspec wrote each point (edits, inserts, deletes,
    of payloads and of carried vectors), re-embedding what it rewrites, and leave every point the application changed
    in the target itself as it is (reconcile.py). Streamed a page at a time over the copy's partitions, or with custom
    sharding shard key by shard key (a point that moved to another key is deleted from the old one and added to the
    new)."""
    if not run.baseline_known:
        log.info("      note: no record of what this apply copied (begun by an older qmspec): the source wins")
    to_points, carried = _carrying(run, step), carried_names(step)
    counts = CatchUpCounts()
    for key in step.shard_keys or (None,):
        client = run.client if key is None else OnShardKey(run.client, key)
        counts.add(catch_up(client, step.source, step.target, run.records.baseline, run.baseline_known, carried, to_points,
                            step.batch_size, run.embedded, step.scroll_page, copy_ranges(run)))
    return counts.as_dict()


def _carried_check(run: Run) -> CarriedVectors | None:
    """What verify checks of the vectors the plan's copy carried, with the maps it learned."""
    copy = next((step for step in run.plan.steps if isinstance(step, CatchUp)), None)
    if copy is None or not copy.carry:
        return None
    return CarriedVectors(copy.carry, qdrant_ops.distances(run.client, copy.target), _learned_maps(run, copy.carry))


def copy_ranges(run: Run) -> list[IdRange]:
    """The id ranges the copy journaled as partitions (comparisons run range by range), else the whole collection."""
    for index, step in enumerate(run.plan.steps):
        if isinstance(step, CopyPoints):
            parts = (run.journal.step(index).checkpoint or {}).get("partitions")
            if parts:
                return [IdRange(part["start"], part["end"]) for part in parts]
    return [IdRange(None, None)]


@execute.register(CreateVector)
def create_vector(step: CreateVector, run: Run) -> dict:
    if step.vector in qdrant_ops.vector_names(run.client, step.collection):
        return {"created": bool((run.checkpoint() or {}).get("creating"))}  # by this step before a crash, or there already
    run.save_checkpoint({"creating": True})
    qdrant_ops.create_vector(run.client, step.collection, step.vector, step.sparse, step.config)
    return {"created": True}


def _fill(run: Run, step: BackfillVector | CatchUpVector) -> in_place.VectorFill:
    return in_place.fill_for(run.client, step.collection, step.vector, step.model, step.text_field, step.sparse, step.batch_size)


@execute.register(BackfillVector)
def backfill_vector(step: BackfillVector, run: Run) -> dict:
    """Fill a vector added in place from the points' texts, page by page from the journaled offset (or in partitions),
    each write conditional on the text it was embedded from and ledgered (in_place.py)."""
    _loaded(step.model)
    position = run.checkpoint() or {"offset": None, "embedded": 0}
    if position.get("done"):
        return {"points": position["embedded"]}
    fill, ledger = _fill(run, step), run.records.ledger(step.collection, step.vector)
    page_size = max(_scroll_page(run.plan), step.batch_size)
    progress = Progress(f"backfill {step.vector}", step.points)
    try:
        if (step.partitions > 1 or run.engine.workers > 1) and not step.shard_keys:
            filled = backfill_partitioned(step, run, page_size, lambda rows: fill.write(run.client, rows, ledger), progress, fill, ledger)
            progress.update(filled, final=True)
            return {"points": filled}
        embedded = position["embedded"]
        for keyed, offset, checkpoint in _per_shard_key(run, step.shard_keys, position, "embedded", progress):
            pages = scroll_pages(keyed.client, step.collection, page_size, offset, fill.selector, False)
            embedded += pipelined(pages, fill, lambda rows, client=keyed.client: fill.write(client, rows, ledger), checkpoint)
        progress.update(embedded, final=True)
        return {"points": embedded}
    finally:
        ledger.close()


@execute.register(CatchUpVector)
def catch_up_vector(step: CatchUpVector, run: Run) -> dict:
    return _catch_up_in_place(run, step)


def _catch_up_in_place(run: Run, step: CatchUpVector, when: str = "") -> dict:
    _loaded(step.model)
    ledger = run.records.ledger(step.collection, step.vector)
    try:
        done = in_place.catch_up_vector(run.client, _fill(run, step), ledger, max(step.scroll_page, step.batch_size))
    finally:
        ledger.close()
    if done.stale or done.missing:
        log.info(f"      {when + ': ' if when else ''}{step.vector}: embedded {done.missing} point(s) that lacked it and {done.stale} "
                 "whose text changed")
    return done.as_dict()


def _catch_up_vectors_again(run: Run, when: str, names: tuple[str, ...] | None = None) -> dict:
    """The in-place catch-ups of the plan (of `names` only, where given), run once more: the application kept writing
    only the old vectors since they ran."""
    counts = {}
    for step in run.plan.steps:
        if isinstance(step, CatchUpVector) and (names is None or step.vector in names):
            counts[step.vector] = _catch_up_in_place(run, step, when)
    return counts


@execute.register(SwitchQuery)
def switch_query(step: SwitchQuery, run: Run) -> dict:
    """A last catch-up of the vectors the query starts using, then the new query recorded in the collection's metadata
    (the record before kept in the checkpoint first, for rollback); the vectors it stops using are released: their
    observation window starts now. Ledgers of vectors the query now uses are dropped: the application writes them."""
    caught_up = _catch_up_vectors_again(run, "before the switch", step.backfilled)
    before = (run.checkpoint() or {}).get("before")
    if before is None:
        before = in_place.qmspec_record(run.client, step.collection)
        run.save_checkpoint({"before": before})
    after = in_place.switched(before, step.query, step.model, now())
    qdrant_ops.update_collection(run.client, step.collection, {"metadata": {in_place.METADATA_KEY: after}})
    for name in step.backfilled:
        run.records.ledger(step.collection, name).discard()
    return {"before": before, "caught_up": caught_up}


@execute.register(DeleteVector)
def delete_vector(step: DeleteVector, run: Run) -> dict:
    """Irreversible: the rules let it through only once the recorded query has not used the vector for the
    observation window. The metadata remembers the name as deleted (Qdrant 1.18 must not re-create it)."""
    if step.vector not in qdrant_ops.vector_names(run.client, step.collection):
        return {"deleted": False}
    run.client.delete_vector_name(step.collection, step.vector)
    record = in_place.qmspec_record(run.client, step.collection)
    qdrant_ops.update_collection(run.client, step.collection, {"metadata": {in_place.METADATA_KEY: in_place.dropped(record, step.vector, now())}})
    run.records.ledger(step.collection, step.vector).discard()
    return {"deleted": True}


@execute.register(UpdateCollection)
def update_collection(step: UpdateCollection, run: Run) -> dict:
    applied = qdrant_ops.update_collection(run.client, step.collection, step.changes)
    if not applied:
        log.info(f"      note: Qdrant reported the settings as not applied"
                 f"{' (embedded mode applies only metadata and the sparse modifier)' if run.embedded else ''}")
    return {"applied": applied}


@execute.register(RestoreIndexing)
def restore_indexing(step: RestoreIndexing, run: Run) -> dict:
    applied = qdrant_ops.update_collection(run.client, step.collection, step.settings)
    if not applied and run.embedded:
        log.info("      note: embedded Qdrant searches exactly and keeps no HNSW index; nothing to restore")
    qdrant_ops.wait_until_ready(run.client, step.collection)
    return {"applied": applied}


@execute.register(Verify)
def verify_target(step: Verify, run: Run) -> dict:
    if run.resumed:  # time passed since the catch-up: verify what the swap will serve, not what was copied then
        _catch_up_again(run, "before verifying again")
        _catch_up_vectors_again(run, "before verifying again")
    local = {need.settings["name"]: need.settings for need in model_needs(run.plan, None)}
    accepted = (run.journal.active.accepted or {}).get("reason")
    ledgered = [Ledgered(s.vector, s.text_field, run.records.ledger(s.collection, s.vector)) for s in run.plan.steps
                if isinstance(s, CatchUpVector) and s.collection == step.target]
    try:
        report = verify(run.client, step, local, run.records.baseline, run.baseline_known, copy_ranges(run), accepted=accepted,
                        carried=_carried_check(run), ledgered=ledgered)
    finally:
        for entry in ledgered:
            entry.ledger.close()
    run.journal.active.verification = {"passed": report.passed, "json": report.to_json(), "markdown": report.to_markdown(),
                                       "text": report.to_text()}
    for check in report.checks:
        event(log, "check", f"      {check.name}: {'pass' if check.passed else 'FAIL'}: {check.detail}", logging.DEBUG,
              collection=step.target, check=check.name, passed=check.passed, accepted=getattr(check, "accepted", None) or None,
              detail=check.detail, figures=check.figures.get("intervals") if check.name == "quality" else None)
    event(log, "verified", f"      {report.summary()}", collection=step.target, passed=report.passed)
    if not report.passed:
        raise VerificationFailed(report)
    return {"passed": True}


@execute.register(SwapAlias)
def swap_alias(step: SwapAlias, run: Run) -> dict:
    """Check the alias still serves what the plan saw (re-creating an alias re-points it silently), then delete and
    create in one atomic call. The target before it is already journaled (`alias_before`) for rollback."""
    current = qdrant_ops.current_alias_target(run.client, step.alias)
    if current == step.to_collection:  # swapped before a crash: what landed in the old collection meanwhile
        return {"previous": run.journal.active.alias_before, "after": _catch_up_again(run, "after the swap")}
    if current != step.from_collection:
        raise ApplyError(f"alias {step.alias} serves {current} now, not {step.from_collection} as planned: someone moved it "
                         "during the apply; check who, then plan again")
    caught_up = _catch_up_again(run, "before the swap")
    qdrant_ops.point_alias(run.client, step.alias, current, step.to_collection)
    return {"previous": current, "before": caught_up, "after": _catch_up_again(run, "after the swap")}


def _catch_up_again(run: Run, when: str) -> dict | None:
    """The application kept writing to the old collection since the catch-up and verify (for days, if the apply was
    stopped there): carry those writes once more right before the swap, and once after it for the ones that landed
    in between. Writes the application made to the new collection are kept."""
    step = next((s for s in run.plan.steps if isinstance(s, CatchUp)), None)
    if step is None or not run.client.collection_exists(step.source):
        return None
    counts = reconcile(step, run)
    if any(counts[key] for key in ("changed", "added", "removed")):
        log.info(f"      {when}: carried {counts['changed']} changed, {counts['added']} added, {counts['removed']} removed "
                 f"points from {step.source} (kept {counts['kept']} the application wrote to {step.target})")
    return counts


@execute.register(DeleteCollection)
def delete_collection(step: DeleteCollection, run: Run) -> dict:
    for kind in step.after:
        if not run.journal.active.succeeded(kind):
            raise ApplyError(f"refusing to delete {step.collection}: {kind} has not succeeded")
    if not run.client.collection_exists(step.collection):
        return {"deleted": False}
    serving = qdrant_ops.aliases_of(run.client, step.collection)
    if serving:
        raise ApplyError(f"refusing to delete {step.collection}: alias(es) {', '.join(serving)} still point at it")
    run.client.delete_collection(step.collection)
    return {"deleted": True}
