"""Execute a plan against Qdrant, one idempotent function per step kind, journaling after every step and every
batch checkpoint, so that a crashed apply resumes where it stopped and never loses or duplicates a point.

Record progress after the effect, check for it before: every step function first looks at what Qdrant already
has, so running it twice gives the same result.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from qdrant_client import models

from .embed import get_embedder
from .errors import QmspecError
from .pipeline import (Progress, SerializedClient, carried_vectors, check_source_files, fit_linear_map, map_recall,
                       payload_hash, pipelined, read_records, scroll_pages, update_vectors, upload)
from .plan import (CatchUp, CopyPoints, CreateCollection, LearnAdapter, CreateVector, DeleteCollection, DeleteVector, EmbedVectors,
                   LoadFiles, Plan, RestoreIndexing, Step, SwapAlias, UpdateCollection, Verify)
from .render import describe
from .state import now
from .verify import VerificationFailed, verify

READY_TIMEOUT_S = 600
ADAPTER_DIR = ".qmspec/adapters"
DEFAULT_SCROLL_PAGE = 1000


class ApplyError(QmspecError):
    """A step failed. The message names the step and how to resume or roll back."""


# ---------------------------------------------------------------- the journal


@dataclass
class Journal:
    """The state record of one alias, saved through `store` after every change."""

    store: object
    alias: str
    record: dict

    @property
    def active(self) -> dict:
        return self.record["active"]

    def start(self, plan: Plan) -> None:
        self.record["active"] = {
            "plan_hash": plan.hash, "spec_hash": plan.spec_hash, "plan": plan.to_dict(), "status": "running",
            "started_at": now(), "finished_at": None, "alias_before": plan.prior["alias_target"],
            "steps": [{"kind": step.kind, "status": "pending", "checkpoint": None, "result": None} for step in plan.steps],
        }
        self.save()

    def step(self, index: int) -> dict:
        return self.active["steps"][index]

    def save(self) -> None:
        self.store.write(self.alias, self.record)

    def finish(self, status: str) -> None:
        active = self.active
        active["status"], active["finished_at"] = status, now()
        if status in ("succeeded", "rolled_back"):
            self.record["history"].append({key: active.get(key) for key in
                                           ("plan_hash", "spec_hash", "status", "started_at", "finished_at", "alias_before")}
                                          | {"alias_after": _alias_after(active)})
        self.save()


def _alias_after(active: dict) -> str | None:
    if active["status"] == "rolled_back":
        return active.get("alias_before")
    return active["plan"]["collection"]


def unfinished(record: dict) -> dict | None:
    active = record.get("active")
    return active if active and active["status"] in ("running", "failed", "verify_failed") else None


def already_applied(record: dict, plan_hash: str) -> bool:
    return any(entry["plan_hash"] == plan_hash and entry["status"] == "succeeded" for entry in record.get("history", []))


# ---------------------------------------------------------------- running a plan


@dataclass
class Run:
    client: object
    embedded: bool
    journal: Journal
    index: int
    log: Callable[[str], None]

    def checkpoint(self) -> dict | None:
        return self.journal.step(self.index)["checkpoint"]

    def save_checkpoint(self, data: dict) -> None:
        self.journal.step(self.index)["checkpoint"] = data
        self.journal.save()
        _fault_point("checkpoint")


def apply_plan(plan: Plan, client, journal: Journal, embedded: bool, log: Callable[[str], None]) -> None:
    """Run every step not yet done. The caller holds the lock and has checked the plan is fresh or resumed."""
    if plan.steps and any(isinstance(step, LoadFiles) for step in plan.steps):
        for step in plan.steps:
            if isinstance(step, LoadFiles):
                check_source_files(step.files, step.id_field)
    if embedded:
        client = SerializedClient(client)
    total = len(plan.steps)
    for index, step in enumerate(plan.steps):
        state = journal.step(index)
        if state["status"] == "done":
            continue
        title, _ = describe(step)
        log(f"[{index + 1}/{total}] {title}{' (resuming)' if state['checkpoint'] else ''}")
        state["status"], state["started_at"] = "running", now()
        journal.save()
        started = time.monotonic()
        try:
            result = STEP_FUNCTIONS[step.kind](Run(client, embedded, journal, index, log), step)
        except VerificationFailed:
            state["status"] = "failed"
            journal.finish("verify_failed")
            raise
        except QmspecError as error:
            _fail(journal, state, error)
            raise ApplyError(_failure_message(step, index, error)) from None
        except Exception as error:  # noqa: BLE001 - Qdrant client errors are mostly plain ValueError / HTTP errors
            _fail(journal, state, error)
            raise ApplyError(_failure_message(step, index, error)) from None
        _fault_point("effect")
        state.update(status="done", result=result or {}, finished_at=now())
        journal.save()
        log(f"      done in {time.monotonic() - started:.1f}s")
    journal.finish("succeeded")


def _fail(journal: Journal, state: dict, error: Exception) -> None:
    state["status"], state["error"] = "failed", str(error).splitlines()[0][:500]
    journal.finish("failed")


def _failure_message(step: Step, index: int, error: Exception) -> str:
    title, _ = describe(step)
    return (f"step {index + 1} ({title}) failed: {str(error).splitlines()[0][:500]}\n"
            "steps before it are done and recorded; fix the cause and run the same `qmspec apply` again to resume, "
            "or `qmspec rollback SPEC` to go back")


def _fault_point(kind: str) -> None:
    """Fault injection for the crash tests: QMSPEC_FAULT="effect:3" kills this process with SIGKILL right after
    the third step's effect and before it is recorded; "checkpoint:2" right after the second batch checkpoint."""
    wanted = os.environ.get("QMSPEC_FAULT")
    if not wanted:
        return
    counter = f"_qmspec_fault_{kind}"
    count = globals().get(counter, 0) + 1
    globals()[counter] = count
    if wanted == f"{kind}:{count}":
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- one function per step kind


def run_create_collection(run: Run, step: CreateCollection) -> dict:
    client = run.client
    if client.collection_exists(step.collection):
        existing = client.get_collection(step.collection).config.params
        names = set((existing.vectors or {}) if isinstance(existing.vectors, dict) else {""}) | set(existing.sparse_vectors or {})
        if names != set(step.vectors) | set(step.sparse_vectors):
            raise ApplyError(f"collection {step.collection} exists with vectors {sorted(names)}, not the planned ones; "
                             "it was not created by this apply: choose another collection name")
        return {"created": False}
    settings = step.settings
    hnsw = dict(settings.get("hnsw") or {}) | step.deferred_indexing.get("hnsw", {})
    optimizers = dict(settings.get("optimizers") or {}) | step.deferred_indexing.get("optimizers", {})
    client.create_collection(
        step.collection,
        vectors_config={name: _vector_params(config) for name, config in step.vectors.items()},
        sparse_vectors_config={name: _sparse_params(config) for name, config in step.sparse_vectors.items()} or None,
        hnsw_config=models.HnswConfigDiff(**hnsw) if hnsw else None,
        optimizers_config=models.OptimizersConfigDiff(**optimizers) if optimizers else None,
        quantization_config=quantization_config(settings.get("quantization")),
        on_disk_payload=settings.get("on_disk_payload"),
        replication_factor=settings.get("replication_factor"),
        write_consistency_factor=settings.get("write_consistency_factor"),
        metadata=step.metadata,
    )
    return {"created": True}


def _vector_params(config: dict) -> models.VectorParams:
    return models.VectorParams(
        size=config["size"],
        distance=models.Distance(config["distance"]),
        on_disk=config.get("on_disk") or None,
        datatype=models.Datatype(config["datatype"]) if config.get("datatype", "float32") != "float32" else None,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator(config["multivector"]))
        if config.get("multivector") else None,
        hnsw_config=models.HnswConfigDiff(**config["hnsw"]) if config.get("hnsw") else None,
        quantization_config=quantization_config(config.get("quantization")),
    )


def _sparse_params(config: dict) -> models.SparseVectorParams:
    return models.SparseVectorParams(
        modifier=models.Modifier.IDF if config.get("modifier") == "idf" else None,
        index=models.SparseIndexParams(on_disk=True) if config.get("on_disk") else None,
    )


def quantization_config(value: dict | None, for_update: bool = False):
    if value is None:
        return None
    if value == {}:
        return models.Disabled.DISABLED if for_update else None
    method, options = next(iter(value.items()))
    if method == "scalar":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, **{k: v for k, v in options.items() if k != "type"}))
    if method == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(**options))
    return models.ProductQuantization(product=models.ProductQuantizationConfig(
        compression=models.CompressionRatio(options["compression"]), always_ram=options.get("always_ram")))


def run_load_files(run: Run, step: LoadFiles) -> dict:
    position = run.checkpoint() or {"file": 0, "line": 0, "loaded": 0}
    per_page = step.batch_size * max(1, step.parallel)
    progress = Progress(f"load {step.collection}", step.points, run.log)

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

    loaded = pipelined(pages(), _embedding_on_the_way(step.embed), _writer(run, step.collection, step), checkpoint)
    progress.update(position["loaded"] + loaded, final=True)
    return {"points": position["loaded"] + loaded}


def _writer(run: Run, collection: str, step) -> Callable[[list], None]:
    return lambda rows: upload(run.client, collection, rows, step.batch_size, step.parallel, step.update_mode, run.embedded)


def run_learn_adapter(run: Run, step: LearnAdapter) -> dict:
    """Fit on `sample` texts, measure on a quarter more held out; the matrix goes beside the journal."""
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
    run.log(f"      learned on {split} texts; recall@10 on {len(points) - split} held-out texts: {recall:.2f} (min {step.min_recall})")
    if recall < step.min_recall:
        raise ApplyError(f"the learned map keeps recall@10 {recall:.2f}, below min_recall {step.min_recall}: "
                         "re-embed instead (remove `adapter`), or learn from a larger sample")
    path = adapter_path(run, step.vector)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    return {"recall_at_10": recall, "trained_on": split, "held_out": len(points) - split, "matrix": str(path)}


def adapter_path(run: Run, vector: str) -> Path:
    return Path(ADAPTER_DIR) / f"{run.journal.alias}-{run.journal.active['plan_hash']}-{vector}.npy"


def _learned_maps(run: Run, carry: dict) -> dict:
    """Matrices of the adapters this plan learned; a resumed apply on a runner without them learns them again."""
    maps = {}
    for vector, how in carry.items():
        if how.get("adapter"):
            path = adapter_path(run, vector)
            if not path.exists():
                raise ApplyError(f"the learned map for {vector} ({path}) is missing: roll back and apply again to relearn it")
            maps[vector] = np.load(path)
    return maps


def run_copy_points(run: Run, step: CopyPoints) -> dict:
    """Scroll the source (vectors only where they are carried), insert-only into the target, checkpoint the offset
    after each page: a resumed copy re-sends at most the pages in flight, which insert-only mode makes harmless."""
    position = run.checkpoint() or {"offset": None, "copied": 0}
    if position.get("done"):
        return {"points": position["copied"]}
    distances = _distances(run.client, step.target)
    maps = _learned_maps(run, step.carry)
    with_vectors = sorted({how["from"] for how in step.carry.values()}) or False
    progress = Progress(f"copy {step.source} -> {step.target}", step.points, run.log)

    embed_new = _embedding_on_the_way(step.embed)

    def to_points(page: list) -> list:
        return embed_new([models.PointStruct(id=p.id, vector=carried_vectors(p.vector, step.carry, distances, maps),
                                             payload=p.payload or {}) for p in page])

    def checkpoint(next_offset, done: int) -> None:
        run.save_checkpoint({"offset": next_offset, "copied": position["copied"] + done, "done": next_offset is None})
        progress.update(position["copied"] + done)

    pages = scroll_pages(run.client, step.source, step.scroll_page, position["offset"], True, with_vectors)
    copied = position["copied"] + pipelined(pages, to_points, _writer(run, step.target, step), checkpoint)
    progress.update(copied, final=True)
    return {"points": copied}


def _embedding_on_the_way(embed: dict) -> Callable[[list], list]:
    """Fill each point's new vectors from its payload text before it is written: one write per point."""
    embedders = {vector: get_embedder(args["model"]) for vector, args in embed.items()}

    def fill(points: list) -> list:
        for vector, args in embed.items():
            computed = embed_points(embedders[vector], points, vector, args["text_field"], args["sparse"])
            for point, value in zip(points, computed):
                point.vector[vector] = value.vector[vector]
        return points

    return fill


def _distances(client, collection: str) -> dict:
    vectors = client.get_collection(collection).config.params.vectors or {}
    return {name: params.distance.value for name, params in vectors.items()} if isinstance(vectors, dict) else {}


def run_embed_vectors(run: Run, step: EmbedVectors) -> dict:
    """Read texts from the target's payloads page by page, embed, write with update_vectors (idempotent). Reading
    the next page and writing the last one overlap with the model."""
    embedder = get_embedder(step.model)
    position = run.checkpoint() or {"offset": None, "embedded": 0}
    if position.get("done"):
        return {"points": position["embedded"]}
    plan = Plan.from_dict(run.journal.active["plan"])
    page_size = max(_scroll_page(plan), step.batch_size)
    selector = models.PayloadSelectorInclude(include=[step.text_field])
    progress = Progress(f"embed {step.vector}", step.points, run.log)

    def write(vectors: list) -> None:
        update_vectors(run.client, step.collection, vectors, step.batch_size, step.parallel, run.embedded)

    def checkpoint(next_offset, done: int) -> None:
        run.save_checkpoint({"offset": next_offset, "embedded": position["embedded"] + done, "done": next_offset is None})
        progress.update(position["embedded"] + done)

    pages = scroll_pages(run.client, step.collection, page_size, position["offset"], selector, False)
    embedded = position["embedded"] + pipelined(
        pages, lambda page: embed_points(embedder, page, step.vector, step.text_field, step.sparse), write, checkpoint)
    progress.update(embedded, final=True)
    return {"points": embedded}


def _scroll_page(plan: Plan) -> int:
    """Embedding pages follow the plan's scroll page (local mode re-sorts every id per scroll call: pages of 1,000+)."""
    return next((s.scroll_page for s in plan.steps if isinstance(s, (CopyPoints, CatchUp))), DEFAULT_SCROLL_PAGE)


def embed_points(embedder, points: list, vector: str, text_field: str, sparse: bool) -> list:
    missing = [p.id for p in points if not isinstance((p.payload or {}).get(text_field), str)]
    if missing:
        shown = ", ".join(map(str, missing[:5]))
        raise ApplyError(f"{len(missing)} point(s) have no text in payload field {text_field!r} (ids {shown}); "
                         "fix their payloads or set text_field in the spec")
    if not points:
        return []
    embeddings = embedder.embed([p.payload[text_field] for p in points])
    return [models.PointVectors(id=p.id, vector={vector: _vector_value(value, sparse)}) for p, value in zip(points, embeddings)]


def _vector_value(value, sparse: bool):
    if sparse:
        indices, values = value
        return models.SparseVector(indices=[int(i) for i in indices], values=[float(v) for v in values])
    return [float(x) for x in value]


def run_catch_up(run: Run, step: CatchUp) -> dict:
    """Make the target's points equal the source's (ids and payloads) after the long copy, re-embedding what it
    rewrites. Holds one hash per target point in memory."""
    client = run.client
    target_hashes = {p.id: payload_hash(p.payload) for page, _ in scroll_pages(client, step.target, step.scroll_page)
                     for p in page}
    distances = _distances(client, step.target)
    maps = _learned_maps(run, step.carry)
    with_vectors = sorted({how["from"] for how in step.carry.values()}) or False
    embed_new = _embedding_on_the_way(step.embed)
    changed = added = 0
    for page, _ in scroll_pages(client, step.source, step.scroll_page, None, True, with_vectors):
        stale = []
        for point in page:
            known = target_hashes.pop(point.id, None)
            if known != payload_hash(point.payload):
                stale.append(point)
                changed += known is not None
                added += known is None
        if stale:
            rewritten = embed_new([models.PointStruct(id=p.id, vector=carried_vectors(p.vector, step.carry, distances, maps),
                                                      payload=p.payload or {}) for p in stale])
            upload(client, step.target, rewritten, step.batch_size, 1, "upsert", run.embedded)
    removed = list(target_hashes)
    if removed:
        client.delete(step.target, points_selector=models.PointIdsList(points=removed), wait=True)
    return {"changed": changed, "added": added, "removed": len(removed)}


def run_create_vector(run: Run, step: CreateVector) -> dict:
    params = run.client.get_collection(step.collection).config.params
    existing = set(params.vectors or {}) | set(params.sparse_vectors or {}) if isinstance(params.vectors, dict) else set()
    if step.vector in existing:
        return {"created": False}
    if step.sparse:
        config = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(
            modifier=models.Modifier.IDF if step.config.get("modifier") == "idf" else None))
    else:
        config = models.DenseVectorNameConfig(dense=models.DenseVectorConfig(
            size=step.config["size"], distance=models.Distance(step.config["distance"]),
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator(step.config["multivector"]))
            if step.config.get("multivector") else None))
    run.client.create_vector_name(step.collection, step.vector, config)
    return {"created": True}


def run_delete_vector(run: Run, step: DeleteVector) -> dict:
    params = run.client.get_collection(step.collection).config.params
    if step.vector not in set(params.vectors or {}) | set(params.sparse_vectors or {}):
        return {"deleted": False}
    run.client.delete_vector_name(step.collection, step.vector)
    return {"deleted": True}


def run_update_collection(run: Run, step: UpdateCollection) -> dict:
    applied = update_collection(run.client, step.collection, step.changes)
    if not applied:
        run.log(f"      note: Qdrant reported the settings as not applied"
                f"{' (embedded mode applies only metadata and the sparse modifier)' if run.embedded else ''}")
    return {"applied": applied}


def update_collection(client, collection: str, changes: dict) -> bool:
    """Send one update_collection call. Returns Qdrant's answer: embedded mode answers False for the settings
    it ignores (HNSW, optimizers, quantization), which the journal records as not applied."""
    params = {key: changes[key] for key in ("on_disk_payload", "replication_factor", "write_consistency_factor") if key in changes}
    vectors = {name: models.VectorParamsDiff(on_disk=diff.get("on_disk"),
                                             hnsw_config=models.HnswConfigDiff(**diff["hnsw"]) if diff.get("hnsw") else None,
                                             quantization_config=quantization_config(diff.get("quantization"), for_update=True))
               for name, diff in (changes.get("vectors") or {}).items()}
    sparse = {name: models.SparseVectorParams(
        modifier=(models.Modifier.IDF if diff["modifier"] == "idf" else models.Modifier.NONE) if "modifier" in diff else None,
        index=models.SparseIndexParams(on_disk=diff["on_disk"]) if "on_disk" in diff else None)
        for name, diff in (changes.get("sparse_vectors") or {}).items()}
    return bool(client.update_collection(
        collection,
        hnsw_config=models.HnswConfigDiff(**changes["hnsw"]) if changes.get("hnsw") else None,
        optimizers_config=models.OptimizersConfigDiff(**changes["optimizers"]) if changes.get("optimizers") else None,
        quantization_config=quantization_config(changes.get("quantization"), for_update=True),
        collection_params=models.CollectionParamsDiff(**params) if params else None,
        vectors_config=vectors or None,
        sparse_vectors_config=sparse or None,
        metadata=changes.get("metadata"),
    ))


def run_restore_indexing(run: Run, step: RestoreIndexing) -> dict:
    applied = update_collection(run.client, step.collection, step.settings)
    if not applied and run.embedded:
        run.log("      note: embedded Qdrant searches exactly and keeps no HNSW index; nothing to restore")
    wait_until_ready(run.client, step.collection)
    return {"applied": applied}


def wait_until_ready(client, collection: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get_collection(collection).status
        if getattr(status, "value", status) == "green":
            return
        if time.monotonic() > deadline:
            raise ApplyError(f"{collection} is still {status} after {timeout_s:.0f}s of indexing; re-run apply to keep waiting")
        time.sleep(1)


def run_verify(run: Run, step: Verify) -> dict:
    report = verify(run.client, step)
    run.journal.active["verification"] = {"passed": report.passed, "json": report.to_json(), "markdown": report.to_markdown()}
    run.log(report.to_text().rstrip())
    if not report.passed:
        raise VerificationFailed(report)
    return {"passed": True}


def run_swap_alias(run: Run, step: SwapAlias) -> dict:
    """Record the current target first (re-creating an alias re-points it silently), then delete and create in
    one update_collection_aliases call, which Qdrant applies atomically."""
    current = current_alias_target(run.client, step.alias)
    if current == step.to_collection:
        return {"previous": run.journal.active.get("previous_alias_target")}
    if current != step.from_collection:
        raise ApplyError(f"alias {step.alias} serves {current} now, not {step.from_collection} as planned: someone moved it "
                         "during the apply; check who, then plan again")
    run.journal.active["previous_alias_target"] = current
    run.journal.save()
    point_alias(run.client, step.alias, current, step.to_collection)
    return {"previous": current}


def current_alias_target(client, alias: str) -> str | None:
    return {a.alias_name: a.collection_name for a in client.get_aliases().aliases}.get(alias)


def point_alias(client, alias: str, current: str | None, to_collection: str | None) -> None:
    operations = []
    if current:
        operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    if to_collection:
        operations.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=to_collection, alias_name=alias)))
    client.update_collection_aliases(change_aliases_operations=operations)


def run_delete_collection(run: Run, step: DeleteCollection) -> dict:
    steps = run.journal.active["steps"]
    for kind in step.after:
        if not any(s["kind"] == kind and s["status"] == "done" for s in steps):
            raise ApplyError(f"refusing to delete {step.collection}: {kind} has not succeeded")
    if not run.client.collection_exists(step.collection):
        return {"deleted": False}
    serving = [a.alias_name for a in run.client.get_aliases().aliases if a.collection_name == step.collection]
    if serving:
        raise ApplyError(f"refusing to delete {step.collection}: alias(es) {', '.join(serving)} still point at it")
    run.client.delete_collection(step.collection)
    return {"deleted": True}


STEP_FUNCTIONS = {
    "create_collection": run_create_collection,
    "load_files": run_load_files,
    "learn_adapter": run_learn_adapter,
    "copy_points": run_copy_points,
    "embed_vectors": run_embed_vectors,
    "catch_up": run_catch_up,
    "create_vector": run_create_vector,
    "delete_vector": run_delete_vector,
    "update_collection": run_update_collection,
    "restore_indexing": run_restore_indexing,
    "verify": run_verify,
    "swap_alias": run_swap_alias,
    "delete_collection": run_delete_collection,
}
