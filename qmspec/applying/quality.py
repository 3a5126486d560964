"""Relevance of what a collection returns for judged queries, the way the application queries it: one named vector,
or prefetches fused with rrf/dbsf through Qdrant's Query API. Queries are embedded in batches and searched with batch
requests; every metric and cut-off comes from one search per query, scored with ir-measures (trec_eval).
Read-only (reports use it: nothing here may import what writes): verify gates the swap on it, `qmspec compare` reports it."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from qdrant_client import models

from ..embed import get_embedder
from ..errors import QmspecError
from ..planning.judgments import Judgments
from ..planning.plan import QualityGates
from .search import here, query_value, recorded_models

BATCH = 64  # queries embedded and searched per request
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
    requests = [_request(retriever.query, {vector: embedded[vector][index] for vector in retriever.vectors}, depth)
                for index in range(len(ids))]
    responses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode warns that it always searches exactly
        for start in range(0, len(requests), BATCH):
            responses += client.query_batch_points(retriever.collection, requests=requests[start:start + BATCH])
    return Ranking({query_id: [(point.id, point.score) for point in response.points] for query_id, response in zip(ids, responses)}, names)


def _request(query: dict, vectors: dict, depth: int) -> models.QueryRequest:
    if "prefetch" not in query:
        return models.QueryRequest(query=vectors[query["using"]], using=query["using"] or None, limit=depth, with_payload=False)
    prefetch = [models.Prefetch(query=vectors[entry["using"]], using=entry["using"], limit=max(entry["limit"], depth))
                for entry in query["prefetch"]]
    return models.QueryRequest(prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion(query["fusion"])), limit=depth,
                               with_payload=False)


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
    metric: str
    kind: str  # min or max_drop
    threshold: float
    value: float | None  # the new value (min) or the drop (max_drop); None: not applicable
    passed: bool

    def describe(self) -> str:
        if self.value is None:
            return f"{self.kind} {self.metric}: not applicable (nothing to compare with)"
        if self.kind == "min":
            return f"{self.metric} {self.value:.3f} {'>=' if self.passed else 'below'} min {self.threshold}"
        return f"{self.metric} change {0.0 - self.value:+.3f} {'within' if self.passed else 'exceeds'} max_drop {self.threshold}"


def gates(check: QualityGates, new: dict, current: dict | None) -> list[Gate]:
    found = [Gate(metric, "min", floor, new[metric], new[metric] >= floor) for metric, floor in check.minimum.items()]
    for metric, allowed in check.max_drop.items():
        if current is None:
            found.append(Gate(metric, "max_drop", allowed, None, True))
        else:
            drop = current[metric] - new[metric]
            found.append(Gate(metric, "max_drop", allowed, drop, drop <= allowed + 1e-12))
    return found
