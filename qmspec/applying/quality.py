"""Relevance of what a collection returns for judged queries, the way the application queries it: one named vector,
or prefetches fused with rrf/dbsf as Qdrant's Query API fuses them. Queries are embedded in batches and searched with
batch requests; every metric and cut-off comes from one search per query (per prefetch), scored with ir-measures
(trec_eval). Ties are broken by id, so the same collection and query score the same in every process.
Read-only (reports use it: nothing here may import what writes): verify gates the swap on it, `qmspec compare` reports it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from qdrant_client import models

from ..embed import get_embedder
from ..errors import QmspecError
from ..planning.judgments import Judgments
from ..planning.plan import QualityGates
from .evidence import Evidence, Interval
from .search import here, query_value, recorded_models

BATCH = 64  # queries embedded and searched per request
TIE_MARGIN = 10  # extra results fetched per query so that ties at the cut-off are broken the same way everywhere
IR_MEASURES = {"ndcg": "nDCG", "recall": "R", "mrr": "RR", "precision": "P", "map": "AP"}


@dataclass(frozen=True)
class Retriever:
    """A collection and the query run on it: {"using"} or {"prefetch", "fusion", "limit"}, with the models recorded
    for its vectors."""

    collection: str
    query: dict

    @property
    def vectors(self) -> list[str]:
        return [entry["using"] for entry in self.query["prefetch"]] if "prefetch" in self.query else [self.query["using"]]

    @property
    def label(self) -> str:
        if "prefetch" in self.query:
            return f"{self.collection} ({self.query['fusion']} of {' + '.join(self.vectors)})"
        return f"{self.collection}:{self.query['using']}"


@dataclass
class Ranking:
    """Per query id: the ranked (point id, score) pairs; the models that embedded the queries."""

    results: dict
    models: dict = field(default_factory=dict)  # vector -> model name


def rank(client, retriever: Retriever, queries: dict, depth: int, local: dict | None = None) -> Ranking:
    """Run `queries` (id -> text) on `retriever`, `depth` results each."""
    recorded = recorded_models(client, retriever.collection)
    sparse = set(client.get_collection(retriever.collection).config.params.sparse_vectors or {})
    ids, texts = list(queries), list(queries.values())
    embedded, names = {}, {}
    for vector in retriever.vectors:
        settings = (recorded.get(vector) or {}).get("model_settings")
        if not settings:
            raise QmspecError(f"{retriever.collection} records no runnable model for vector {vector!r}: its queries cannot be embedded")
        embedder = get_embedder(here(settings, local or {}))
        embed = getattr(embedder, "embed_queries", embedder.embed)
        embedded[vector] = [query_value(value, vector in sparse) for start in range(0, len(texts), BATCH) for value in embed(texts[start:start + BATCH])]
        names[vector] = settings["name"]
    fetched = depth + max(depth, TIE_MARGIN)  # results tied at the cut-off are inside what is fetched, then ordered by id
    searches = [(entry["using"], max(entry["limit"], depth)) for entry in retriever.query["prefetch"]] if "prefetch" in retriever.query \
        else [(retriever.query["using"], fetched)]
    requests = [models.QueryRequest(query=embedded[using][index], using=using or None, limit=limit + TIE_MARGIN, with_payload=False)
                for index in range(len(ids)) for using, limit in searches]
    responses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode warns that it always searches exactly
        for start in range(0, len(requests), BATCH):
            responses += client.query_batch_points(retriever.collection, requests=requests[start:start + BATCH])
    results = {}
    for index, query_id in enumerate(ids):
        lists = [ordered(response.points)[:limit] for response, (_, limit) in
                 zip(responses[index * len(searches):(index + 1) * len(searches)], searches)]
        points = fuse(lists, retriever.query["fusion"], fetched) if "prefetch" in retriever.query else lists[0]
        results[query_id] = [(point.id, point.score) for point in ordered(points)[:depth]]
    return Ranking(results, names)


def fuse(lists: list[list], fusion: str, limit: int) -> list:
    """Qdrant's own fusion of prefetch results (qdrant-client's implementation of the server's RRF, k=2, and DBSF), run
    here on lists whose ties are already ordered by id: fused server-side, the same query gives a fused score that
    depends on how the server ordered tied points inside each prefetch, so it moves between processes."""
    from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

    if fusion == "dbsf":
        return distribution_based_score_fusion(lists, limit=limit)
    return reciprocal_rank_fusion(lists, limit=limit)


def ordered(points: list) -> list:
    """Points by score, ties broken by id: Qdrant orders tied points as its segments and threads happen to meet them
    (fused BM25 ties often), so without this the same collection and query score differently from one process to the
    next. Scores are compared to 1e-6, where float noise ends."""
    return sorted(points, key=lambda point: (-round(point.score, 6), _id_order(point.id)))


def _id_order(point_id) -> tuple:
    return (0, point_id, "") if isinstance(point_id, int) else (1, 0, str(point_id))


def evaluate(judgments: Judgments, ranking: Ranking, metrics: list[str]) -> tuple[dict, dict]:
    """(mean per metric over every judged query, per query id -> metric -> value). A query with no result scores 0,
    where trec_eval would leave it out of the mean."""
    import ir_measures

    measures = {metric: ir_measures.parse_measure(_ir_name(metric)) for metric in metrics}
    qrels = [ir_measures.Qrel(query_id, str(pid), grade) for query_id, grades in judgments.relevant.items() for pid, grade in grades.items()]
    run = [ir_measures.ScoredDoc(query_id, str(pid), float(len(hits) - position))  # Qdrant's order, whatever its scores
           for query_id, hits in ranking.results.items() for position, (pid, _) in enumerate(hits)]
    per_query = {query_id: dict.fromkeys(metrics, 0.0) for query_id in judgments.relevant}
    names = {str(measure): metric for metric, measure in measures.items()}
    for value in ir_measures.iter_calc(list(measures.values()), qrels, run):
        if value.query_id in per_query:
            per_query[value.query_id][names[str(value.measure)]] = value.value
    means = {metric: sum(values[metric] for values in per_query.values()) / len(per_query) for metric in metrics}
    return means, per_query


def _ir_name(metric: str) -> str:
    name, cutoff = metric.split("@")
    return f"{IR_MEASURES[name]}@{cutoff}"


@dataclass
class Gate:
    """One gate of verify.quality, decided on the confidence interval: `min` on the new metric's mean, `max_drop` on the
    paired difference new - current (a non-inferiority test). A point estimate decides nothing by itself."""

    metric: str
    kind: str  # min or max_drop
    threshold: float
    value: float | None  # the new mean (min) or the drop, current - new (max_drop); None: not applicable
    passed: bool
    interval: Interval | None = None  # of the new mean (min), of new - current (max_drop)
    verdict: str = "pass"  # pass, below, worse, not enough evidence, n/a

    def describe(self) -> str:
        if self.value is None:
            return f"{self.kind} {self.metric}: not applicable (nothing to compare with)"
        spread = self.interval
        sign = "+" if self.kind == "max_drop" else ""  # a difference is signed, a mean is not
        ci = f" ({spread.confidence:.0%} CI {spread.low:{sign}.3f} to {spread.high:{sign}.3f})" if spread else ""
        if self.verdict == NOT_ENOUGH:
            return (f"{self.kind} {self.metric}: not enough evidence: {spread.queries} queries give ±{spread.half_width:.3f} at "
                    f"{spread.confidence:.0%}{ci}; judge more queries, widen {self.kind}, or accept with --accept-quality")
        if self.kind == "min":
            return f"{self.metric} {self.value:.3f} {'>=' if self.passed else 'below'} min {self.threshold}{ci}"
        change = f"{self.metric} change {0.0 - self.value:+.3f}{ci}"
        if self.passed:
            return f"{change} within max_drop {self.threshold}"
        if spread is None or spread.high < -self.threshold:
            return f"{change} exceeds max_drop {self.threshold}" + (": the whole interval is beyond it" if spread else "")
        return (f"{change}: the drop is real (the interval excludes 0) and may be as large as {-spread.low:.3f}, beyond "
                f"max_drop {self.threshold}")

    def as_dict(self) -> dict:
        return {"metric": self.metric, "kind": self.kind, "threshold": self.threshold, "value": self.value, "passed": self.passed,
                "verdict": self.verdict} | ({"interval": self.interval.as_dict()} if self.interval else {})


NOT_ENOUGH, WORSE, BELOW = "not enough evidence", "worse", "below"
TOLERANCE = 1e-12  # float sums of equal metrics


def gates(check: QualityGates, evidence: Evidence) -> list[Gate]:
    """Each floor and each allowed drop of `check`, decided on the intervals of `evidence` (the queries with evidence)."""
    found = []
    for metric, floor in check.minimum.items():
        spread = evidence.mean(metric)
        if spread.low >= floor - TOLERANCE:
            verdict = "pass"
        else:
            verdict = BELOW if spread.high < floor else NOT_ENOUGH
        found.append(Gate(metric, "min", floor, spread.estimate, verdict == "pass", spread, verdict))
    for metric, allowed in check.max_drop.items():
        if evidence.current is None:
            found.append(Gate(metric, "max_drop", allowed, None, True, None, "n/a"))
            continue
        spread = evidence.difference(metric)
        if spread.low >= -allowed - TOLERANCE:
            verdict = "pass"
        else:
            verdict = WORSE if spread.high < 0 else NOT_ENOUGH
        found.append(Gate(metric, "max_drop", allowed, -spread.estimate, verdict == "pass", spread, verdict))
    return found
