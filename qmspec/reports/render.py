"""Plan -> text (like `terraform plan`), Markdown (for pull requests) or JSON. Rendering never decides anything."""
from __future__ import annotations

from ..planning.livestate import METADATA_KEY, recorded_vectors
from ..planning.flow import compact
from ..planning.modelfacts import duration
from ..planning.plan import (BackfillVector, CatchUp, CatchUpVector, CopyPoints, CreateCollection, CreateShardKeys, CreateVector,
                             DeleteCollection, DeleteVector, EmbedVectors, LearnAdapter, LoadFiles, Plan, RestoreIndexing, SetPayloadIndex, Step,
                             StepTable, SwapAlias, SwitchQuery, UpdateCollection, Verify)
from ..planning.settings import PAYLOAD_INDEXES

SYMBOLS = {CreateCollection: "+", LoadFiles: "+", CopyPoints: "+", EmbedVectors: "+", CreateVector: "+", CreateShardKeys: "+",
           BackfillVector: "+", SetPayloadIndex: "~", CatchUpVector: "~", SwitchQuery: "~",
           CatchUp: "~", LearnAdapter: "?",
           UpdateCollection: "~", RestoreIndexing: "~", Verify: "?", SwapAlias: "~",
           DeleteVector: "-", DeleteCollection: "-"}


def symbol(step: Step) -> str:
    """Terraform's marks: + adds, ~ changes, - removes; ? checks without changing anything."""
    if isinstance(step, SwapAlias) and step.from_collection is None:
        return "+"
    if isinstance(step, SetPayloadIndex):
        return "-" if step.schema is None else "+" if step.previous is None else "~"
    return SYMBOLS[type(step)]


def render(plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return plan.to_json()
    if fmt == "markdown":
        return render_markdown(plan)
    return render_text(plan)


# ---------------------------------------------------------------- describing steps


describe = StepTable("description")  # step -> (one-line title, detail lines), shared by every output format


def title(step: Step) -> str:
    return describe(step)[0]


@describe.register(CreateCollection)
def _create_collection(step: CreateCollection) -> tuple[str, list[str]]:
    details = [_vector_line(name, config) for name, config in step.vectors.items()]
    details += [f"sparse {name}: modifier {config['modifier']}{', on disk' if config['on_disk'] else ''}"
                + (f", index {compact(config['index'])}" if config.get("index") else "")
                for name, config in step.sparse_vectors.items()]
    kept_from = f" (kept from {step.inherited_from})"
    details += [f"{key}: {compact(value)}{kept_from if key in step.inherited else ''}" for key, value in step.settings.items()]
    kept_indexes = [name.split(".", 1)[1] for name in step.inherited if name.startswith(PAYLOAD_INDEXES + ".")]
    if kept_indexes:
        details.append(f"payload indexes on {', '.join(kept_indexes)}{kept_from}: created by the steps below")
    if step.deferred_indexing:
        details.append(f"indexing off during the load: {compact(step.deferred_indexing)}")
    models = {name: v.get("model") or "unknown model" for name, v in recorded_vectors(step.metadata).items()}
    details.append("metadata records " + ", ".join(f"{name} <- {model}" for name, model in models.items()))
    kept_metadata = sorted(key for key in step.metadata if key != METADATA_KEY)
    if kept_metadata:
        details.append(f"metadata {', '.join(kept_metadata)} kept from {step.inherited_from or 'the collection it replaces'}")
    return f"create collection {step.collection}", details


@describe.register(LoadFiles)
def _load_files(step: LoadFiles) -> tuple[str, list[str]]:
    return (f"load {step.points:,} points into {step.collection} from {len(step.files)} file(s)",
            [", ".join(step.files), _embedding(step.embed), _batching(step)])


@describe.register(CopyPoints)
def _copy_points(step: CopyPoints) -> tuple[str, list[str]]:
    carried = [f"{name} <- {c.source_vector}" + (f" truncated to {c.truncate_to}" if c.truncate_to else "")
               + (" through the learned map" if c.adapter else "") for name, c in step.carry.items()]
    what = "payloads and vectors " + ", ".join(carried) if carried else "payloads (scroll without vectors)"
    details = [what, _embedding(step.embed), _batching(step, scroll=step.scroll_page), _partitioning(step)]
    return f"copy {step.points:,} points {step.source} -> {step.target}", [line for line in details if line]


def _partitioning(step: CopyPoints | EmbedVectors) -> str:
    if step.partitions > 1:
        return (f"in {step.partitions} partitions of about {step.points // step.partitions:,} points: id ranges cut at a sample of "
                "ids, each journaled on its own; `apply --workers N` or `--engine ray` runs them in parallel (against the "
                "embedded store the workers only embed, the driver reads and writes)")
    return f"shard key by shard key: {', '.join(map(str, step.shard_keys))}" if step.shard_keys else ""


@describe.register(EmbedVectors)
def _embed_vectors(step: EmbedVectors) -> tuple[str, list[str]]:
    kind = "sparse " if step.sparse else ""
    details = [f"{step.points:,} points, text from payload field {step.text_field!r}, batches of {step.batch_size}", _partitioning(step)]
    return (f"embed {kind}{step.vector} in {step.collection} with {step.model['name']} ({step.model['backend']})",
            [line for line in details if line])


@describe.register(BackfillVector)
def _backfill_vector(step: BackfillVector) -> tuple[str, list[str]]:
    title, details = _embed_vectors(step)
    return (title.replace("embed ", "backfill ", 1) + " while the application writes",
            details + ["each write conditional on the text it was embedded from; text hashes kept in the vector's ledger"])


@describe.register(CatchUpVector)
def _catch_up_vector(step: CatchUpVector) -> tuple[str, list[str]]:
    return (f"catch up {'sparse ' if step.sparse else ''}{step.vector} in {step.collection} with the application's writes",
            [f"embed with {step.model['name']} the points that lack it and those whose {step.text_field!r} changed since (ledger), "
             "conditional on the text as read"])


@describe.register(SwitchQuery)
def _switch_query(step: SwitchQuery) -> tuple[str, list[str]]:
    before = _query(step.previous, step.previous_model) if step.previous else "none recorded"
    details = [f"recorded query: {before} -> {_query(step.query, step.model)}; deploy the application's query change with this apply"]
    if step.backfilled:
        details.append(f"last catch-up of {', '.join(step.backfilled)} right before")
    return f"switch the application's query on {step.collection}", details


def _query(query: dict, model: str | None) -> str:
    if "prefetch" in query:
        return f"{query['fusion']} of {' + '.join(entry['using'] for entry in query['prefetch'])}"
    return query["using"] + (f" ({model})" if model else "")


@describe.register(LearnAdapter)
def _learn_adapter(step: LearnAdapter) -> tuple[str, list[str]]:
    return (f"learn a linear map {step.source}.{step.from_vector} -> {step.model['name']} for {step.vector}",
            [f"embed {step.sample} texts (+{max(step.sample // 4, 10)} held out) with {step.model['name']}; least squares; "
             f"stop before any write if recall@10 < {step.min_recall}"])


@describe.register(CatchUp)
def _catch_up(step: CatchUp) -> tuple[str, list[str]]:
    redo = f"; re-embed {', '.join(step.embed)} for the points it rewrites" if step.embed else ""
    return (f"catch up {step.target} with {step.source}",
            [f"copy points changed, added or deleted in {step.source} during the migration (payload hashes){redo}"])


@describe.register(CreateVector)
def _create_vector(step: CreateVector) -> tuple[str, list[str]]:
    return f"create {'sparse ' if step.sparse else ''}vector {step.vector} in live collection {step.collection}", [compact(step.config)]


@describe.register(DeleteVector)
def _delete_vector(step: DeleteVector) -> tuple[str, list[str]]:
    return (f"delete {'sparse ' if step.sparse else ''}vector {step.vector} from live collection {step.collection}",
            ["IRREVERSIBLE: its stored values are gone; rollback cannot bring them back"])


@describe.register(UpdateCollection)
def _update_collection(step: UpdateCollection) -> tuple[str, list[str]]:
    details = [f"{key}: {compact(step.previous.get(key))} -> {compact(value)}" for key, value in step.changes.items()
               if key != "metadata"]
    if "metadata" in step.changes:
        recorded = recorded_vectors(step.changes["metadata"])
        details.append("metadata records " + ", ".join(f"{name} <- {v.get('model')}" for name, v in recorded.items()))
    return f"update collection {step.collection} in place (no re-embedding)", details


@describe.register(CreateShardKeys)
def _create_shard_keys(step: CreateShardKeys) -> tuple[str, list[str]]:
    return f"create shard keys {compact(list(step.keys))} in {step.collection}", ["points are written to the key they had"]


@describe.register(SetPayloadIndex)
def _set_payload_index(step: SetPayloadIndex) -> tuple[str, list[str]]:
    where = f"payload field {step.field!r} of {step.collection}"
    if step.schema is None:
        return f"drop the index on {where}", [f"was {compact(step.previous)}"]
    if step.previous is not None:
        return f"re-index {where}", [f"{compact(step.previous)} -> {compact(step.schema)}"]
    return f"index {where}: {compact(step.schema)}", []


@describe.register(RestoreIndexing)
def _restore_indexing(step: RestoreIndexing) -> tuple[str, list[str]]:
    return f"restore indexing on {step.collection}: {compact(step.settings)}", ["then wait for the collection to turn green"]


@describe.register(Verify)
def _verify(step: Verify) -> tuple[str, list[str]]:
    if step.in_place:
        compared = (f": {_query(step.quality.query, None)} against {_query(step.quality.current.query, None)}"
                    if step.quality and step.quality.current else "")
        return f"verify {step.target} in place{compared}", [_gates(step)]
    against = step.source or (f"{len(step.source_files)} source file(s)" if step.source_files else "")
    return f"verify {step.target}" + (f" against {against}" if against else " as it is"), [_gates(step)]


@describe.register(SwapAlias)
def _swap_alias(step: SwapAlias) -> tuple[str, list[str]]:
    if step.from_collection:
        return f"swap alias {step.alias}: {step.from_collection} -> {step.to_collection} (atomic)", []
    return f"create alias {step.alias} -> {step.to_collection}", []


@describe.register(DeleteCollection)
def _delete_collection(step: DeleteCollection) -> tuple[str, list[str]]:
    gate = f"only after {' and '.join(step.after)} succeeded" if step.after else "not gated on verification"
    return f"delete collection {step.collection}", [gate]


def _embedding(embed: dict) -> str:
    """Embedding done on the way in, one line per model."""
    return "; ".join(f"embed {'sparse ' if how.sparse else ''}{vector} with {how.model['name']} "
                     f"({how.model['backend']}) from payload field {how.text_field!r}" for vector, how in embed.items())


def _vector_line(name: str, config: dict) -> str:
    parts = [f"vector {name}: {config['size']} {config['distance']} {config['datatype']}"]
    if config.get("multivector"):
        parts.append(f"multivector {config['multivector']}")
    if config["on_disk"]:
        parts.append("on disk")
    for key in ("hnsw", "quantization"):
        if key in config:
            parts.append(f"{key} {compact(config[key])}")
    return ", ".join(parts)


def _batching(step, scroll: int | None = None) -> str:
    text = f"batches of {step.batch_size}, {step.parallel} stream(s), update mode {step.update_mode}"
    return f"{text}, scroll pages of {scroll}" if scroll else text


def _gates(step: Verify) -> str:
    gates = []
    if step.count:
        gates.append(f"count = {step.expected_points:,}")
    if step.vectors:
        gates.append("every point has " + ", ".join(step.vectors))
    if step.payload_mode != "off":
        gates.append(f"payloads ({step.payload_mode if step.payload_mode == 'all' else f'sample of {step.payload_sample}'})")
    for name, check in (("search", step.search), ("sparse", step.sparse)):
        if check:
            gates.append(f"{name} on {check.using}{f' against {check.against}' if check.against else ''}: {len(check.queries)} queries, "
                         f"overlap@{check.k} >= {check.min_overlap}")
    if step.settings:
        gates.append("settings " + ", ".join(step.settings))
    if step.quality:
        quality = step.quality
        limits = [f"min {metric} {value}" for metric, value in quality.minimum.items()]
        limits += [f"max_drop {metric} {value}" + ("" if quality.current else " (n/a: nothing to compare with)")
                   for metric, value in quality.max_drop.items()]
        against = f" and on {quality.current.collection}" if quality.current and quality.current.collection != step.target else ""
        gates.append(f"quality: {', '.join(quality.metrics)} of judged queries ({', '.join(quality.judgments)}) on {step.target}{against}"
                     + (f"; {', '.join(limits)}" if limits else ""))
    return "; ".join(gates) if gates else "no gates"


def kept(plan: Plan) -> list[str]:
    """What the plan leaves as it is on purpose, so a reviewer sees the way back is still there."""
    old = plan.prior.alias_target
    moves = any(isinstance(step, SwapAlias) for step in plan.steps)
    deleted = {step.collection for step in plan.steps if isinstance(step, DeleteCollection)}
    if moves and old and old not in deleted:
        return [f"keep collection {old} as the rollback target (delete it after the swap with `qmspec cleanup`, or plan it with `cleanup.old_collection: delete`)"]
    return []


def summary(plan: Plan) -> str:
    if not plan.steps:
        if plan.refused:
            return "Plan: no step can be planned for the changes the spec asks for."
        return f"No changes. Alias {plan.alias} and collection {plan.collection} match the spec."
    kinds = [type(step) for step in plan.steps]
    e = plan.estimate
    return (f"Plan: collections {kinds.count(CreateCollection)} to create, {kinds.count(UpdateCollection)} to change in place, "
            f"{kinds.count(DeleteCollection)} to delete; aliases {kinds.count(SwapAlias)} to point; "
            f"points {e['points_to_copy']:,} to copy, {e['points_to_load']:,} to load; vectors {e['vectors_to_embed']:,} to embed, "
            f"{e['vectors_to_carry']:,} to carry" + _in_place_counts(kinds) + ".")


def _in_place_counts(kinds: list[type]) -> str:
    added, dropped = kinds.count(CreateVector), kinds.count(DeleteVector)
    if not (added or dropped):
        return ""
    return f"; named vectors {added} to add in place, {dropped} to drop" + (" (irreversible)" if dropped else "")


def estimates(plan: Plan) -> list[str]:
    """Embedding time (and for APIs tokens and cost) from the figures the preflight measured."""
    lines = []
    for figure in plan.estimate.get("embedding", []):
        parts = [f"{figure['texts']:,} texts"]
        if "tokens" in figure:
            parts.append(f"about {figure['tokens']:,} tokens")
        if "cost" in figure:
            parts.append(f"about ${figure['cost']:,.2f}")
        if "seconds" in figure:
            parts.append("under 1s" if figure["seconds"] < 1 else f"about {duration(figure['seconds'])}")
        lines.append(f"{figure['vector']} with {figure['model']}: " + ", ".join(parts))
    return lines


def verdict(plan: Plan) -> str:
    refusing = sorted({f.code for f in plan.findings if f.refuses})
    if refusing:
        return f"Plan refused by {len(refusing)} rule(s): {', '.join(refusing)}. Fix the spec or, where a rule allows it, accept it in policy.allow."
    return ""


def _where(plan: Plan, finding) -> str:
    if finding.line:
        return f"{plan.spec_file}:{finding.line} {finding.key}".rstrip()
    return f"{plan.spec_file} {finding.key}".rstrip()


# ---------------------------------------------------------------- text


def render_text(plan: Plan) -> str:
    prior = plan.prior
    server = "embedded Qdrant" if prior.embedded else "Qdrant"
    lines = [f"qmspec plan for alias {plan.alias} -> collection {plan.collection} ({server} {prior.server_version or 'version unknown'})"]
    if plan.against:
        lines.append(f"against {against(plan.against)}")
    lines.append(f"alias {plan.alias} serves {prior.alias_target} now" if prior.alias_target else f"alias {plan.alias} does not exist yet")
    if plan.strategy:
        lines.append(f"strategy: {plan.strategy}")
    if plan.steps:
        lines.append("")
    for number, step in enumerate(plan.steps, 1):
        title, details = describe(step)
        lines.append(f"  {symbol(step)} {number}. {title}")
        lines += [f"        {detail}" for detail in details if detail]
    lines += [f"  = {line}" for line in kept(plan)]
    if plan.hooks:
        lines += ["", "Hooks (the team's own commands, run around the steps):"] + [f"  {hooked(hook)}" for hook in plan.hooks]
    if plan.notes:
        lines += ["", "Vectors:"] + [f"  {note}" for note in plan.notes]
    if plan.findings:
        lines += ["", "Rules:"]
        for finding in plan.findings:
            status = "accepted" if finding.allowed else finding.severity
            lines.append(f"  {status:<8} {finding.code} {finding.title}")
            lines.append(f"           {finding.message}")
            lines.append(f"           at {_where(plan, finding)}")
            lines.append(f"           fix: {finding.fix}")
            if finding.allowed:
                lines.append(f"           {acceptance(finding)}")
    if estimates(plan):
        lines += ["", "Estimates (measured on a sample by the preflight; the store's own ingest not included):"]
        lines += [f"  {line}" for line in estimates(plan)]
    lines += ["", summary(plan)]
    if verdict(plan):
        lines.append(verdict(plan))
    return "\n".join(lines) + "\n"


def hooked(hook) -> str:
    """pre_swap: ./deploy.sh (timeout 10m; also gets DEPLOY_TOKEN)"""
    handed = f"; also gets {', '.join(hook.env)}" if hook.env else ""
    return f"{hook.point}: {hook.run} (timeout {duration(hook.timeout_s)}{handed})"


def acceptance(finding) -> str:
    """What policy.allow said of an accepted finding: why, and until when."""
    entry = finding.accepted or {}
    said = f"accepted in policy.allow: {entry['reason']}" if entry.get("reason") else "accepted in policy.allow, with no reason given"
    return said + (f", until {entry['until']}" if entry.get("until") else ", with no end")


# ---------------------------------------------------------------- markdown


def render_markdown(plan: Plan) -> str:
    icon = "refused" if plan.refused else ("changes" if plan.steps else "no changes")
    lines = [f"### qmspec plan: `{plan.alias}` → `{plan.collection}` ({icon})", ""]
    if plan.against:
        lines += [f"Against {against(plan.against, markdown=True)}.", ""]
    target = plan.prior.alias_target
    lines.append(f"Alias `{plan.alias}` serves `{target}` now." if target else f"Alias `{plan.alias}` does not exist yet.")
    if plan.strategy:
        lines += ["", f"Strategy: {_md(plan.strategy)}."]
    lines.append("")
    if plan.steps:
        lines += ["| # | | step | details |", "|---|---|---|---|"]
        for number, step in enumerate(plan.steps, 1):
            title, details = describe(step)
            lines.append(f"| {number} | `{symbol(step)}` | {_md(title)} | {'<br>'.join(_md(d) for d in details if d)} |")
        lines += [f"| | `=` | {_md(line)} | |" for line in kept(plan)]
        lines.append("")
    if plan.findings:
        lines += ["| rule | severity | finding | fix |", "|---|---|---|---|"]
        for finding in plan.findings:
            status = "accepted" if finding.allowed else finding.severity
            accepted = f"<br>{_md(acceptance(finding))}" if finding.allowed else ""
            lines.append(f"| `{finding.code}` | {status} | {_md(finding.title)}: {_md(finding.message)} (`{_where(plan, finding)}`){accepted} | {_md(finding.fix)} |")
        lines.append("")
    if plan.hooks:
        lines += ["Hooks:", ""] + [f"- {_md(hooked(hook))}" for hook in plan.hooks] + [""]
    if plan.notes:
        lines += ["<details><summary>Vectors: embed or carry</summary>", ""] + [f"- {_md(note)}" for note in plan.notes] + ["", "</details>", ""]
    if estimates(plan):
        lines += ["Estimates (preflight, measured on a sample):", ""] + [f"- {_md(line)}" for line in estimates(plan)] + [""]
    lines.append(f"**{summary(plan)}**")
    if verdict(plan):
        lines += ["", f"> **{verdict(plan)}**"]
    lines += ["", f"<sub>spec `{plan.spec_file}` · spec hash `{plan.spec_hash}` · plan hash `{plan.hash}`</sub>"]
    return "\n".join(lines) + "\n"


def against(facts: dict, markdown: bool = False) -> str:
    """What a plan or an apply ran against: the server (its URL without credentials, its version) or the embedded
    store (its absolute path, and whether it existed), and the rule that chose it."""
    where = f"`{facts['where']}`" if markdown else facts["where"]
    if facts["kind"] == "server":
        said = f"the server {where} (Qdrant {facts.get('version') or 'version unknown'})"
    else:
        said = f"the embedded store {where}" + ("" if facts.get("existed") else " (it does not exist yet: read as empty)")
    return f"{said}, chosen by {facts['chosen_by']}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
