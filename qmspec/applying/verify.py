"""Verification gates before any alias swap: exact counts, vector completeness, payload parity and search
quality against the old collection. Read-only; returns a report the applier acts on."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from qdrant_client import models

from ..embed import get_embedder
from ..errors import QmspecError
from ..live import read_collection
from ..logs import logger
from ..planning.flow import compact
from ..planning.partitions import IdRange
from ..planning.settings import PAYLOAD_INDEXES, SHARD_KEYS, CollectionSettings
from ..sourcefiles import read_records
from .reconcile import Pair, Parity, pages, parity
from .search import here, is_sparse, recorded_models, search_ids

log = logger(__name__)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    figures: dict = field(default_factory=dict)
    applicable: bool = True  # False: nothing to check against (reported as n/a, never as a pass)
    accepted: str | None = None  # failed, and a person accepted it: the reason they gave

    @property
    def result(self) -> str:
        if not self.applicable:
            return "n/a"
        if self.accepted:
            return "accepted"
        return "pass" if self.passed else "FAIL"


@dataclass
class Report:
    target: str
    source: str | None
    checks: list[Check]
    in_place: bool = False  # what fails holds back the query switch, not an alias swap

    @property
    def passed(self) -> bool:
        return all(check.passed or check.accepted for check in self.checks)

    @property
    def quality_failed(self) -> bool:
        """Only quality gates failed: what a person may accept (`qmspec apply --accept-quality REASON`)."""
        failed = [check for check in self.checks if not (check.passed or check.accepted)]
        return bool(failed) and all(check.name == "quality" for check in failed)

    @property
    def held_back(self) -> str:
        return "the recorded query was not switched" if self.in_place else "the alias was not moved"

    def summary(self) -> str:
        """One line for the log: the verdict and each check's result."""
        return (f"verification of {self.target}: {'passed' if self.passed else 'FAILED'} ("
                + ", ".join(f"{check.name} {check.result}" for check in self.checks) + ")")

    def to_json(self) -> str:
        return json.dumps({"target": self.target, "source": self.source, "passed": self.passed,
                           "checks": [asdict(check) for check in self.checks]}, indent=2) + "\n"

    def to_text(self) -> str:
        width = max([len(check.name) for check in self.checks] + [5])
        lines = [f"verification of {self.target}" + (f" against {self.source}" if self.source else ""),
                 f"  {'check':<{width}}  result    detail"]
        lines += [f"  {c.name:<{width}}  {c.result:<8}  {c.detail}" for c in self.checks]
        stays = "the recorded query stays as it is" if self.in_place else "the alias stays where it is"
        lines.append(f"  verdict: {'passed' if self.passed else 'FAILED: ' + stays}")
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        lines = [f"### Verification of `{self.target}`" + (f" against `{self.source}`" if self.source else ""), "",
                 "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {'**FAIL**' if c.result == 'FAIL' else c.result} | {c.detail} |" for c in self.checks]
        lines += ["", f"**{'Passed' if self.passed else 'Failed: ' + self.held_back}**"]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class KeptReport:
    """A verification report as the journal keeps it (its verdict, text, JSON and Markdown): what a resumed or
    promoted apply reports for the verification its swap relied on."""

    kept: dict

    @property
    def passed(self) -> bool:
        return bool(self.kept.get("passed"))

    def to_text(self) -> str:
        return self.kept.get("text", "")

    def to_json(self) -> str:
        return self.kept["json"]

    def to_markdown(self) -> str:
        return self.kept["markdown"]


class VerificationFailed(QmspecError):
    def __init__(self, report: Report):
        self.report = report
        failed = ", ".join(check.name for check in report.checks if not (check.passed or check.accepted))
        super().__init__(f"verification of {report.target} failed ({failed}); {report.held_back} and the apply stays open")


@dataclass(frozen=True)
class Ledgered:
    """A vector backfilled in place, with its ledger: verify checks every point's vector was embedded from its text."""

    vector: str
    text_field: str
    ledger: object


def verify(client, step, local: dict | None = None, baseline=None, known: bool = False, ranges: list[IdRange] | None = None,
           page_size: int = 1000, accepted: str | None = None, carried: CarriedVectors | None = None,
           ledgered: list[Ledgered] = ()) -> Report:
    """`local` maps a model name to the settings this machine runs it with (a local path, a device), from the plan:
    the metadata records which model, never where its weights lie here. `baseline` records what qmspec wrote
    (`known`: this apply kept one), so points the application wrote to the target are told apart; `ranges` are the
    copy's partitions, compared one after the other. `accepted`: the reason a person gave for accepting failed
    quality gates (journaled). `carried`: the vectors the copy carried, checked against their source point by point.
    `ledgered`: vectors backfilled in place, each point's checked to come from the text it holds now."""
    checks = []
    carried = carried if carried and carried.carry and step.source else None
    planned = ["count"] * step.count + [f"vector {name}" for name in step.vectors] + ["payloads"] * (step.payload_mode != "off")
    planned += ["carried vectors"] * bool(carried) + [f"{entry.vector} from current texts" for entry in ledgered]
    planned += [f"agreement on {check.using}: {len(check.queries)} queries" for check in (step.search, step.sparse) if check]
    planned += ["settings"] * bool(step.settings)
    planned += ["quality on judged queries"] * bool(step.quality)
    log.info(f"      checking {', '.join(planned) or 'nothing'}")
    compared = None
    if step.payload_mode != "off" or carried or (step.source and known):  # one streamed pass serves count, payloads, vectors
        compared = compare_payloads(client, step, baseline, known and bool(step.source), ranges or [IdRange(None, None)], page_size, carried)
    if step.settings:
        checks.append(check_settings(client, step))
    if step.count:
        checks.append(check_count(client, step, compared))
    carried_from = {name: how.source_vector for name, how in (carried.carry.items() if carried else ())}
    for name in step.vectors:
        checks.append(check_vector_complete(client, step.target, name, step.source, carried_from.get(name)))
    if step.payload_mode != "off":
        checks.append(check_payloads(step, compared))
    if carried:
        checks.append(check_carried(carried, compared))
    for entry in ledgered:
        checks.append(check_current(client, step.target, entry, page_size))
    if step.search:
        checks.append(check_search(client, step, step.search, False, local or {}))
    if step.sparse:
        checks.append(check_search(client, step, step.sparse, True, local or {}))
    if step.quality:
        checks.append(check_quality(client, step, local or {}, accepted))
    return Report(step.target, step.source, checks, step.in_place)


def check_quality(client, step, local: dict, accepted: str | None) -> Check:
    """The judged queries on the new collection (the spec's query) and on what the alias serves now (the query the
    application runs there), side by side, each gated metric decided on its confidence interval (evidence.py)."""
    from ..planning.judgments import load_judgments
    from .progress import phase

    quality = step.quality
    judged = load_judgments(quality.judgments)
    metrics = list(quality.metrics)
    sides = [step.target] + ([quality.current.collection] if quality.current else [])
    judgments, unjudgeable = with_evidence(client, judged, sides)
    figures = {"metrics": metrics, "queries": len(judgments), "judged_queries": len(judged), "without_evidence": len(unjudgeable),
               "confidence": quality.confidence}
    left_out = (f"; {len(unjudgeable)} of {len(judged)} judged queries left out: none of their relevant ids is in "
                f"{' or '.join(sides)}" if unjudgeable else "")
    if unjudgeable:
        log.warning(f"      quality: {left_out[2:]}")
    if not judgments:
        return Check("quality", False, f"no evidence: none of the {len(judged)} judged queries' relevant ids exists in "
                                       f"{' or '.join(sides)}: the judgments are of other points (another collection, another id "
                                       "scheme?); judge this collection's points (`qmspec judge`)", figures)
    with phase(f"quality: {len(judgments)} judged queries on {step.target}" + (f" and {quality.current.collection}" if quality.current else "")):
        return _quality_gated(client, step, local, accepted, judgments, figures, left_out, quality)


def _quality_gated(client, step, local: dict, accepted: str | None, judgments, figures: dict, left_out: str, quality) -> Check:
    """Both sides ranked and scored, the gates decided on the intervals: check_quality's work once it has evidence."""
    from .evidence import Evidence
    from .quality import Retriever, evaluate, gates, rank

    metrics, depth = list(quality.metrics), quality.depth
    new, per_query = evaluate(judgments, rank(client, Retriever(step.target, quality.query), judgments.queries, depth, local), metrics)
    figures |= {"new": new, "per_query_new": per_query}
    current = per_query_current = None
    if quality.current:
        baseline = Retriever(quality.current.collection, quality.current.query)
        current, per_query_current = evaluate(judgments, rank(client, baseline, judgments.queries, depth, local), metrics)
        figures |= {"current": current, "current_label": baseline.label, "per_query_current": per_query_current}
    evidence = Evidence(per_query, per_query_current, quality.confidence)
    found = gates(quality, evidence)
    figures["gates"] = [gate.as_dict() for gate in found]
    figures["intervals"] = intervals(metrics, evidence)
    side_by_side = "; ".join(_measured(metric, figures["intervals"][metric]) for metric in metrics)
    against = f"against {figures['current_label']}: " if current else "nothing serves the alias yet, no comparison: "
    gate_text = "; ".join(gate.describe() for gate in found) or "no gate set"
    passed = all(gate.passed for gate in found)
    check = Check("quality", passed, f"{against}{side_by_side}{left_out}; {gate_text}", figures)
    if not passed and accepted:
        check.accepted = accepted
        check.detail += f"; accepted: {accepted}"
    return check


def intervals(metrics: list[str], evidence: Evidence) -> dict:
    """Per metric against what serves now: the paired difference new - current, `difference`, `ci_low`, `ci_high`,
    `confidence`, `queries`, `method` (what the JSON report carries); with nothing serving, the new mean's interval
    (`new_ci_low`, `new_ci_high`), as also where a floor gated it."""
    found = {}
    for metric in metrics:
        new = evidence.new.values()
        entry = {"new": sum(values[metric] for values in new) / len(new)}
        if evidence.current is None or ("mean", metric) in evidence.known:
            mean = evidence.mean(metric)
            entry |= {"new_ci_low": mean.low, "new_ci_high": mean.high}
        spread = evidence.mean(metric) if evidence.current is None else evidence.difference(metric)
        if evidence.current is not None:
            current = evidence.current.values()
            entry |= {"current": sum(values[metric] for values in current) / len(current), "difference": spread.estimate,
                      "ci_low": spread.low, "ci_high": spread.high}
        found[metric] = entry | {"confidence": spread.confidence, "queries": spread.queries, "method": spread.method}
    return found


def _measured(metric: str, figures: dict) -> str:
    """nDCG@10 0.513 vs 0.645: -0.132 (95% CI -0.156 to -0.108, 300 queries, paired bootstrap)"""
    ci = f"{figures['confidence']:.0%} CI"
    if "difference" not in figures:
        return (f"{metric} {figures['new']:.3f} ({ci} {figures['new_ci_low']:.3f} to {figures['new_ci_high']:.3f}, {figures['queries']} "
                f"queries, {figures['method']})")
    return (f"{metric} {figures['new']:.3f} vs {figures['current']:.3f}: {figures['difference']:+.3f} ({ci} {figures['ci_low']:+.3f} to "
            f"{figures['ci_high']:+.3f}, {figures['queries']} queries, {figures['method']})")


def with_evidence(client, judgments, collections: list[str]):
    """The judgments restricted to queries with at least one relevant id in one of `collections` (the others score 0 on
    every side and say nothing), and the ids of the queries left out."""
    from ..planning.judgments import Judgments

    wanted = sorted({pid for grades in judgments.relevant.values() for pid, grade in grades.items() if grade > 0}, key=str)
    present: set = set()
    for collection in collections:
        for start in range(0, len(wanted), 1000):
            present |= {point.id for point in client.retrieve(collection, wanted[start:start + 1000], with_payload=False)}
    kept = [query for query, grades in judgments.relevant.items() if any(grade > 0 and pid in present for pid, grade in grades.items())]
    left_out = [query for query in judgments.relevant if query not in kept]
    return Judgments({query: judgments.queries[query] for query in kept}, {query: judgments.relevant[query] for query in kept}), left_out


def check_settings(client, step) -> Check:
    """Setting by setting, that the target has what the plan asked for (stated or kept from the old collection): a
    server can refuse or adjust a setting without failing the call that sent it."""
    stated = dict(step.settings)
    wanted = CollectionSettings(**{**stated, PAYLOAD_INDEXES: stated.get(PAYLOAD_INDEXES, {}), SHARD_KEYS: tuple(stated.get(SHARD_KEYS, ()))})
    live = read_collection(client, step.target, exact=False).settings
    differences = [f"{name}: {compact(value)} (wanted {compact(wanted_value)})" for name, value, wanted_value in wanted.differences(live)]
    differences += [f"payload index {field}: {compact(value or {})} (wanted {compact(wanted_value)})"
                    for field, value, wanted_value in wanted.index_differences(live)]
    differences += [f"shard key {key}: missing" for key in wanted.missing_shard_keys(live)]
    checked = len(stated) - (PAYLOAD_INDEXES in stated) + len(stated.get(PAYLOAD_INDEXES, {}))
    detail = "; ".join(differences) if differences else f"{checked} settings and indexes as planned ({', '.join(stated)})"
    return Check("settings", not differences, detail, {"differences": differences})


def expected_count(client, step) -> int:
    if step.source:
        return client.count(step.source, exact=True).count
    if step.source_files:
        return sum(1 for path in step.source_files for _ in read_records(path, step.id_field))
    return step.expected_points


def check_count(client, step, compared: Parity | None) -> Check:
    compared = compared or Parity()
    expected = expected_count(client, step) + compared.application_inserted - compared.application_deleted
    actual = client.count(step.target, exact=True).count
    return Check("count", actual == expected, f"{actual:,} points, expected {expected:,}{compared.describe_application()}",
                 {"actual": actual, "expected": expected})


def check_vector_complete(client, collection: str, vector: str, source: str | None = None, carried_from: str | None = None) -> Check:
    """Every point has the vector (Qdrant can drop a named-vector write silently, qdrant#9521); a vector carried from
    the source has it where the source had it, no more and no less (a declared but empty one: 0 of 0 in both)."""
    total = client.count(collection, exact=True).count
    having = _having(client, collection, vector)
    if carried_from and source:
        expected = _having(client, source, carried_from)
        return Check(f"vector {vector}", having == expected, f"{having:,} of {total:,} points have it, as {expected:,} have "
                     f"{source}.{carried_from}", {"with_vector": having, "total": total, "expected": expected})
    return Check(f"vector {vector}", having == total, f"{having:,} of {total:,} points have it", {"with_vector": having, "total": total})


def _having(client, collection: str, vector: str) -> int:
    return client.count(collection, count_filter=models.Filter(must=[models.HasVectorCondition(has_vector=vector)]), exact=True).count


def check_current(client, collection: str, entry: Ledgered, page_size: int) -> Check:
    """Every point's vector backfilled in place was embedded from the text the point holds now (its ledger), none
    left of a text the application edited since."""
    from .in_place import stale

    compared, moved, shown = stale(client, collection, entry.vector, entry.text_field, entry.ledger, page_size)
    detail = f"{compared - moved:,} of {compared:,} points' {entry.vector} embedded from their current {entry.text_field!r}"
    if moved:
        detail += f" (older text: {', '.join(map(str, shown))}...; the application edited them during verify: apply again)"
    return Check(f"{entry.vector} current", not moved, detail, {"compared": compared, "stale": moved})


def check_payloads(step, compared: Parity | None) -> Check:
    if compared is None:
        return Check("payloads", True, "not applicable (the points are served as they are: nothing to compare with)", applicable=False)
    sample = ", ".join(map(str, compared.mismatched))
    detail = (f"{compared.compared - compared.mismatches:,} of {compared.compared:,} payloads match"
              + (f" (differ: {sample}...)" if compared.mismatches else "") + compared.describe_application())
    return Check("payloads", not compared.mismatches, detail, {"compared": compared.compared, "mismatched": compared.mismatches})


def compare_payloads(client, step, baseline, known: bool, ranges: list[IdRange], page_size: int,
                     carried: CarriedVectors | None = None) -> Parity | None:
    """Stream the source (a collection, or the source files) against the target a page at a time; None where the
    points are adopted as they are (no source to compare with)."""
    sampled = _sampler(step)
    if step.source:
        reading = (carried.source_names, list(carried.carry)) if carried else ([], None)
        return parity(pages(client, step.source, step.target, baseline, reading[0], page_size, ranges, reading[1]), known, sampled,
                      carried.matches if carried else None)
    if step.source_files:
        return parity(_file_pages(client, step, page_size), False, sampled)
    return None


@dataclass(frozen=True)
class CarriedVectors:
    """The vectors a copy carried (renamed, truncated, or mapped), and how: what each target vector must equal."""

    carry: dict  # target vector -> Carry
    distances: dict  # target vector -> its distance
    maps: dict  # target vector -> learned matrix

    @property
    def source_names(self) -> list[str]:
        return sorted({how.source_vector for how in self.carry.values()})

    def matches(self, pair: Pair) -> bool:
        """Whether the target's carried vectors are its source's, as the copy makes them (Qdrant normalizes cosine
        vectors and stores float32, so within float32 rounding)."""
        from ..embed.vectors import carried_vectors

        expected = carried_vectors(pair.source.vector, self.carry, self.distances, self.maps)
        actual = pair.target.vector or {}
        return all(_same_vector(expected.get(name), actual.get(name), self.distances.get(name)) for name in self.carry)


def _same_vector(expected, actual, distance: str | None) -> bool:
    import numpy as np

    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, models.SparseVector) or isinstance(actual, models.SparseVector):
        return (list(expected.indices) == list(actual.indices)
                and np.allclose(expected.values, actual.values, rtol=1e-5, atol=1e-6))
    wanted, stored = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if wanted.shape != stored.shape:
        return False
    if distance == "Cosine":  # compare directions: the store keeps unit vectors
        unit = lambda rows: rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        wanted, stored = unit(wanted), unit(stored)
    return bool(np.allclose(wanted, stored, rtol=1e-4, atol=1e-5))


def check_carried(carried: CarriedVectors, compared: Parity) -> Check:
    what = ", ".join(f"{name} <- {how.source_vector}" for name, how in carried.carry.items())
    differ = ", ".join(map(str, compared.vectors_mismatched))
    detail = (f"{compared.vectors_compared - compared.vector_mismatches:,} of {compared.vectors_compared:,} points carry {what} as "
              "their source holds it" + (f" (differ: {differ}...)" if compared.vector_mismatches else ""))
    return Check("carried vectors", not compared.vector_mismatches, detail,
                 {"compared": compared.vectors_compared, "mismatched": compared.vector_mismatches})


def application_writes(client, journal) -> str:
    """What the application wrote to the collection an unfinished apply built, said for a person deciding to delete
    it: from the apply's baseline, streamed like verify's comparison."""
    from ..planning.plan import CatchUp

    catch_up = next((step for step in journal.active.plan.steps if isinstance(step, CatchUp)), None)
    if catch_up is None or not client.collection_exists(catch_up.target):
        return ""
    records = journal.records()
    try:
        found = parity(pages(client, catch_up.source, catch_up.target, records.baseline, [], 1000, [IdRange(None, None)]), True)
    finally:
        records.baseline.close()
    total = client.count(catch_up.target, exact=True).count
    wrote = found.application_inserted + found.application_changed
    return (f", {total:,} points, {wrote:,} of them written by the application there ({found.application_inserted:,} inserted, "
            f"{found.application_changed:,} changed)" if wrote else f", {total:,} points, none written by the application there")


def _file_pages(client, step, page_size: int):
    """The source files' records against the target's points of the same ids. A point only the target has shows in
    the count check."""
    page = []
    for path in step.source_files:
        for _, point_id, payload in read_records(path, step.id_field):
            page.append(models.Record(id=point_id, payload=payload))
            if len(page) >= page_size:
                yield _against_target(client, step.target, page)
                page = []
    if page:
        yield _against_target(client, step.target, page)


def _against_target(client, target: str, page: list) -> list[Pair]:
    theirs = {point.id: point for point in client.retrieve(target, [point.id for point in page], with_payload=True)}
    return [Pair(point, theirs.get(point.id), None) for point in page]


def _sampler(step):
    """In sample mode, about `payload_sample` points, chosen by a hash of their id: the same points every run and on
    every machine, decided a page at a time."""
    if step.payload_mode != "sample":
        return lambda point_id: True
    share = min(1.0, step.payload_sample / max(step.expected_points, 1))
    return lambda point_id: int(hashlib.sha256(json.dumps(point_id).encode()).hexdigest()[:8], 16) < share * 0x1_0000_0000


def check_search(client, step, check: dict, sparse: bool, local: dict) -> Check:
    """Agreement, not quality: mean overlap@k of the new collection's top-k with a reference top-k, the old collection
    searched with its own model (for a sparse vector: the new collection's dense results). With no old collection
    there is nothing to agree with: not applicable."""
    name = "sparse agreement" if sparse else "agreement"
    using, k = check.using, check.k
    if not sparse and not step.source and not getattr(check, "against", None):
        return Check(name, True, "not applicable (nothing to compare with: no previous collection)", applicable=False)
    target_meta = recorded_models(client, step.target)
    new_model = target_meta.get(using)
    if not new_model or not new_model.get("model_settings"):
        return Check(name, False, f"no model recorded for {using!r} in {step.target}; cannot embed queries")
    reference = _reference(client, step, using, sparse, target_meta)
    if isinstance(reference, str):
        return Check(name, False, reference)
    ref_collection, ref_vector, ref_settings = reference
    new_embedder = get_embedder(here(new_model["model_settings"], local))
    ref_embedder = get_embedder(here(ref_settings, local))
    overlaps = []
    for query in check.queries:
        new_ids = search_ids(client, step.target, using, new_embedder, query, k, sparse)
        ref_ids = search_ids(client, ref_collection, ref_vector, ref_embedder, query, k, is_sparse(client, ref_collection, ref_vector))
        overlaps.append(len(set(new_ids) & set(ref_ids)) / k)
    overlap = sum(overlaps) / len(overlaps)
    passed = overlap >= check.min_overlap
    detail = (f"overlap@{k} {overlap:.2f} with {ref_collection}.{ref_vector} (min {check.min_overlap}) over "
              f"{len(check.queries)} queries: agreement, not quality")
    return Check(name, passed, detail, {"overlap": overlap, "per_query_overlap": overlaps})


def _reference(client, step, using: str, sparse: bool, target_meta: dict):
    against = getattr(step.search, "against", None) if not sparse else None
    if against:  # in place: the vector the application queries now, on the same collection
        settings = (target_meta.get(against) or {}).get("model_settings")
        if not settings:
            return f"{step.target} records no runnable model for {against!r}, so its results cannot be computed to agree with"
        return step.target, against, settings
    if sparse:
        dense = [name for name, meta in target_meta.items() if meta.get("model_settings") and not meta.get("sparse")]
        if not dense:
            return "no dense vector with a recorded model to compare the sparse results with"
        return step.target, dense[0], target_meta[dense[0]]["model_settings"]
    source_meta = recorded_models(client, step.source)
    vector = using if using in source_meta else next(iter(source_meta), None)
    settings = (source_meta.get(vector) or {}).get("model_settings")
    if not settings:
        which = f"for {vector!r}" if vector else "for any vector"
        return (f"{step.source} records no runnable model {which}, so its results cannot be computed to agree with: name the "
                f"model of its vectors and run `qmspec import` on a spec of {step.source} first, or drop this agreement check")
    return step.source, vector, settings
