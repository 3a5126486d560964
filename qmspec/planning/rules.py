"""Safety rules: one small pure function per code, run over the drafted plan.

Codes are stable once released and grouped by class, like Atlas's lint codes, so CI logs can be grepped:
DS destructive, BC breaking for clients, MF may fail or corrupt, RQ needs a server capability, PF performance.
A rule that is `allowable` can be accepted in a spec's `policy.allow`; the others describe changes Qdrant
cannot make at all, so accepting them would only move the failure to apply time.
"""
from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from . import capabilities
from .diff import Change, CreateOnlySetting, ModelChanged, VectorShape, identity_change
from .flow import compact
from .livestate import LiveCollection, LiveState, query_vectors, recorded
from .modelfacts import duration
from .plan import (CopyPoints, CreateCollection, CreateShardKeys, CreateVector, DeleteCollection, DeleteVector, EmbedVectors, Finding, LoadFiles,
                   SetPayloadIndex, Step, SwapAlias, SwitchQuery, UpdateCollection, Verify)
from .spec import Spec

LARGE_MULTIVECTOR_DIM = 96  # ColBERT-style token vectors: every point stores many of them
RETIRED = {"MF306": "0.2.0: dense to hybrid in place is what the guide advises on Qdrant 1.18+; MF303 gates it on a judged fused query"}


@dataclass(frozen=True)
class RuleContext:
    spec: Spec
    live: LiveState
    alias_target: str | None  # collection the alias serves now
    target: LiveCollection | None  # the spec's collection, where it exists already
    source: LiveCollection | None  # where points are copied from
    changes: tuple[Change, ...]  # spec vs the existing target (empty for a new collection)
    steps: tuple[Step, ...]

    def steps_of(self, *types) -> list[Step]:
        return [step for step in self.steps if isinstance(step, types)]

    def index_of(self, step: Step) -> int:
        return self.steps.index(step)


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    title: str
    fix: str
    allowable: bool
    check: Callable[[RuleContext], Iterable[tuple[str, tuple]]]  # yields (message, spec key path)

    @property
    def category(self) -> str:
        return CLASSES[self.code[:2]]


CLASSES = {
    "DS": "destructive",
    "BC": "breaking for clients",
    "MF": "may fail or corrupt",
    "RQ": "requires a server capability",
    "PF": "performance",
}

RULES: dict[str, Rule] = {}


def rule(code: str, severity: str, title: str, fix: str, allowable: bool = True):
    def register(check):
        RULES[code] = Rule(code, severity, title, fix, allowable, check)
        return check

    return register


def check_rules(context: RuleContext) -> tuple[Finding, ...]:
    findings = []
    overrides = {override.code: override for override in context.spec.allow}
    for code, current in RULES.items():
        override = overrides.get(code) if current.allowable else None
        expired = override is not None and override.expired(context.live.observed_at)
        for message, key in current.check(context):
            if expired:
                message += (f" (policy.allow accepted {code} until {override.until}, which has passed: renew it with a new `until` "
                            "and reason, or fix the spec)")
            findings.append(
                Finding(
                    code=code,
                    severity=current.severity,
                    title=current.title,
                    message=message,
                    fix=current.fix,
                    key=".".join(map(str, key)),
                    line=context.spec.line_of(*key) if key else None,
                    allowed=override is not None and not expired,
                    accepted=override.as_dict() or None if override is not None else None,
                )
            )
    return tuple(findings)


def _changes_of(changes: Iterable[Change], kind: type[Change]) -> list[Change]:
    return [change for change in changes if isinstance(change, kind)]


def _vector_key(spec: Spec, name: str) -> tuple:
    group = "sparse_vectors" if any(v.name == name for v in spec.sparse_vectors) else "vectors"
    return (group, name)


# ---------------------------------------------------------------- DS: destructive


@rule("DS101", "error", "old collection deleted before the new one is verified and serving",
      "delete the old collection only after `verify` and `swap_alias`: set `cleanup.when: after_verify` and keep verification gates on",
      allowable=False)
def old_deleted_before_verify(ctx: RuleContext):
    for delete in ctx.steps_of(DeleteCollection):
        position = ctx.index_of(delete)
        before = {type(step) for step in ctx.steps[:position]}
        verified = ctx.spec.verify.has_gates and Verify in before
        if not verified or SwapAlias not in before:
            missing = "verification is disabled" if not ctx.spec.verify.has_gates else "it comes before verify and swap_alias"
            yield f"deleting {delete.collection!r}: {missing}; a bad migration could no longer be rolled back", ("cleanup",)


@rule("DS102", "error", "deleting a collection drops every alias that points at it",
      "re-point or remove the other aliases first, or keep the old collection (`cleanup.old_collection: keep`)")
def delete_drops_other_aliases(ctx: RuleContext):
    for delete in ctx.steps_of(DeleteCollection):
        others = [alias for alias in ctx.live.aliases_of(delete.collection) if alias != ctx.spec.alias]
        if others:
            yield f"{delete.collection!r} also serves alias(es) {', '.join(others)}; Qdrant would drop them with it (an outage)", ("cleanup",)


@rule("DS103", "error", "named vector dropped in place before its observation window passed",
      "wait until `cleanup.observe_for` has passed since the application's query stopped using it (plan again then), shorten "
      "`cleanup.observe_for`, or accept DS103 in `policy.allow`: the drop cannot be undone")
def vector_dropped_too_soon(ctx: RuleContext):
    """The guide deletes the old vector field only once the new one serves; qmspec knows that from the query it
    recorded and from when it stopped using the vector. A drop of a vector the query still uses is BC205's."""
    for step in ctx.steps_of(DeleteVector):
        collection = ctx.live.collections.get(step.collection)
        query = recorded(collection.metadata, "query") if collection else None
        if query and step.vector in query_vectors(query):
            continue
        message = _too_soon(ctx, step, collection, query)
        if message:
            yield message, ("cleanup", "observe_for") if ctx.spec.line_of("cleanup", "observe_for") else ("vectors",)


def _too_soon(ctx: RuleContext, step: DeleteVector, collection: LiveCollection | None, query: dict | None) -> str:
    window = ctx.spec.observe_for_s
    if not query:
        return (f"{step.collection!r} records no query the application runs, so nothing says {step.vector!r} is unused; "
                f"`qmspec import` records it, or accept DS103 to drop it with every stored value")
    since = (recorded(collection.metadata, "released", {}) or {}).get(step.vector) or recorded(collection.metadata, "query_since")
    if since is None or ctx.live.observed_at is None:
        return (f"{step.collection!r} records no time since which the application's query ({compact(query)}) leaves "
                f"{step.vector!r} alone, so its observation window cannot be told")
    unqueried = ctx.live.observed_at - calendar.timegm(time.strptime(since, "%Y-%m-%dT%H:%M:%SZ"))
    if unqueried >= window:
        return ""
    return (f"the application's query ({compact(query)}) has left {step.vector!r} alone since {since}, {duration(max(unqueried, 0))} "
            f"ago; `cleanup.observe_for` asks for {duration(window)}: {duration(window - unqueried)} left before it can be dropped")


@rule("DS104", "error", "vector size, distance, datatype or multivector changed in place",
      "give the collection a new name (`collection: <name>_v2`): qmspec creates it, migrates and swaps the alias", allowable=False)
def shape_changed_in_place(ctx: RuleContext):
    for change in _changes_of(ctx.changes, VectorShape):
        yield (f"{change.vector!r}: {change.field} {change.old} -> {change.new} on existing collection {ctx.target.name!r}; "
               "Qdrant cannot change it without re-creating the collection"), _vector_key(ctx.spec, change.vector)


@rule("DS105", "error", "shard number, sharding method or WAL changed in place",
      "give the collection a new name (`collection: <name>_v2`): qmspec creates it with the new setting, copies the points "
      "and swaps the alias", allowable=False)
def create_only_changed_in_place(ctx: RuleContext):
    for change in _changes_of(ctx.changes, CreateOnlySetting):
        yield (f"{change.field} {change.old} -> {change.new} on existing collection {ctx.target.name!r}; Qdrant fixes it "
               "when a collection is created"), (change.field,)


# ---------------------------------------------------------------- BC: breaking for clients


@rule("BC201", "error", "query model differs from the model of the vector it queries",
      "set `query.model` to the model that produces `query.using`, and update the application's query embedding with it",
      allowable=False)
def query_model_mismatch(ctx: RuleContext):
    spec = ctx.spec
    if not (spec.query_using and spec.query_model):
        return
    produced_by = _model_of(ctx, spec.query_using)
    if produced_by and produced_by != spec.query_model:
        yield (f"the application embeds queries with {spec.query_model!r} but {spec.query_using!r} holds vectors of "
               f"{produced_by!r}: search results would be meaningless"), ("query", "model")
        return
    serving = ctx.live.collections.get(ctx.alias_target or "")
    if serving is None or ctx.steps_of(SwitchQuery, SwapAlias):
        return
    query, model = recorded(serving.metadata, "query"), recorded(serving.metadata, "query_model")  # what runs now, and stays
    holds = (serving.recorded_model(query["using"]) or {}).get("model") if query and "using" in query else None
    if model and holds and model != holds:
        yield (f"the application's recorded query embeds with {model!r} but {serving.name}.{query['using']} holds vectors of "
               f"{holds!r}"), ("query", "model")


@rule("BC202", "warning", "the model of the queried vector changes; the application must change its query model too",
      "declare `query: {using: NAME, model: MODEL}` so the plan checks it, and deploy the new query model with the swap")
def query_model_undeclared(ctx: RuleContext):
    spec = ctx.spec
    if spec.query_model or not ctx.steps_of(SwapAlias) or ctx.alias_target is None:
        return
    serving = ctx.live.collections.get(ctx.alias_target)
    for vector in spec.vectors:
        before = serving.recorded_model(vector.name) if serving else None
        after = _model_of(ctx, vector.name)
        if before and after and before.get("model") != after and (spec.query_using in (None, vector.name)):
            yield f"{vector.name!r} moves from {before.get('model')!r} to {after!r}", ("query",)


@rule("BC203", "warning", "alias re-pointed to a collection with different vector names",
      "keep the vector names the application queries, or release the application change together with the swap")
def alias_vector_names_differ(ctx: RuleContext):
    for swap in ctx.steps_of(SwapAlias):
        serving = ctx.live.collections.get(swap.from_collection or "")
        if serving is None:
            continue
        missing = sorted(serving.vector_names() - {v.name for v in (*ctx.spec.vectors, *ctx.spec.sparse_vectors)})
        if missing:
            names = ", ".join("(unnamed)" if name == "" else repr(name) for name in missing)
            yield f"{swap.alias!r} now serves {names} which {swap.to_collection!r} will not have; queries using them fail", ("vectors",)


@rule("BC204", "error", "the collection that will serve the alias lacks a payload index, shard key or strict mode of the current one",
      "keep it (leave it out of the spec: a new collection inherits it, or state it), or drop it on purpose: "
      "`payload_indexes: {<field>: none}`, `strict_mode: {enabled: false}`, or accept BC204 in `policy.allow`")
def serving_loses_setting(ctx: RuleContext):
    """Filtered queries slow down without their index, and strict mode (unindexed_filtering_retrieve: false) rejects
    them; writes to a missing shard key fail."""
    for swap in ctx.steps_of(SwapAlias):
        current = ctx.live.collections.get(swap.from_collection or "")
        if current is None or ctx.live.embedded:  # the embedded store has none of them
            continue
        indexes, strict, keys = _serving_after(ctx, swap.to_collection)
        wanted = ctx.spec.settings
        for field in current.settings.payload_indexes:
            if field not in indexes and not (field in wanted.payload_indexes and wanted.payload_indexes[field] is None):
                yield (f"{swap.to_collection!r} would serve {swap.alias!r} without the {current.settings.payload_indexes[field]['type']} "
                       f"index on {field!r} that {current.name!r} has"), _stated_or_collection(ctx, "payload_indexes")
        if current.settings.strict_mode.get("enabled") and not strict.get("enabled") and wanted.strict_mode.get("enabled") is not False:
            yield (f"{swap.to_collection!r} would serve {swap.alias!r} without the strict mode {current.name!r} enforces"), \
                _stated_or_collection(ctx, "strict_mode")
        for key in current.settings.shard_keys:
            if key not in keys:
                yield (f"{swap.to_collection!r} would serve {swap.alias!r} without shard key {key!r} of {current.name!r}"), \
                    _stated_or_collection(ctx, "shard_keys")


@rule("BC205", "error", "dropping a vector the application's recorded query uses",
      "switch the query first: apply a spec whose `query:` no longer uses it and that keeps the vector; drop it in a later "
      "apply, once `cleanup.observe_for` has passed", allowable=False)
def dropping_queried_vector(ctx: RuleContext):
    for step in ctx.steps_of(DeleteVector):
        collection = ctx.live.collections.get(step.collection)
        query = recorded(collection.metadata, "query") if collection else None
        if query and step.vector in query_vectors(query):
            yield (f"the application queries {step.collection!r} with {compact(query)} (recorded by qmspec), which searches "
                   f"{step.vector!r}: dropping it would fail every search"), _vector_key(ctx.spec, step.vector) if ctx.spec.vector(step.vector) else ("query",)


def _stated_or_collection(ctx: RuleContext, key: str) -> tuple:
    """Point at the spec's key where it is written, else at `collection:`, the line that moves the alias."""
    return (key,) if ctx.spec.line_of(key) else ("collection",)


def _serving_after(ctx: RuleContext, collection: str) -> tuple[set, dict, set]:
    """The payload index fields, strict mode and shard keys `collection` will have once the plan ran."""
    existing = ctx.live.collections.get(collection)
    indexes = set(existing.settings.payload_indexes) if existing else set()
    strict = dict(existing.settings.strict_mode) if existing else {}
    keys = set(existing.settings.shard_keys) if existing else set()
    for step in ctx.steps:
        if getattr(step, "collection", None) != collection:
            continue
        if isinstance(step, CreateCollection):
            strict |= step.settings.get("strict_mode", {})
        elif isinstance(step, UpdateCollection):
            strict |= step.changes.get("strict_mode", {})
        elif isinstance(step, SetPayloadIndex):
            (indexes.add if step.schema else indexes.discard)(step.field)
        elif isinstance(step, CreateShardKeys):
            keys |= set(step.keys)
    return indexes, strict, keys


# ---------------------------------------------------------------- MF: may fail or corrupt


@rule("MF301", "error", "alias swap without payload migration",
      "let qmspec copy the points (omit `source` or name the collection to copy from), or load them from `source.files`",
      allowable=False)
def swap_without_payloads(ctx: RuleContext):
    populated = {step.target if isinstance(step, CopyPoints) else step.collection for step in ctx.steps_of(CopyPoints, LoadFiles)}
    for swap in ctx.steps_of(SwapAlias):
        if swap.to_collection in populated or ctx.source is None or ctx.target is None:
            continue
        if ctx.target.points != ctx.source.points:
            yield (f"{swap.to_collection!r} holds {ctx.target.points} points but {ctx.source.name!r} holds {ctx.source.points}; "
                   "an alias only redirects queries, it copies nothing"), ("collection",)


@rule("MF302", "error", "model change without re-embedding",
      "give the collection a new name (`collection: <name>_v2`) so qmspec re-embeds every point into it", allowable=False)
def model_changed_in_place(ctx: RuleContext):
    if ctx.target is None or not ctx.target.points:  # an empty collection holds no vectors to mix (MF301 judges its swap)
        return
    for change in _changes_of(ctx.changes, ModelChanged):
        renamed = change.old.get("model") != change.new.get("model")
        what = "" if renamed else f" ({identity_change(change.old, change.new)})"  # the same name: say what else changed
        yield (f"{change.vector!r} in {ctx.target.name!r} holds vectors of {change.old.get('model')!r}; the spec says "
               f"{change.new.get('model')!r}{what}: re-embedding in place would mix two vector spaces"), \
            _vector_key(ctx.spec, change.vector) + ("model",)


@rule("MF303", "error", "hybrid migration without a sparse quality check",
      "add `verify.quality` with judgments and a fused `query:` that uses the sparse vector (or at least `verify.sparse`): "
      "chunk-level BM25 behaves differently, especially for non-English text")
def hybrid_without_sparse_check(ctx: RuleContext):
    fused = {entry["using"] for entry in ctx.spec.query_shape.get("prefetch", ())} | {ctx.spec.query_shape.get("using")}
    judged = ctx.spec.verify.quality and any(v.name in fused for v in ctx.spec.sparse_vectors)
    if ctx.spec.verify.sparse or judged:
        return
    had = ctx.source or ctx.target
    added = [v.name for v in ctx.spec.sparse_vectors if not (had and had.vector(v.name))]
    if added and ctx.spec.vectors:
        yield f"sparse vector(s) {', '.join(map(repr, added))} are new to this data and nothing checks their quality", ("verify",)


@rule("MF304", "warning", "Matryoshka truncation of a model not declared as trained for it",
      "truncate only Matryoshka-trained models and declare `model.matryoshka: true`, or re-embed with a smaller model")
def truncation_of_non_matryoshka(ctx: RuleContext):
    for copy in ctx.steps_of(CopyPoints):
        for name, carry in copy.carry.items():
            if not carry.truncate_to:
                continue
            spec_vector = ctx.spec.vector(name)
            recorded = ctx.source.recorded_model(carry.source_vector) if ctx.source else None
            declared = bool(spec_vector and spec_vector.model and spec_vector.model.matryoshka) or bool(recorded and recorded.get("matryoshka"))
            if not declared:
                yield f"{name!r} keeps the first {carry.truncate_to} dimensions of {carry.source_vector!r}; prefixes of other models lose much recall", _vector_key(ctx.spec, name)


@rule("MF305", "error", "vector added in place with nothing measuring its search quality",
      "add `verify.quality` with judgments (the guide's \"verify search quality\" before the switch), or at least `verify.search`")
def added_in_place_unmeasured(ctx: RuleContext):
    """The guide verifies the new vector's search quality before the application switches to it; presence counts
    alone say nothing of relevance. Sparse vectors are MF303's."""
    if ctx.spec.verify.quality or ctx.spec.verify.search:
        return
    for step in ctx.steps_of(CreateVector):
        if not step.sparse:
            yield (f"{step.vector!r} is added to live collection {step.collection!r} and nothing compares its results with what the "
                   "application queries now before the query switches to it"), _vector_key(ctx.spec, step.vector)
    created = {step.vector for step in ctx.steps_of(CreateVector)}
    for step in ctx.steps_of(SwitchQuery):
        for name in step.backfilled:
            if name not in created:
                yield (f"the query switches to {name!r}, backfilled in place, and nothing compares its results with "
                       f"{compact(step.previous) if step.previous else 'the query before'}"), ("query",)


@rule("MF307", "error", "the node's resource quota leaves too little room for the migration",
      "free disk or memory on the fullest node, or raise the quota (`PUT /quotas`); store the new vector on disk or quantized to "
      "need less; or accept MF307 if usage will fall meanwhile")
def quota_headroom(ctx: RuleContext):
    """Qdrant 1.19 refuses every write once a node is at its quota, with or without strict mode: an in-place add needs
    room for one more vector per point, a new collection about as much again as the one it replaces."""
    quota = ctx.live.quota
    if quota is None or not quota.enabled:
        return
    for resource in quota.exceeded:
        yield f"a node is over its {resource} quota now and refuses every write until usage falls below the limit", ("collection",)
    if quota.exceeded:
        return
    disk, memory = needed_bytes(ctx)
    for resource, need, limit, used, capacity in (("disk", disk, quota.max_disk_percent, quota.disk_percent, quota.disk_bytes),
                                                  ("memory", memory, quota.max_memory_percent, quota.memory_percent, quota.memory_bytes)):
        if not (need and limit and used is not None and capacity):
            continue
        room = max(limit - used, 0) / 100 * capacity
        if need > room:
            yield (f"this plan writes about {_size(need)} to {resource} ({', '.join(sorted(what_needs(ctx)))}); the {resource} quota "
                   f"({limit}% of {_size(capacity)}, {used}% used on the fullest node) leaves {_size(room)}: writes would be refused "
                   "midway"), ("collection",)


BYTES_PER_ELEMENT = {"float32": 4, "float16": 2, "uint8": 1}


def needed_bytes(ctx: RuleContext) -> tuple[int, int]:
    """(disk, memory) the plan's new vectors and collections take, estimated: a vector of n float32 dimensions takes 4n
    bytes per point (a multivector at least that); a new collection about what the one it replaces takes."""
    disk = memory = 0
    for step in ctx.steps_of(CreateVector):
        collection = ctx.live.collections.get(step.collection)
        if collection is None or step.sparse:
            continue
        size = collection.points * step.config["size"] * BYTES_PER_ELEMENT.get(step.config.get("datatype", "float32"), 4)
        disk += size
        memory += 0 if step.config.get("on_disk") else size
    for step in ctx.steps_of(CreateCollection):
        replaced = ctx.live.collections.get(step.inherited_from or "") or ctx.source
        if replaced is None:
            continue
        size = replaced.footprint or replaced.points * sum(config["size"] * BYTES_PER_ELEMENT.get(config.get("datatype", "float32"), 4)
                                                             for config in step.vectors.values())
        disk += size
        memory += sum(0 if config.get("on_disk") else replaced.points * config["size"] * 4 for config in step.vectors.values())
    return disk, memory


def what_needs(ctx: RuleContext) -> set[str]:
    return ({f"vector {step.vector} in {step.collection}" for step in ctx.steps_of(CreateVector) if not step.sparse}
            | {f"collection {step.collection}" for step in ctx.steps_of(CreateCollection)})


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


# ---------------------------------------------------------------- RQ: server capabilities


@rule("RQ401", "error", "adding or deleting a named vector in place needs Qdrant 1.18+",
      "give the collection a new name (the message names one): qmspec creates it with every vector, copies the points and swaps "
      "the alias, the guide's path before 1.18; or upgrade the server", allowable=False)
def vector_change_needs_1_18(ctx: RuleContext):
    if capabilities.supports(ctx.live.server_version, "create_vector_name"):
        return
    for step in ctx.steps_of(CreateVector, DeleteVector):
        yield (f"server {ctx.live.server_version} cannot {'add' if isinstance(step, CreateVector) else 'delete'} {step.vector!r} "
               f"in place; set `collection: {next_name(step.collection)}` in {ctx.spec.file}"), ("collection",)


@rule("RQ402", "error", "insert-only update mode needs Qdrant 1.17+",
      "set `migration.update_mode: upsert` (re-runs then overwrite copied points) or upgrade the server", allowable=False)
def update_mode_needs_1_17(ctx: RuleContext):
    if capabilities.supports(ctx.live.server_version, "update_mode"):
        return
    if any(step.update_mode == "insert_only" for step in ctx.steps_of(CopyPoints, LoadFiles)):
        yield f"server {ctx.live.server_version} has no update_mode", ("migration", "update_mode")


@rule("RQ403", "warning", "collection metadata needs Qdrant 1.16+",
      "upgrade the server; until then qmspec cannot record which model produced each vector, and same-size model changes go unseen")
def metadata_needs_1_16(ctx: RuleContext):
    if capabilities.supports(ctx.live.server_version, "collection_metadata"):
        return
    if ctx.steps_of(CreateCollection) or ctx.target is not None:
        yield f"server {ctx.live.server_version} stores no collection metadata", ("collection",)


@rule("RQ404", "error", "re-creating a vector name deleted in place needs Qdrant 1.19+",
      "give the vector another name, or upgrade the server to 1.19 (on 1.18 a re-created name can bring back the deleted "
      "vectors, qdrant#9317)", allowable=False)
def deleted_name_reused(ctx: RuleContext):
    if capabilities.supports(ctx.live.server_version, "vector_name_reuse_safe"):
        return
    for step in ctx.steps_of(CreateVector):
        collection = ctx.live.collections.get(step.collection)
        deleted = recorded(collection.metadata, "deleted", {}) if collection else {}
        if step.vector in deleted:
            yield (f"{step.vector!r} was deleted from {step.collection!r} at {deleted[step.vector]}; server "
                   f"{ctx.live.server_version} may resurrect its old values when the name is created again: Qdrant 1.19 fixes it"), \
                _vector_key(ctx.spec, step.vector)


@rule("RQ405", "error", "an unnamed vector cannot become named vectors in place",
      "give the collection a new name (the message names one): qmspec creates it with named vectors, copies the points and swaps "
      "the alias", allowable=False)
def unnamed_to_named_in_place(ctx: RuleContext):
    for step in ctx.steps_of(CreateVector):
        collection = ctx.live.collections.get(step.collection)
        if collection is not None and collection.unnamed:
            yield (f"{step.collection!r} holds one unnamed vector; Qdrant cannot add {step.vector!r} beside it or rename it; set "
                   f"`collection: {next_name(step.collection)}` in {ctx.spec.file}"), ("collection",)


def next_name(collection: str) -> str:
    """docs -> docs_v2, docs_v3 -> docs_v4: the new collection name a refusal suggests."""
    match = re.fullmatch(r"(.*_v)(\d+)", collection)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{collection}_v2"


def in_place_obstacle(collection: LiveCollection, live: LiveState) -> str | None:
    """Why named vectors cannot be added to `collection` in place on this server (None: they can)."""
    if collection.unnamed:
        return f"{collection.name} has an unnamed vector, which Qdrant cannot turn into named vectors in place"
    if not capabilities.supports(live.server_version, "create_vector_name"):
        return f"Qdrant {live.server_version} cannot add a named vector to a collection in place (1.18+)"
    return None


# ---------------------------------------------------------------- PF: performance


@rule("PF501", "error", "large multivectors (ColBERT) in RAM next to dense vectors during migration",
      "set `on_disk: true` on the multivector while the migration runs (co-located ColBERT vectors slow every query, dense ones too)")
def multivector_in_ram(ctx: RuleContext):
    """Also for a multivector added in place: Qdrant creates it with the collection's defaults (in RAM), and the plan
    moves it to disk right after, before the backfill, where the spec says `on_disk: true`."""
    multivectors = [v for v in ctx.spec.vectors if v.multivector and v.size >= LARGE_MULTIVECTOR_DIM and not v.on_disk]
    has_dense = any(not v.multivector for v in ctx.spec.vectors) or any(
        not vector.multivector for collection in (ctx.target,) if collection for vector in collection.vectors)
    if has_dense and ctx.steps:
        for vector in multivectors:
            yield f"{vector.name!r} is a {vector.size}-d multivector kept in RAM", ("vectors", vector.name, "on_disk")


@rule("PF502", "warning", "bulk load with HNSW indexing on",
      "set `migration.defer_indexing: hnsw_m0` (or `indexing_threshold`): the index is built once, after the load")
def indexing_not_deferred(ctx: RuleContext):
    loads = ctx.steps_of(CopyPoints, LoadFiles)
    if loads and ctx.spec.migration.defer_indexing == "none":
        points = sum(step.points for step in loads)
        yield f"{points} points would be indexed while they arrive", ("migration", "defer_indexing")


@rule("PF503", "warning", "batch size or parallel streams outside the advised range",
      "use `migration.batch_size` 64-256 and `migration.parallel` 1-4")
def batching_out_of_range(ctx: RuleContext):
    if not ctx.steps_of(CopyPoints, LoadFiles, EmbedVectors):
        return
    migration = ctx.spec.migration
    if not 64 <= migration.batch_size <= 256:
        yield f"batch_size {migration.batch_size}", ("migration", "batch_size")
    if migration.parallel > 4:
        yield f"parallel {migration.parallel} streams", ("migration", "parallel")


def _model_of(ctx: RuleContext, vector_name: str) -> str | None:
    """The model whose vectors `vector_name` will hold once the plan ran: the spec's model, or for a carried
    vector the model recorded on the source."""
    vector = ctx.spec.vector(vector_name)
    if vector is None:
        return None
    if vector.model is not None:
        return vector.model.name
    if vector.carry_from and ctx.source:
        recorded = ctx.source.recorded_model(vector.carry_from)
        return recorded.get("model") if recorded else None
    return None

