"""(Spec, LiveState) -> Plan. Pure: builds the ordered steps the spec asks for, then lets the rules judge them.

Two shapes:
- the spec's collection does not exist: create it, fill it (copy from a collection or load files), embed or
  carry each vector, restore indexing, verify, swap the alias, and delete the old only if asked, last;
- it exists: change in place what Qdrant can change in place, then point the alias at it if needed.
Changes Qdrant cannot make in place are not planned around: the rules refuse them and name the way out.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import QmspecError
from .capabilities import NOT_APPLICABLE_EMBEDDED, applies
from .diff import (Change, CollectionSetting, ModelUnrecorded, PayloadIndexChanged, ShardKeysMissing, VectorAdded, VectorRemoved, VectorSetting,
                   applicable, diff_collection, identity_change, same_model, setting_name)
from .modelfacts import ModelFacts
from .livestate import (METADATA_KEY, LiveCollection, LiveDenseVector, LiveSparseVector, LiveState, query_vectors, recorded,
                        recorded_vectors)
from .plan import (AgreementCheck, BackfillVector, CatchUp, CatchUpVector, CopyPoints, CreateCollection, CreateShardKeys, CreateVector,
                   DeleteCollection, DeleteVector, EmbedVectors, Carry, Embedding, LearnAdapter, LoadFiles, Plan, Prior, QualityGates,
                   RestoreIndexing, ServingQuery, SetPayloadIndex, Step, SwapAlias, SwitchQuery, UpdateCollection, Verify, embeds)
from .rules import RuleContext, check_rules, in_place_obstacle, next_name
from .partitions import partition_count
from .settings import PAYLOAD_INDEXES, SHARD_KEYS, CollectionSettings
from .spec import DenseVectorSpec, SearchCheck, Spec, SparseVectorSpec

DEFAULT_HNSW_M = 16
DEFAULT_INDEXING_THRESHOLD = 20000


class PlanningError(QmspecError):
    """The spec cannot be planned against this live state (not a safety refusal: there is no plan at all)."""


@dataclass(frozen=True)
class Situation:
    alias_target: str | None
    target: LiveCollection | None
    source: LiveCollection | None
    models: dict  # model name -> ModelFacts from a preflight; empty when none ran
    replaced: LiveCollection | None = None  # what the alias serves now, or else the source: a new collection starts from its settings
    serving: LiveCollection | None = None  # what the alias serves now


def plan_migration(spec: Spec, live: LiveState, spec_file: str | None = None, models: dict[str, ModelFacts] | None = None,
                   against: dict | None = None) -> Plan:
    """`models` are the facts a preflight learned (commit, time per text): recorded and estimated where given;
    `against` says what the live state was read from (the server or store), for the plan's reader."""
    situation = dataclasses.replace(assess(spec, live), models=models or {})
    notes: list[str] = []
    if situation.target is None:
        steps = new_collection_steps(spec, live, situation, notes)
        changes: tuple[Change, ...] = ()
    else:
        changes = tuple(_applicable(diff_collection(spec, situation.target), live, notes))
        steps = in_place_steps(spec, live, situation, changes, notes) + alias_steps(spec, live, situation)
    steps = tuple(steps)
    findings = check_rules(RuleContext(spec, live, situation.alias_target, situation.target, situation.source, changes, steps))
    touched = sorted({name for step in steps for name in step.collections} | {spec.collection} |
                     ({situation.source.name} if situation.source else set()))
    return Plan(
        alias=spec.alias,
        collection=spec.collection,
        spec_file=spec_file or spec.file,
        spec_hash=spec.spec_hash,
        prior=Prior(live.fingerprint(touched, spec.alias), live.server_version, live.embedded, situation.alias_target, tuple(touched),
                    live.pins(touched)),
        steps=steps,
        findings=findings,
        notes=tuple(notes),
        estimate=estimate(steps, situation.models),
        spec_text=spec.text,
        env=spec.env,
        hooks=spec.hooks,
        models={name: dataclasses.asdict(facts) for name, facts in sorted(situation.models.items())},
        against=against,
        strategy=strategy(spec, live, situation, steps),
    )


def assess(spec: Spec, live: LiveState) -> Situation:
    if spec.alias in live.collections:
        raise PlanningError(f"alias {spec.alias!r} is the name of an existing collection; Qdrant keeps one namespace for both. "
                            "Rename the collection (migrate it under a new name) or choose another alias")
    alias_target = live.aliases.get(spec.alias)
    target = live.collections.get(spec.collection)
    source_name = spec.source.collection or (alias_target if spec.source.kind == "alias" else None)
    if source_name == spec.collection:
        source_name = None  # the alias already serves the target: nothing to copy from
    if spec.source.collection and spec.source.collection not in live.collections:
        raise PlanningError(f"source collection {spec.source.collection!r} does not exist; check source.collection in {spec.file}")
    if target is None and spec.source.kind == "alias" and alias_target is None:
        raise PlanningError(f"alias {spec.alias!r} does not exist yet, so there is nothing to copy points from; "
                            f"add `source: {{files: [...]}}` to {spec.file} to load them from files")
    source = live.collections.get(source_name) if source_name else None
    serving = live.collections.get(alias_target) if alias_target else None
    replaced = serving if serving is not None and alias_target != spec.collection else source
    return Situation(alias_target, target, source, {}, replaced, serving)


def _applicable(changes: list[Change], live: LiveState, notes: list[str]) -> list[Change]:
    """The changes the connected store can make; the others become one note (the embedded store ignores HNSW,
    quantization, payload indexes, ... and would report them as changed forever)."""
    ignored = sorted({(f"{c.vector}." if c.vector else "") + setting_name(c) for c in changes if not applicable(c, live.embedded)})
    if ignored:
        notes.append(f"settings {', '.join(ignored)}: {NOT_APPLICABLE_EMBEDDED} (a Qdrant server applies them)")
    return [change for change in changes if applicable(change, live.embedded)]


def collection_settings(spec: Spec, situation: Situation) -> tuple[CollectionSettings, tuple[str, ...]]:
    """A new collection's settings: the replaced collection's, with the spec's laid over them (kept by default, as
    Qdrant's migration tool does), and the names of those inherited."""
    base = situation.replaced
    if base is None:
        return spec.settings, ()
    return spec.settings.over(base.settings), tuple(spec.settings.inherited_from(base.settings))


# ---------------------------------------------------------------- a new collection


def new_collection_steps(spec: Spec, live: LiveState, situation: Situation, notes: list[str]) -> list[Step]:
    migration = spec.migration
    settings, inherited = collection_settings(spec, situation)
    if applies(SHARD_KEYS, live.embedded):
        _require_custom_sharding(spec, settings)
    deferred, restored = _deferral(spec, settings)
    wanted = settings.stated()
    indexes = wanted.pop(PAYLOAD_INDEXES, {})
    steps: list[Step] = [CreateCollection(
        collection=spec.collection,
        vectors={v.name: _dense_config(v) for v in spec.vectors},
        sparse_vectors={v.name: _sparse_config(v) for v in spec.sparse_vectors},
        settings=wanted,
        deferred_indexing=deferred,
        metadata={},
        inherited_from=situation.replaced.name if inherited else None,
        inherited=inherited,
    )]
    ignored = sorted(name for name in wanted if not applies(name, live.embedded)) + ([PAYLOAD_INDEXES] if indexes and live.embedded else [])
    if ignored:
        notes.append(f"settings {', '.join(ignored)}: {NOT_APPLICABLE_EMBEDDED} (created as stated; a Qdrant server applies them)")
    if wanted.get(SHARD_KEYS) and applies(SHARD_KEYS, live.embedded):
        steps.append(CreateShardKeys(spec.collection, tuple(wanted[SHARD_KEYS])))
    # tenant and principal indexes shape how Qdrant lays out storage, so they come before the points; the others
    # after the bulk load, before the HNSW graph is built, so the graph gets its payload-aware links
    early, late = _payload_index_steps(spec.collection, {} if live.embedded else indexes)
    steps += early
    source = situation.source
    carry: dict[str, Carry] = {}
    embed: list[DenseVectorSpec | SparseVectorSpec] = []
    for vector in (*spec.vectors, *spec.sparse_vectors):
        decision = carry_decision(vector, source, situation.models)
        notes.append(f"{vector.name}: {decision.reason}")
        if decision.carry_from is not None:
            adapted = bool(getattr(vector, "adapter", None))
            carry[vector.name] = Carry(decision.carry_from, decision.truncate_to, adapted)
            if adapted:
                steps.append(LearnAdapter(source.name, vector.name, decision.carry_from, vector.model.settings,
                                          vector.text_field, vector.adapter["sample"], vector.adapter["min_recall"]))
        else:
            embed.append(vector)
    models = situation.models
    kept_metadata = {key: value for key, value in (situation.replaced.metadata if situation.replaced else {}).items() if key != METADATA_KEY}
    steps[0] = dataclasses.replace(steps[0], metadata=kept_metadata | stamp(spec, carried_identities(spec, source, carry, models), models=models))
    embedding = {vector.name: embedding_of(vector) for vector in embed}
    on_copy = embedding if migration.embed == "on_copy" else {}
    if spec.source.files:
        points = sum(live.files.get(path, 0) for path in spec.source.files)
        steps.append(LoadFiles(spec.collection, spec.source.files, spec.source.id_field, on_copy, migration.batch_size,
                               migration.parallel, migration.update_mode, points))
    else:
        points = source.points
        keys = _keys_to_copy(spec, source, settings)
        steps.append(CopyPoints(source.name, spec.collection, carry, on_copy, migration.batch_size, migration.parallel,
                                migration.scroll_page, migration.update_mode, points, keys,
                                1 if keys else partition_count(migration.partitions, points)))
    if not on_copy:
        steps += [_embed_step(spec, spec.collection, vector, points, settings) for vector in embed]
    if source is not None:
        steps.append(CatchUp(source.name, spec.collection, carry, embedding, migration.batch_size, migration.scroll_page,
                             _keys_to_copy(spec, source, settings)))
    if spec.cleanup_old == "delete" and spec.cleanup_when == "immediately" and situation.alias_target:
        steps.append(DeleteCollection(situation.alias_target, after=()))
    steps += late
    if deferred:
        steps.append(RestoreIndexing(spec.collection, restored))
    steps.append(_verify_step(spec, source, points, _checkable(settings.stated(), live), situation.serving))
    steps.append(SwapAlias(spec.alias, situation.alias_target, spec.collection))
    if spec.cleanup_old == "delete" and spec.cleanup_when == "after_verify" and situation.alias_target:
        steps.append(DeleteCollection(situation.alias_target, after=("verify", "swap_alias")))
    return steps


@dataclass(frozen=True)
class CarryDecision:
    carry_from: str | None  # None: embed with the spec's model
    truncate_to: int | None
    reason: str


def carry_decision(vector: DenseVectorSpec | SparseVectorSpec, source: LiveCollection | None, models: dict | None = None) -> CarryDecision:
    """Whether a vector can be copied from the source instead of re-embedded, and why (shown in the plan). `models`:
    what a preflight learned (the commit a name resolves to now)."""
    sparse = isinstance(vector, SparseVectorSpec)
    adapter = getattr(vector, "adapter", None)
    stored = source.vector((adapter or {}).get("from") or vector.carry_from or vector.name) if source else None
    if adapter:
        return _adapted(vector, source, stored)
    if vector.carry_from:
        return _explicit_carry(vector, source, stored, sparse)
    model = vector.model
    if source is None:
        return CarryDecision(None, None, f"embed with {model.name} (points come from files)")
    if stored is None or isinstance(stored, LiveSparseVector) != sparse:
        return CarryDecision(None, None, f"embed with {model.name} (new to this data)")
    recorded = source.recorded_model(vector.name)
    if recorded is None:
        return CarryDecision(None, None, f"embed with {model.name} ({source.name} records no model for it)")
    wanted = wanted_identity(vector, models)
    if same_model(recorded, wanted) and (sparse or _same_shape(vector, stored)):
        return CarryDecision(vector.name, None, f"carry from {source.name} (same model {model.name}: no re-embedding)")
    if (not sparse and model.matryoshka and recorded.get("model") == model.name and model.truncate_dim
            and stored.size > model.truncate_dim and stored.distance == vector.distance):
        return CarryDecision(vector.name, model.truncate_dim,
                             f"truncate {source.name}.{vector.name} {stored.size} -> {model.truncate_dim} (Matryoshka prefix of {model.name}: no model run)")
    if recorded.get("model") == model.name:  # the same name: say what else changed (revision, prompts, ...)
        return CarryDecision(None, None, f"re-embed with {model.name} (stored vectors come from {model.name}; {identity_change(recorded, wanted)})")
    return CarryDecision(None, None, f"re-embed with {model.name} (stored vectors come from {recorded.get('model')})")


def wanted_identity(vector, models: dict | None) -> dict:
    """The identity the spec's model has here: the spec's, and the commit its name resolved to where a preflight ran."""
    facts = (models or {}).get(vector.model.name)
    return vector.model.identity | ({"commit": facts.commit} if facts and facts.commit else {})


def _adapted(vector: DenseVectorSpec, source: LiveCollection | None, stored) -> CarryDecision:
    where = f"vectors.{vector.name}.adapter.from"
    if source is None or not isinstance(stored, LiveDenseVector) or stored.multivector:
        raise PlanningError(f"{where}: the source has no dense vector {vector.adapter['from']!r} to map; "
                            "an adapter maps stored dense vectors of a source collection")
    return CarryDecision(vector.adapter["from"], None,
                         f"map {source.name}.{vector.adapter['from']} ({stored.size}-d) into {vector.model.name} with a linear map "
                         f"learned from {vector.adapter['sample']} texts (the model runs on those only; recall@10 on held-out "
                         f"texts must reach {vector.adapter['min_recall']})")


def _explicit_carry(vector, source, stored, sparse: bool) -> CarryDecision:
    where = f"{'sparse_vectors' if sparse else 'vectors'}.{vector.name}.carry.from"
    if source is None or stored is None:
        raise PlanningError(f"{where}: source collection {source.name if source else '(none)'!r} has no vector {vector.carry_from!r}; "
                            "carry a vector the source has, or embed with `model:`")
    if isinstance(stored, LiveSparseVector) != sparse:
        raise PlanningError(f"{where}: {vector.carry_from!r} is {'dense' if sparse else 'sparse'} in {source.name!r}; carry a vector of the same kind")
    if sparse:
        return CarryDecision(vector.carry_from, None, f"carry {source.name}.{vector.carry_from} unchanged")
    if stored.size < vector.size or stored.multivector != vector.multivector:
        raise PlanningError(f"{where}: {source.name}.{vector.carry_from} is {stored.size}-d"
                            f"{' multivector' if stored.multivector else ''}; it cannot fill a {vector.size}-d vector")
    if stored.size > vector.size:
        return CarryDecision(vector.carry_from, vector.size,
                             f"truncate {source.name}.{vector.carry_from} {stored.size} -> {vector.size} (Matryoshka: no model run)")
    return CarryDecision(vector.carry_from, None, f"carry {source.name}.{vector.carry_from} unchanged (no re-embedding)")


def _same_shape(vector: DenseVectorSpec, stored: LiveDenseVector) -> bool:
    return (vector.size, vector.distance, vector.multivector) == (stored.size, stored.distance, stored.multivector)


def _payload_index_steps(collection: str, indexes: dict) -> tuple[list[Step], list[Step]]:
    early = [SetPayloadIndex(collection, name, schema, None) for name, schema in indexes.items()
             if schema.get("is_tenant") or schema.get("is_principal")]
    late = [SetPayloadIndex(collection, name, schema, None) for name, schema in indexes.items()
            if not (schema.get("is_tenant") or schema.get("is_principal"))]
    return early, late


def _checkable(settings: dict, live: LiveState) -> dict:
    """The settings verify can check on this store: the embedded one reports none of those it ignores."""
    return {name: value for name, value in settings.items() if applies(name, live.embedded)}


def _sparse_config(vector: SparseVectorSpec) -> dict:
    return {"modifier": vector.modifier, "on_disk": vector.on_disk} | ({"index": vector.index} if vector.index else {})


def _dense_config(vector: DenseVectorSpec) -> dict:
    config = {"size": vector.size, "distance": vector.distance, "on_disk": vector.on_disk, "datatype": vector.datatype}
    if vector.multivector:
        config["multivector"] = vector.multivector
    if vector.hnsw:
        config["hnsw"] = vector.hnsw
    if vector.quantization is not None:
        config["quantization"] = vector.quantization
    return config


def _deferral(spec: Spec, settings: CollectionSettings) -> tuple[dict, dict]:
    """What the bulk load switches off, and what restores it: the new collection's value (stated or inherited) or
    Qdrant's default."""
    mode = spec.migration.defer_indexing
    if mode == "hnsw_m0":
        return {"hnsw": {"m": 0}}, {"hnsw": {"m": settings.hnsw.get("m", DEFAULT_HNSW_M)}}
    if mode == "indexing_threshold":
        return ({"optimizers": {"indexing_threshold": 0}},
                {"optimizers": {"indexing_threshold": settings.optimizers.get("indexing_threshold", DEFAULT_INDEXING_THRESHOLD)}})
    return {}, {}


def stamp(spec: Spec, carried: dict | None = None, only: list[str] | None = None, models: dict | None = None) -> dict:
    """Collection metadata recording which model produced each vector, so a later plan can tell a same-size
    model change (MiniLM 384 -> bge-small 384) from no change. `carried` gives the identity of vectors copied
    from the source: they keep the model that made them, whatever the spec calls them now."""
    carried = carried or {}
    vectors = {}
    for vector in (*spec.vectors, *spec.sparse_vectors):
        if only is not None and vector.name not in only:
            continue
        if vector.name in carried:
            vectors[vector.name] = carried[vector.name]
        elif vector.model:
            vectors[vector.name] = recorded_identity(vector, models)
    stamped = {"alias": spec.alias, "spec_hash": spec.spec_hash, "vectors": vectors}
    query = {"query": spec.query_shape} | ({"query_model": spec.query_model} if spec.query_model else {}) if spec.query_shape else {}
    return {METADATA_KEY: stamped | query}


def recorded_identity(vector, models: dict[str, ModelFacts] | None = None) -> dict:
    """What metadata says of a vector a model produced: the identity compared by later plans (name, revision,
    prompts, truncation), the commit the name resolved to where a preflight learned it, and the portable settings
    that let verification (and the application's tooling) embed queries the same way. Never a local path."""
    identity = dict(vector.model.identity)
    facts = (models or {}).get(vector.model.name)
    if facts and facts.commit:
        identity["commit"] = facts.commit
    if vector.model.matryoshka:
        identity["matryoshka"] = True
    if isinstance(vector, SparseVectorSpec):
        identity["sparse"] = True
    return identity | {"text_field": vector.text_field, "model_settings": vector.model.portable_settings}


def carried_identities(spec: Spec, source: LiveCollection | None, carry: dict[str, Carry], models: dict) -> dict:
    identities = {}
    for name, how in carry.items():
        vector = spec.vector(name)
        if vector.model:  # the source holds this model's vectors, or they are mapped into its space
            identities[name] = recorded_identity(vector, models)
            if how.adapter:
                identities[name] |= {"adapted_from": f"{source.name}.{how.source_vector}", "adapter_sample": vector.adapter["sample"]}
            continue
        recorded = dict(source.recorded_model(how.source_vector) or {"model": None})
        if how.truncate_to:
            recorded["truncate_dim"] = how.truncate_to
            if recorded.get("model_settings"):  # queries must be truncated the same way
                recorded["model_settings"] = recorded["model_settings"] | {"truncate_dim": how.truncate_to}
        identities[name] = recorded | {"carried_from": f"{source.name}.{how.source_vector}"}
    return identities


def embedding_of(vector) -> Embedding:
    return Embedding(vector.model.settings, vector.text_field, isinstance(vector, SparseVectorSpec))


def _embed_step(spec: Spec, collection: str, vector, points: int, settings: CollectionSettings,
                kind: type[EmbedVectors] = EmbedVectors) -> EmbedVectors:
    embedding = embedding_of(vector)
    keys = _custom_keys(settings)
    return kind(collection=collection, vector=vector.name, sparse=embedding.sparse, model=embedding.model,
                        text_field=embedding.text_field, batch_size=spec.migration.batch_size,
                        parallel=spec.migration.parallel, points=points, shard_keys=keys,
                        partitions=1 if keys else partition_count(spec.migration.partitions, points))


def _custom_keys(settings: CollectionSettings) -> tuple:
    return tuple(settings.shard_keys) if settings.sharding_method == "custom" else ()


def _require_custom_sharding(spec: Spec, settings: CollectionSettings) -> None:
    if spec.settings.shard_keys and settings.sharding_method != "custom":
        raise PlanningError(f"shard_keys in {spec.file} need custom sharding, and {spec.collection} would use "
                            f"{settings.sharding_method or 'auto'} sharding; set `sharding_method: custom` (for a new collection) or "
                            "remove `shard_keys`")


def _keys_to_copy(spec: Spec, source: LiveCollection, settings: CollectionSettings) -> tuple:
    """The shard keys a copy goes through one by one: those of a custom-sharded source, when the new collection is
    custom-sharded too (into an auto-sharded one, Qdrant places points by id)."""
    if settings.sharding_method != "custom":
        return ()
    if source.settings.sharding_method != "custom":
        raise PlanningError(f"{spec.collection} would use custom sharding, but {source.name} does not, so no point has a shard key "
                            f"to be written to; remove `sharding_method: custom` from {spec.file}, or load the points with their keys yourself")
    return _custom_keys(source.settings)


def _verify_step(spec: Spec, source: LiveCollection | None, points: int, settings: dict, current: LiveCollection | None) -> Verify:
    verify = spec.verify
    return Verify(
        source=source.name if source else None,
        source_files=spec.source.files if source is None else (),
        id_field=spec.source.id_field,
        target=spec.collection,
        expected_points=points,
        count=verify.count,
        vectors=tuple(v.name for v in (*spec.vectors, *spec.sparse_vectors)) if verify.vectors else (),
        payload_mode=verify.payload_mode,
        payload_sample=verify.payload_sample,
        search=_agreement(verify.search),
        sparse=_agreement(verify.sparse),
        settings=settings,
        quality=_quality_args(spec, current),
    )


def _quality_args(spec: Spec, current: LiveCollection | None) -> QualityGates | None:
    """The judged queries run on the new collection with the spec's query, and on what the alias serves now with the
    query the application runs there (recorded by qmspec, or the spec's restricted to the vectors it has)."""
    check = spec.verify.quality
    if check is None:
        return None
    serving = None
    if current is not None and current.name != spec.collection:
        shape = current_query(spec.query_shape, current)
        serving = ServingQuery(current.name, shape) if shape else None
    return QualityGates(check.judgments, check.fingerprint, check.metrics, check.depth, check.minimum, check.max_drop,
                        spec.query_shape, serving, check.confidence)


def current_query(wanted: dict, current: LiveCollection, excluding: list[str] = ()) -> dict | None:
    """The query that runs on `current`: the one qmspec recorded there, else `wanted` restricted to the vectors
    `current` records a runnable model for (verify's baseline, compare's bare collection). `excluding`: vectors being
    added in place, which hold nothing the application queries yet."""
    runnable = {name for name, identity in recorded_vectors(current.metadata).items()
                if identity.get("model_settings") and name not in excluding}
    recorded_query = recorded(current.metadata, "query")
    if recorded_query and query_vectors(recorded_query) <= runnable:
        return recorded_query
    vectors = [entry["using"] for entry in wanted.get("prefetch", [wanted])] if wanted else []
    kept = [entry for entry in wanted.get("prefetch", ()) if entry["using"] in runnable]
    if len(kept) > 1:
        return wanted | {"prefetch": kept}
    usable = [name for name in vectors if name in runnable] or sorted(name for name in runnable if current.vector(name)
                                                                       and isinstance(current.vector(name), LiveDenseVector))
    return {"using": usable[0]} if usable else None


def _agreement(check: SearchCheck | None, fresh: str | None = None, now: dict | None = None) -> AgreementCheck | None:
    """verify.search / verify.sparse as verify runs them. In place (`fresh`: the new dense vector, `now`: the query the
    application runs), the new vector's results agree with the old vector's on the same collection."""
    if not check:
        return None
    if fresh and now and "using" in now and now["using"] != fresh:
        return AgreementCheck(check.queries, fresh, check.k, check.min_overlap, against=now["using"])
    return AgreementCheck(check.queries, check.using, check.k, check.min_overlap)


# ---------------------------------------------------------------- an existing collection


def in_place_steps(spec: Spec, live: LiveState, situation: Situation, changes: tuple[Change, ...], notes: list[str]) -> list[Step]:
    """Settings, indexes and shard keys changed in place; then the current guide's path for vectors (Qdrant 1.18+ with
    named vectors): add each new vector, backfill it while the application writes, catch it up, verify it against what
    the application queries now on the same collection, switch the recorded query, and drop what that query no longer
    uses once the observation window has passed. The rules refuse what the server cannot do, naming the spec change."""
    target = situation.target
    if any(isinstance(change, ShardKeysMissing) for change in changes):
        _require_custom_sharding(spec, target.settings)
    steps: list[Step] = []
    update, previous = _in_place_update(spec, target, changes, situation.models)
    if update:
        steps.append(UpdateCollection(target.name, update, previous))
    for change in changes:
        if isinstance(change, ShardKeysMissing):
            steps.append(CreateShardKeys(target.name, tuple(change.new)))
        elif isinstance(change, PayloadIndexChanged):
            steps.append(SetPayloadIndex(target.name, change.field, change.new, change.old))
        elif isinstance(change, ModelUnrecorded):
            notes.append(f"{change.vector}: {target.name} records no model; assuming its vectors come from "
                         f"{change.new['model']} and recording it")
    added = [spec.vector(change.vector) for change in changes if isinstance(change, VectorAdded)]
    for vector in added:
        if vector.carry_from:
            raise PlanningError(f"{vector.name}: `carry` copies from another collection and needs a new one; "
                                f"change `collection:` in {spec.file}, or embed it with `model:`")
        sparse = isinstance(vector, SparseVectorSpec)
        config = {"modifier": vector.modifier} if sparse else _dense_config(vector)  # create_vector_name, then its settings
        steps.append(CreateVector(target.name, vector.name, sparse, config))
        steps.append(_embed_step(spec, target.name, vector, target.points, target.settings, BackfillVector))
        notes.append(f"{vector.name}: add to {target.name} in place and embed with {vector.model.name}")
    fresh = [vector.name for vector in added] + backfilling(spec, target)
    for name in fresh:
        steps.append(_catch_up_vector(spec, target, spec.vector(name)))
    serving_query, serving_model = recorded(target.metadata, "query", {}), recorded(target.metadata, "query_model")
    switching = situation.alias_target == target.name and bool(spec.query_shape) and (
        spec.query_shape != serving_query or bool(serving_model and spec.query_model and serving_model != spec.query_model))
    if added or (switching and query_vectors(spec.query_shape) & set(fresh)):
        steps.append(_verify_in_place(spec, live, target, fresh))
    if switching and (serving_query or query_vectors(spec.query_shape) & set(fresh)):
        steps.append(SwitchQuery(target.name, spec.query_shape, spec.query_model, serving_query, recorded(target.metadata, "query_model"),
                                 tuple(name for name in fresh if name in query_vectors(spec.query_shape))))
    for change in changes:
        if isinstance(change, VectorRemoved):
            steps.append(DeleteVector(target.name, change.vector, change.sparse))
    return steps


def backfilling(spec: Spec, target: LiveCollection) -> list[str]:
    """Vectors an earlier apply added in place that the application's recorded query does not use yet: until it does,
    the application writes only the old ones, so each apply catches these up."""
    return [name for name in recorded(target.metadata, "backfill", {}) if spec.vector(name) and target.vector(name)]


def _catch_up_vector(spec: Spec, target: LiveCollection, vector) -> CatchUpVector:
    embedding = embedding_of(vector)
    return CatchUpVector(target.name, vector.name, embedding.sparse, embedding.model, embedding.text_field, spec.migration.batch_size,
                         spec.migration.scroll_page, _custom_keys(target.settings))


def _verify_in_place(spec: Spec, live: LiveState, target: LiveCollection, fresh: list[str]) -> Verify:
    """Verify on the same collection: every point holds every vector (a named-vector write can be dropped silently,
    qdrant#9521), and the judged queries run with the query that uses the new vectors beside the query the
    application runs now, on the same points."""
    verify = spec.verify
    now = current_query(spec.query_shape, target, excluding=fresh)
    candidate = _candidate_query(spec, fresh)
    quality = None
    if verify.quality and candidate:
        check = verify.quality
        quality = QualityGates(check.judgments, check.fingerprint, check.metrics, check.depth, check.minimum, check.max_drop, candidate,
                               ServingQuery(target.name, now) if now else None, check.confidence)
    return Verify(source=None, source_files=(), id_field=spec.source.id_field, target=target.name, expected_points=target.points,
                  count=False, vectors=tuple(v.name for v in (*spec.vectors, *spec.sparse_vectors)) if verify.vectors else (),
                  payload_mode="off", payload_sample=verify.payload_sample,
                  search=_agreement(verify.search, fresh_dense(spec, fresh), now), sparse=_agreement(verify.sparse),
                  settings=_checkable(spec.settings.stated(), live), quality=quality, in_place=True)


def fresh_dense(spec: Spec, fresh: list[str]) -> str | None:
    dense = [name for name in fresh if isinstance(spec.vector(name), DenseVectorSpec)]
    return dense[0] if len(dense) == 1 else None


def _candidate_query(spec: Spec, fresh: list[str]) -> dict | None:
    """The query verify scores for the new vectors: the spec's where it uses them, else the one new dense vector alone."""
    if query_vectors(spec.query_shape) & set(fresh):
        return spec.query_shape
    dense = fresh_dense(spec, fresh)
    return {"using": dense} if dense else None


def _in_place_update(spec: Spec, target: LiveCollection, changes: tuple[Change, ...], models: dict) -> tuple[dict, dict]:
    update: dict = {}
    previous: dict = {}
    for change in changes:
        if isinstance(change, CollectionSetting):
            update[change.field], previous[change.field] = change.new, _same_keys(change.old, change.new)
        elif isinstance(change, VectorSetting):
            group = "sparse_vectors" if change.sparse else "vectors"
            update.setdefault(group, {}).setdefault(change.vector, {})[change.field] = change.new
            previous.setdefault(group, {}).setdefault(change.vector, {})[change.field] = _same_keys(change.old, change.new)
    stamped_vectors = [c.vector for c in changes if isinstance(c, (ModelUnrecorded, VectorAdded))]
    added = [c.vector for c in changes if isinstance(c, VectorAdded)]
    if stamped_vectors:
        current = target.metadata.get(METADATA_KEY) or {}
        stamped = stamp(spec, only=stamped_vectors, models=models)[METADATA_KEY]
        record = current | stamped | {"vectors": (current.get("vectors") or {}) | stamped["vectors"]}
        for key in ("query", "query_model"):  # the application's query changes when this plan switches it, not before
            record.pop(key, None)
            if key in current:
                record[key] = current[key]
        if added:
            record["backfill"] = (current.get("backfill") or {}) | {name: {"text_field": spec.vector(name).text_field} for name in added}
        update["metadata"] = {METADATA_KEY: record}
        previous["metadata"] = {METADATA_KEY: current or None}
    return update, previous


def _same_keys(old, new):
    """The live value restricted to the keys the spec changes: what a rollback must put back."""
    if isinstance(old, dict) and isinstance(new, dict) and new:
        return {key: old.get(key) for key in new}
    return old


def alias_steps(spec: Spec, live: LiveState, situation: Situation) -> list[Step]:
    if situation.alias_target == spec.collection:
        return []
    expected = situation.source.points if situation.source else situation.target.points
    steps: list[Step] = [_verify_step(spec, situation.source, expected, _checkable(spec.settings.stated(), live), situation.serving),
                         SwapAlias(spec.alias, situation.alias_target, spec.collection)]
    if spec.cleanup_old == "delete" and situation.alias_target:
        after = ("verify", "swap_alias") if spec.cleanup_when == "after_verify" else ()
        delete = DeleteCollection(situation.alias_target, after=after)
        steps = [delete] + steps if spec.cleanup_when == "immediately" else steps + [delete]
    return steps


def estimate(steps: tuple[Step, ...], models: dict[str, ModelFacts]) -> dict:
    copies = [step for step in steps if isinstance(step, CopyPoints)]
    moves = [step for step in steps if isinstance(step, (CopyPoints, LoadFiles))]
    figures = {
        "points_to_copy": sum(step.points for step in copies),
        "points_to_load": sum(step.points for step in steps if isinstance(step, LoadFiles)),
        "vectors_to_embed": sum(step.points for step in steps if isinstance(step, EmbedVectors))
        + sum(step.points * len(step.embed) for step in moves),
        "vectors_to_carry": sum(step.points * len(step.carry) for step in copies),
    }
    work = [work for step in steps if not isinstance(step, LearnAdapter) for work in embeds(step) if work.texts]
    embedding = [{"vector": item.vector, "model": item.embedding.model["name"]} | models[item.embedding.model["name"]].estimate(item.texts)
                 for item in work if item.embedding.model["name"] in models]
    return figures | ({"embedding": embedding} if embedding else {})


# ---------------------------------------------------------------- the guide's path, said


def strategy(spec: Spec, live: LiveState, situation: Situation, steps: tuple[Step, ...]) -> str:
    """Which path of Qdrant's model-migration guide the plan takes, and why, in one sentence for the plan's reader."""
    target, old = situation.target, situation.replaced
    if target is None:
        if old is None:
            return f"new collection: {spec.collection} is created, filled and verified, then alias {spec.alias} points at it"
        return (f"new collection and alias swap: {spec.collection} is built beside {old.name}, verified, then alias {spec.alias} "
                f"swaps to it atomically, {old.name} staying the rollback target; {_why_not_in_place(old, live)}")
    added = [step.vector for step in steps if isinstance(step, CreateVector)]
    if added:
        cannot = in_place_obstacle(target, live)
        if cannot:
            return f"needs a new collection: {cannot}; set `collection: {next_name(target.name)}` in {spec.file}"
        return (f"in place: add {', '.join(added)} to {target.name}, backfill while the application writes, verify on the same "
                f"collection, then switch the query (the guide's zero-downtime path on Qdrant 1.18+ with named vectors: no second "
                f"collection, no alias swap)")
    said = []
    catch_up = [step.vector for step in steps if isinstance(step, CatchUpVector)]
    if catch_up:
        said.append(f"catch up {', '.join(catch_up)} with the application's writes (its recorded query does not use "
                    f"{'them' if len(catch_up) > 1 else 'it'} yet)")
    if any(isinstance(step, SwitchQuery) for step in steps):
        said.append("switch the application's recorded query once verified")
    dropped = [step.vector for step in steps if isinstance(step, DeleteVector)]
    if dropped:
        said.append(f"drop {', '.join(dropped)} (irreversible), which the recorded query no longer uses")
    if any(isinstance(step, (UpdateCollection, SetPayloadIndex, CreateShardKeys)) for step in steps) and not said:
        said.append(f"change {target.name}'s settings")
    if any(isinstance(step, SwapAlias) for step in steps):
        said.append(f"point alias {spec.alias} at {target.name}")
    return f"in place: {'; '.join(said)}" if said else ""


def _why_not_in_place(old: LiveCollection, live: LiveState) -> str:
    obstacle = in_place_obstacle(old, live)
    if obstacle:
        return f"the guide's path here because {obstacle}"
    return (f"chosen by the new `collection:` name (keeping {old.name} would add the new vectors to it in place, as the guide "
            "advises on Qdrant 1.18+ with named vectors)")
