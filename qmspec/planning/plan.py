"""The plan as data: typed steps, rule findings, and the prior state it was made from.

A plan serializes to JSON and back to an equal object, and its hash is stable, so a plan saved in CI
is the plan applied on merge (Terraform's saved plans). qmspec's own vocabularies inside steps (a carried vector,
an embedding, the prior state, verify's checks) are frozen values with a JSON form of their own; Qdrant-shaped
configs (vector params, settings, queries) stay plain dicts. Sequences that are fields are tuples.

The JSON form of every value is what qmspec 0.1.0 wrote, so saved plans and journals of earlier versions load with
their hashes intact (tests/fixtures/plans-0.1): a field added later is left out of the JSON while it has its default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from ..errors import PlanFileError

PLAN_FORMAT = 2  # 2: the spec it was planned from, the preflight's facts and a content hash travel with it
READABLE_FORMATS = (1, 2)  # journals of applies begun by an older qmspec still resume
EMPTY_MEANS_NONE = {"json_when_none": {}}  # field metadata: an absent check is written `{}`, as 0.1.0 wrote it
SINCE_0_2 = {"json_omit_default": True}  # field metadata: left out of the JSON while at its default (0.1.0 had no such field)
MAX_PLAN_CHARS = 64 << 20  # a plan is a few kilobytes plus its spec


# ---------------------------------------------------------------- values inside steps


@dataclass(frozen=True)
class Carry:
    """A target vector copied from a stored one instead of embedded: unchanged, as a Matryoshka prefix, or through a
    linear map learned by the plan's `learn_adapter` step."""

    source_vector: str
    truncate_to: int | None = None
    adapter: bool = False

    def to_json(self) -> dict:
        return {"from": self.source_vector, "truncate_to": self.truncate_to} | ({"adapter": True} if self.adapter else {})

    @classmethod
    def from_json(cls, data: dict) -> Carry:
        return cls(data["from"], data.get("truncate_to"), bool(data.get("adapter")))


@dataclass(frozen=True)
class Embedding:
    """A vector embedded from a payload field with a model (its settings as the embedder takes them)."""

    model: dict
    text_field: str
    sparse: bool = False

    def to_json(self) -> dict:
        return {"model": self.model, "text_field": self.text_field, "sparse": self.sparse}

    @classmethod
    def from_json(cls, data: dict) -> Embedding:
        return cls(data["model"], data["text_field"], bool(data.get("sparse")))


@dataclass(frozen=True)
class Prior:
    """The live state a plan was made from: what a saved plan is checked against before it runs."""

    fingerprint: str
    server_version: str | None
    embedded: bool
    alias_target: str | None  # the collection the alias served
    collections: tuple[str, ...]  # the collections the fingerprint covers
    pins: dict = field(default_factory=dict)  # collection -> its own digest (None: absent), to say which one moved; since 0.2

    def to_json(self) -> dict:
        return {"fingerprint": self.fingerprint, "server_version": self.server_version, "embedded": self.embedded,
                "alias_target": self.alias_target, "collections": list(self.collections)} | ({"pins": self.pins} if self.pins else {})

    @classmethod
    def from_json(cls, data: dict) -> Prior:
        return cls(data["fingerprint"], data.get("server_version"), bool(data.get("embedded")), data.get("alias_target"),
                   tuple(data.get("collections", ())), data.get("pins") or {})


@dataclass(frozen=True)
class AgreementCheck:
    """verify.search / verify.sparse: overlap@k of the new results with a reference's. Agreement, never quality."""

    queries: tuple[str, ...]
    using: str | None
    k: int
    min_overlap: float
    against: str | None = None  # in place: the vector of the same collection the results agree with; since 0.2

    def to_json(self) -> dict:
        return ({"queries": list(self.queries), "using": self.using, "k": self.k, "min_overlap": self.min_overlap}
                | ({"against": self.against} if self.against else {}))

    @classmethod
    def from_json(cls, data: dict) -> AgreementCheck:
        return cls(tuple(data["queries"]), data.get("using"), data["k"], data["min_overlap"], data.get("against"))


@dataclass(frozen=True)
class ServingQuery:
    """What the alias serves now and the query the application runs there: the side a quality gate compares with."""

    collection: str
    query: dict  # {"using"} or {"prefetch", "fusion", "limit"}, Qdrant's Query API shape

    def to_json(self) -> dict:
        return {"collection": self.collection, "query": self.query}

    @classmethod
    def from_json(cls, data: dict) -> ServingQuery:
        return cls(data["collection"], data["query"])


@dataclass(frozen=True)
class QualityGates:
    """verify.quality: the judged queries run with the spec's query on the new collection and with the serving one's on
    what the alias serves now, scored with `metrics` and gated by floors (`minimum`) and the largest drop allowed."""

    judgments: tuple[str, ...]
    fingerprint: str  # of the judgment files' content
    metrics: tuple[str, ...]
    depth: int  # results per query: the largest cut-off
    minimum: dict  # metric -> floor
    max_drop: dict  # metric -> largest drop against what serves now
    query: dict
    current: ServingQuery | None
    confidence: float = 0.95  # of the intervals the gates decide on; since 0.2 (0.1.0 decided on the means)

    def to_json(self) -> dict:
        return {"judgments": list(self.judgments), "fingerprint": self.fingerprint, "metrics": list(self.metrics),
                "depth": self.depth, "min": self.minimum, "max_drop": self.max_drop, "query": self.query,
                "current": self.current.to_json() if self.current else None} | (
            {"confidence": self.confidence} if self.confidence != 0.95 else {})

    @classmethod
    def from_json(cls, data: dict) -> QualityGates:
        current = ServingQuery.from_json(data["current"]) if data.get("current") else None
        return cls(tuple(data["judgments"]), data["fingerprint"], tuple(data["metrics"]), data["depth"], data.get("min") or {},
                   data.get("max_drop") or {}, data.get("query") or {}, current, float(data.get("confidence", 0.95)))


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str] = ""

    @property
    def collections(self) -> tuple[str, ...]:
        """Collections this step reads or writes: what a saved plan's fingerprint must cover."""
        names = [getattr(self, name, None) for name in ("collection", "source", "target", "from_collection", "to_collection")]
        return tuple(name for name in names if name)


@dataclass(frozen=True)
class CreateCollection(Step):
    kind: ClassVar[str] = "create_collection"
    collection: str
    vectors: dict  # name -> {size, distance, on_disk, datatype, multivector?, hnsw?, quantization?}
    sparse_vectors: dict  # name -> {modifier, on_disk}
    settings: dict  # hnsw, optimizers, quantization, strict_mode, wal, shard_number, ...: inherited ones included
    deferred_indexing: dict  # what is switched off during the bulk load, e.g. {"hnsw": {"m": 0}}; {} for none
    metadata: dict
    inherited_from: str | None = None  # the collection it replaces, whose settings it starts from
    inherited: tuple[str, ...] = ()  # settings taken from it because the spec does not state them


@dataclass(frozen=True)
class SetPayloadIndex(Step):
    """Create, change (drop and re-create) or drop (schema None) the index of one payload field."""

    kind: ClassVar[str] = "set_payload_index"
    collection: str
    field: str
    schema: dict | None  # {"type": "keyword", "is_tenant": true, ...}
    previous: dict | None  # the index before, for rollback; None where there was none


@dataclass(frozen=True)
class CreateShardKeys(Step):
    """Custom sharding: the shard keys points are written to, created before any point is."""

    kind: ClassVar[str] = "create_shard_keys"
    collection: str
    keys: tuple[str | int, ...]


@dataclass(frozen=True)
class LoadFiles(Step):
    kind: ClassVar[str] = "load_files"
    collection: str
    files: tuple[str, ...]
    id_field: str
    embed: dict[str, Embedding]  # embedded on the way in
    batch_size: int
    parallel: int
    update_mode: str
    points: int


@dataclass(frozen=True)
class LearnAdapter(Step):
    """Embed a sample of texts with the new model, fit a least-squares map from the stored vectors to them, and
    measure it on held-out texts; fail, before anything is written, below min_recall."""

    kind: ClassVar[str] = "learn_adapter"
    source: str
    vector: str  # the target vector the map fills
    from_vector: str
    model: dict
    text_field: str
    sample: int
    min_recall: float


@dataclass(frozen=True)
class CopyPoints(Step):
    """Scroll the source, embed the new vectors on the way, upsert into the target: one write per point."""

    kind: ClassVar[str] = "copy_points"
    source: str
    target: str
    carry: dict[str, Carry]  # target vector -> where it is copied from
    embed: dict[str, Embedding]  # vectors embedded on the way
    batch_size: int
    parallel: int
    scroll_page: int
    update_mode: str
    points: int
    shard_keys: tuple[str | int, ...] = ()  # custom sharding: copied key by key, each point to the key it had
    partitions: int = 1  # id ranges cut at a sample of ids, each journaled on its own (applying/partitioned.py)


@dataclass(frozen=True)
class EmbedVectors(Step):
    """Backfill one vector of an existing collection from its payloads, with update_vectors."""

    kind: ClassVar[str] = "embed_vectors"
    collection: str
    vector: str
    sparse: bool
    model: dict  # name, backend, path, normalize, truncate_dim, options
    text_field: str
    batch_size: int
    parallel: int
    points: int
    shard_keys: tuple[str | int, ...] = ()
    partitions: int = 1  # as in copy_points

    @property
    def embedding(self) -> Embedding:
        return Embedding(self.model, self.text_field, self.sparse)


@dataclass(frozen=True)
class BackfillVector(EmbedVectors):
    """Fill a vector just added to a live collection from its points' texts while the application keeps writing (the
    current guide's in-place path, Qdrant 1.18+). Each write is conditional on the text it was embedded from
    (`update_filter`), so a text edited meanwhile is never given a vector of its old text, and each point's text hash
    goes in the vector's ledger, kept where the journal is, for the catch-ups that follow."""

    kind: ClassVar[str] = "backfill_vector"


@dataclass(frozen=True)
class CatchUpVector(Step):
    """Bring a vector backfilled in place up to date with what the application wrote since: embed the points that lack
    it (inserted, or re-written without it) and those whose text changed since their vector was computed (per the
    ledger), each write conditional on the text as read. Planned by every apply until the application's query uses it."""

    kind: ClassVar[str] = "catch_up_vector"
    collection: str
    vector: str
    sparse: bool
    model: dict
    text_field: str
    batch_size: int
    scroll_page: int
    shard_keys: tuple[str | int, ...] = ()

    @property
    def embedding(self) -> Embedding:
        return Embedding(self.model, self.text_field, self.sparse)


@dataclass(frozen=True)
class SwitchQuery(Step):
    """Record that the application runs `query` on the collection from now on (its deploy goes with this apply): rule
    BC201, `drift` and the drop of the vectors it stops using are judged against the recorded query. The vectors it
    starts using that were backfilled in place get one last catch-up right before."""

    kind: ClassVar[str] = "switch_query"
    collection: str
    query: dict  # Qdrant's Query API shape, as Spec.query_shape
    model: str | None  # the query model of a single-vector query
    previous: dict  # the recorded query before ({}: none was recorded)
    previous_model: str | None
    backfilled: tuple[str, ...]  # vectors it starts using that were backfilled in place


@dataclass(frozen=True)
class CatchUp(Step):
    """After the long copy and embedding: re-copy points that changed in the source meanwhile (payload hash),
    add the ones inserted, remove the ones deleted, and embed the vectors of every point it touched."""

    kind: ClassVar[str] = "catch_up"
    source: str
    target: str
    carry: dict[str, Carry]
    embed: dict[str, Embedding]  # as in copy_points: the vectors to re-embed for the points it rewrites
    batch_size: int
    scroll_page: int
    shard_keys: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class CreateVector(Step):
    kind: ClassVar[str] = "create_vector"
    collection: str
    vector: str
    sparse: bool
    config: dict


@dataclass(frozen=True)
class DeleteVector(Step):
    kind: ClassVar[str] = "delete_vector"
    collection: str
    vector: str
    sparse: bool


@dataclass(frozen=True)
class UpdateCollection(Step):
    kind: ClassVar[str] = "update_collection"
    collection: str
    changes: dict  # what update_collection sends: settings, per-vector settings, metadata
    previous: dict  # the same keys as they are live, for rollback


@dataclass(frozen=True)
class RestoreIndexing(Step):
    kind: ClassVar[str] = "restore_indexing"
    collection: str
    settings: dict  # the settings deferred_indexing replaced, as they should be after the load


@dataclass(frozen=True)
class Verify(Step):
    kind: ClassVar[str] = "verify"
    source: str | None  # collection the points came from; None where they came from files or are adopted as they are
    source_files: tuple[str, ...]
    id_field: str
    target: str
    expected_points: int
    count: bool
    vectors: tuple[str, ...]
    payload_mode: str
    payload_sample: int
    search: AgreementCheck | None = field(default=None, metadata=EMPTY_MEANS_NONE)
    sparse: AgreementCheck | None = field(default=None, metadata=EMPTY_MEANS_NONE)
    settings: dict = field(default_factory=dict)  # what the target must have before it serves: CollectionSettings.stated()
    quality: QualityGates | None = field(default=None, metadata=EMPTY_MEANS_NONE)
    in_place: bool = field(default=False, metadata=SINCE_0_2)  # new vectors of a live collection, before its query switches


@dataclass(frozen=True)
class SwapAlias(Step):
    kind: ClassVar[str] = "swap_alias"
    alias: str
    from_collection: str | None
    to_collection: str


@dataclass(frozen=True)
class DeleteCollection(Step):
    kind: ClassVar[str] = "delete_collection"
    collection: str
    after: tuple[str, ...]  # step kinds that must have succeeded first


class StepTable:
    """One function per step type, like alembic's `dispatch_for`: rendering and executing each keep a table, so a
    step is reviewed as text or run from the same value, with no isinstance ladder. A step type without an entry
    fails loudly; a test checks that every table covers every type."""

    def __init__(self, purpose: str):
        self.purpose = purpose
        self.functions: dict[type[Step], Callable] = {}

    def register(self, *step_types: type[Step]) -> Callable:
        def add(function: Callable) -> Callable:
            for step_type in step_types:
                self.functions[step_type] = function
            return function

        return add

    def __call__(self, step: Step, *args):
        function = self.functions.get(type(step))
        if function is None:
            raise TypeError(f"no {self.purpose} for step kind {step.kind}")
        return function(step, *args)


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (CreateCollection, CreateShardKeys, SetPayloadIndex, LoadFiles, LearnAdapter, CopyPoints, EmbedVectors, CatchUp, CreateVector,
                BackfillVector, CatchUpVector, SwitchQuery, DeleteVector, UpdateCollection, RestoreIndexing, Verify, SwapAlias,
                DeleteCollection)
}


@dataclass(frozen=True)
class Work:
    """Texts a step embeds with one model: for one vector, `texts` of them, read from `collection` or `files`."""

    vector: str
    embedding: Embedding
    texts: int
    collection: str | None = None
    files: tuple[str, ...] = ()
    id_field: str = "id"


embeds = StepTable("embedding work")  # step -> the Work it embeds: what model needs, estimates and loading read


@embeds.register(CopyPoints)
def _copy_embeds(step: CopyPoints) -> tuple[Work, ...]:
    return tuple(Work(vector, embedding, step.points, collection=step.source) for vector, embedding in step.embed.items())


@embeds.register(LoadFiles)
def _load_embeds(step: LoadFiles) -> tuple[Work, ...]:
    return tuple(Work(vector, embedding, step.points, files=step.files, id_field=step.id_field) for vector, embedding in step.embed.items())


@embeds.register(EmbedVectors, BackfillVector)
def _backfill_embeds(step: EmbedVectors) -> tuple[Work, ...]:
    return (Work(step.vector, step.embedding, step.points, collection=step.collection),)


@embeds.register(LearnAdapter)
def _adapter_embeds(step: LearnAdapter) -> tuple[Work, ...]:
    return (Work(step.vector, Embedding(step.model, step.text_field), step.sample + max(step.sample // 4, 10), collection=step.source),)


@embeds.register(CatchUp)
def _catch_up_embeds(step: CatchUp) -> tuple[Work, ...]:
    """The points it rewrites are not known before it runs: the models, not a count."""
    return tuple(Work(vector, embedding, 0, collection=step.source) for vector, embedding in step.embed.items())


@embeds.register(CatchUpVector)
def _vector_catch_up_embeds(step: CatchUpVector) -> tuple[Work, ...]:
    return (Work(step.vector, step.embedding, 0, collection=step.collection),)


@embeds.register(CreateCollection, CreateShardKeys, SetPayloadIndex, CreateVector, DeleteVector, UpdateCollection, RestoreIndexing,
                 Verify, SwapAlias, DeleteCollection, SwitchQuery)
def _embeds_nothing(step: Step) -> tuple[Work, ...]:
    return ()


HOOK_POINTS = ("pre_apply", "pre_swap", "post_swap", "on_failure")


@dataclass(frozen=True)
class Hook:
    """A command of the team's own run around the apply (Flyway's callbacks): `pre_apply` before the first step,
    `pre_swap` before the alias swap or the query switch, `post_swap` after it, `on_failure` when a step fails. It
    gets the apply's facts (QMSPEC_*) and, of the environment, only PATH, HOME, the locale and the variables `env`
    names: a key reaches a hook only when the spec says so."""

    point: str  # one of HOOK_POINTS
    run: str  # a shell command, run from the spec's folder
    timeout_s: float = 300.0
    env: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict) -> Hook:
        return cls(data["point"], data["run"], data.get("timeout_s", 300.0), tuple(data.get("env", ())))

    def to_json(self) -> dict:
        return {"point": self.point, "run": self.run, "timeout_s": self.timeout_s} | ({"env": list(self.env)} if self.env else {})


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # error, warning, info
    title: str
    message: str
    fix: str
    key: str = ""  # spec key path it concerns
    line: int | None = None
    allowed: bool = False  # listed in policy.allow: reported, does not refuse
    accepted: dict | None = field(default=None, metadata=SINCE_0_2)  # the policy.allow entry: {reason, until}, expired or not

    @property
    def refuses(self) -> bool:
        return self.severity == "error" and not self.allowed


@dataclass(frozen=True)
class Plan:
    alias: str
    collection: str
    spec_file: str
    spec_hash: str
    prior: Prior
    steps: tuple[Step, ...]
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    estimate: dict = field(default_factory=dict)  # {"points_to_copy", "points_to_load", "vectors_to_embed", "vectors_to_carry"}
    spec_text: str = ""  # the spec as planned: a saved plan is checked by planning it again, never trusted
    env: str | None = None  # the environment whose overlay was merged in
    models: dict = field(default_factory=dict)  # model name -> the preflight's facts the plan was made with
    format: int = PLAN_FORMAT
    against: dict | None = field(default=None, metadata=SINCE_0_2)  # what it was planned against: {kind, where, version, existed, chosen_by}
    strategy: str = field(default="", metadata=SINCE_0_2)  # the guide's path the planner chose, and why, in a sentence
    hooks: tuple[Hook, ...] = field(default=(), metadata=SINCE_0_2)  # the spec's hooks, in the plan so a review sees them

    def hook(self, point: str) -> Hook | None:
        return next((hook for hook in self.hooks if hook.point == point), None)

    @property
    def refused(self) -> bool:
        return any(finding.refuses for finding in self.findings)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    def stale_reason(self, live) -> str | None:
        """Why this plan no longer fits `live` (a LiveState), or None if live state is as it was planned against."""
        if live.fingerprint(self.prior.collections, self.alias) == self.prior.fingerprint:
            return None
        if live.server_version != self.prior.server_version:
            return f"the server version moved from {self.prior.server_version} to {live.server_version}"
        current_target = live.aliases.get(self.alias)
        if current_target != self.prior.alias_target:
            return f"alias {self.alias} now serves {current_target}, not {self.prior.alias_target}"
        moved = [name for name, pin in live.pins(self.prior.collections).items() if self.prior.pins and self.prior.pins.get(name) != pin]
        if moved:
            said = [f"{name} ({'created' if self.prior.pins.get(name) is None else 'deleted' if name not in live.collections else 'its settings or point count changed'})"
                    for name in moved]
            return f"since it was made: {', '.join(said)}"
        return "the collections it touches, their point counts or the aliases serving them changed since it was made"

    def to_dict(self) -> dict:
        data = _fields(self)
        data["steps"] = [{"kind": step.kind, **_fields(step)} for step in self.steps]
        return data

    def to_json(self) -> str:
        """The plan file: its content and the hash of that content, so an edit shows."""
        return json.dumps(self.to_dict() | {"hash": self.hash}, indent=2) + "\n"  # key order kept: renders identically

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        if data.get("format") not in READABLE_FORMATS:
            raise PlanFileError(f"plan format {data.get('format')!r} is not {PLAN_FORMAT}; re-run `qmspec plan` with this qmspec")
        try:
            steps = tuple(_build(STEP_TYPES[step["kind"]], {k: v for k, v in step.items() if k != "kind"}) for step in data["steps"])
            findings = tuple(_build(Finding, finding) for finding in data.get("findings", []))
            rest = {k: v for k, v in data.items() if k not in ("steps", "findings")}
            return _build(cls, rest | {"steps": steps, "findings": findings})
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlanFileError(f"the plan file is damaged or was edited by hand ({exc}); re-run `qmspec plan`") from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        if len(text) > MAX_PLAN_CHARS:
            raise PlanFileError(f"not a plan file: {len(text) >> 20} MiB of text, far more than any plan; re-run `qmspec plan --out`")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanFileError(f"not a plan file: invalid JSON at line {exc.lineno}; re-run `qmspec plan --out`") from None
        except RecursionError:
            raise PlanFileError("not a plan file: nested too deeply to be one; re-run `qmspec plan --out`") from None
        if not isinstance(data, dict):
            raise PlanFileError("not a plan file: expected a JSON object; re-run `qmspec plan --out`")
        if data.get("format") != PLAN_FORMAT:
            raise PlanFileError(f"plan format {data.get('format')!r} was written by another qmspec; re-run `qmspec plan --out`")
        stored = data.pop("hash", None)
        plan = cls.from_dict(data)
        if stored != plan.hash:
            raise PlanFileError("the plan file was changed after `qmspec plan` wrote it (its content no longer matches its hash); "
                                "plan again and review the new file")
        return plan


def _fields(obj) -> dict:
    return {f.name: _jsonable(getattr(obj, f.name), f) for f in dataclasses.fields(obj)
            if not (f.metadata.get("json_omit_default") and getattr(obj, f.name) == f.default)}


def _jsonable(value, declared: dataclasses.Field | None = None):
    if value is None and declared is not None and "json_when_none" in declared.metadata:
        return declared.metadata["json_when_none"]
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value):
        return _fields(value)
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _build(cls, values: dict):
    """Construct a dataclass from JSON values: typed values from their JSON form, lists back into tuples."""
    hints = typing.get_type_hints(cls)
    declared = {f.name: f for f in dataclasses.fields(cls)}
    return cls(**{name: _decode(hints.get(name), value, declared.get(name)) for name, value in values.items()})


def _decode(hint, value, declared: dataclasses.Field | None = None):
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (declared is not None and value == declared.metadata.get("json_when_none", object())):
            return None
        typed = [argument for argument in arguments if argument is not type(None)]
        return _decode(typed[0], value) if len(typed) == 1 else value
    if origin is tuple and isinstance(value, list):
        item = arguments[0] if arguments else None
        return tuple(item.from_json(entry) if hasattr(item, "from_json") and isinstance(entry, dict) else entry for entry in value)
    if origin is dict and len(arguments) == 2 and hasattr(arguments[1], "from_json"):
        return {key: arguments[1].from_json(item) for key, item in value.items()}
    if isinstance(hint, type) and hasattr(hint, "from_json") and isinstance(value, dict):
        return hint.from_json(value)
    return value
