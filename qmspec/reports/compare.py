"""`qmspec compare`: two retrievers side by side on the same queries, each embedded with the models recorded for it.

A side is `collection:vector`, or a bare `collection`: the query qmspec recorded for it (a fused hybrid query
included), else the spec's query restricted to the vectors the collection has models for, as verify chooses it. With
judgments: every metric for both sides, the paired difference with its confidence interval, and the queries each side
wins and loses beyond noise, with their top results. Without: overlap@k only, which is agreement between the two, not
quality.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..applying.evidence import Interval, mean_interval, paired_difference
from ..applying.quality import Ranking, Retriever, evaluate, rank
from ..applying.search import recorded_models
from ..errors import QmspecError
from ..planning.judgments import Judgments
from ..live import read_collection
from ..planning.planner import current_query

TOP = 3  # results shown per side for a query won or lost


def resolve_side(client, text: str, spec_query: dict) -> Retriever:
    collection, _, vector = text.partition(":")
    if not client.collection_exists(collection):
        raise QmspecError(f"collection {collection!r} (in {text!r}) does not exist")
    recorded = recorded_models(client, collection)
    runnable = {name for name, identity in recorded.items() if identity.get("model_settings")}
    if vector:
        if vector not in runnable:
            raise QmspecError(f"{collection} records no runnable model for vector {vector!r}; compare vectors qmspec created "
                              "(their metadata says which model made them)")
        return Retriever(collection, {"using": vector})
    query = current_query(spec_query, read_collection(client, collection, exact=False))  # as verify picks it
    if query:
        return Retriever(collection, query)
    if not runnable:
        raise QmspecError(f"{collection} records no model for any vector; name one as {collection}:VECTOR")
    return Retriever(collection, {"using": sorted(runnable)[0]})


@dataclass
class Comparison:
    a: Retriever
    b: Retriever
    k: int
    queries: dict  # id -> text
    rankings: tuple[Ranking, Ranking]
    metrics: list = field(default_factory=list)
    means: tuple = ({}, {})  # per side: metric -> mean
    per_query: tuple = ({}, {})  # per side: query id -> metric -> value
    relevant: dict = field(default_factory=dict)  # query id -> {point id: grade}
    intervals: dict = field(default_factory=dict)  # metric -> Interval of the paired difference B - A

    @property
    def judged(self) -> bool:
        return bool(self.metrics)

    def overlap(self, query_id) -> float:
        a, b = (set(pid for pid, _ in ranking.results[query_id][:self.k]) for ranking in self.rankings)
        return len(a & b) / self.k

    @property
    def mean_overlap(self) -> float:
        return sum(map(self.overlap, self.queries)) / len(self.queries)

    @property
    def noise(self) -> float:
        """How large a per-query difference on the first metric must be to count as a win or a loss: the half-width of the
        interval of the mean difference (a smaller one is within what the sample of queries leaves uncertain)."""
        return self.intervals[self.metrics[0]].half_width if self.judged else 0.0

    def changes(self) -> tuple[list, list]:
        """(queries B wins, queries B loses) beyond noise on the first metric, largest difference first."""
        if not self.judged:
            return [], []
        metric, noise = self.metrics[0], self.noise
        differences = [(self.per_query[1][qid][metric] - self.per_query[0][qid][metric], qid) for qid in self.queries]
        wins = sorted((d for d in differences if d[0] > max(noise, 0.0)), key=lambda d: -d[0])
        losses = sorted((d for d in differences if d[0] < -max(noise, 0.0)), key=lambda d: d[0])
        return wins, losses

    def top(self, side: int, query_id) -> list:
        return [pid for pid, _ in self.rankings[side].results[query_id][:TOP]]

    def to_json(self) -> str:
        wins, losses = self.changes()
        rows = [{"query": text, "a": self.top(0, qid), "b": self.top(1, qid), "overlap": self.overlap(qid)}
                | ({"relevant": sorted(self.relevant[qid], key=str), "a_metrics": self.per_query[0][qid], "b_metrics": self.per_query[1][qid]}
                   if self.judged else {}) for qid, text in self.queries.items()]
        return json.dumps({"format": 2, "a": self.a.label, "b": self.b.label, "k": self.k, "mean_overlap": self.mean_overlap,
                           "metrics": {m: {"a": self.means[0][m], "b": self.means[1][m], "difference": self.intervals[m].estimate,
                                           "ci_low": self.intervals[m].low, "ci_high": self.intervals[m].high,
                                           "confidence": self.intervals[m].confidence, "queries": self.intervals[m].queries,
                                           "method": self.intervals[m].method} for m in self.metrics},
                           "noise": self.noise,
                           "wins": [self.queries[qid] for _, qid in wins], "losses": [self.queries[qid] for _, qid in losses],
                           "rows": rows}, indent=2, default=str) + "\n"


def compare(client, a: Retriever, b: Retriever, queries: dict, k: int, judgments: Judgments | None = None,
            metrics: list[str] = (), local: dict | None = None) -> Comparison:
    """One batch of searches per side serves every metric and the overlap; queries are embedded in batches."""
    depth = max([k] + [int(metric.split("@")[1]) for metric in metrics])
    rankings = (rank(client, a, queries, depth, local), rank(client, b, queries, depth, local))
    comparison = Comparison(a, b, k, queries, rankings)
    if judgments is not None and metrics:
        (mean_a, per_a), (mean_b, per_b) = (evaluate(judgments, ranking, list(metrics)) for ranking in rankings)
        comparison.metrics, comparison.means, comparison.per_query = list(metrics), (mean_a, mean_b), (per_a, per_b)
        comparison.relevant = judgments.relevant
        comparison.intervals = {metric: paired_difference({q: v[metric] for q, v in per_b.items()}, {q: v[metric] for q, v in per_a.items()})
                                for metric in metrics}
    return comparison


# ---------------------------------------------------------------- output


def _summary(comparison: Comparison) -> list[list[str]]:
    rows = [["metric", "A", "B", "B - A", "95% CI (paired bootstrap)"]]
    rows += [[metric, f"{comparison.means[0][metric]:.3f}", f"{comparison.means[1][metric]:.3f}", f"{spread.estimate:+.3f}",
              f"{spread.low:+.3f} to {spread.high:+.3f}" + (" (excludes 0)" if spread.low > 0 or spread.high < 0 else "")]
             for metric, spread in comparison.intervals.items()]
    rows.append([f"overlap@{comparison.k} (agreement)", "", "", f"{comparison.mean_overlap:.2f}", ""])
    return rows


def _tally(comparison: Comparison) -> str:
    wins, losses = comparison.changes()
    within = len(comparison.queries) - len(wins) - len(losses)
    return (f"B better on {len(wins)} queries, worse on {len(losses)}, within noise on {within} "
            f"(|{comparison.metrics[0]} B - A| <= {comparison.noise:.3f}, the interval's half-width)")


def _change_lines(comparison: Comparison, changes: list) -> list[str]:
    metric = comparison.metrics[0]
    return [f"{difference:+.3f} {metric}  {comparison.queries[qid]!r}  relevant {_ids(sorted(comparison.relevant[qid], key=str))}  "
            f"A top {_ids(comparison.top(0, qid))}  B top {_ids(comparison.top(1, qid))}" for difference, qid in changes]


def render_text(comparison: Comparison) -> str:
    lines = [f"A = {comparison.a.label}", f"B = {comparison.b.label}", f"{len(comparison.queries)} queries", ""]
    table = _summary(comparison)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    if comparison.judged:
        wins, losses = comparison.changes()
        lines += ["", _tally(comparison)]
        lines += ["", "wins:"] + [f"  {line}" for line in _change_lines(comparison, wins)] if wins else []
        lines += ["", "losses:"] + [f"  {line}" for line in _change_lines(comparison, losses)] if losses else []
    else:
        lines += ["", "no judgments: overlap says how much the two agree, not which is better (give --judgments)"]
    return "\n".join(lines) + "\n"


def render_markdown(comparison: Comparison) -> str:
    lines = [f"### Side by side: A `{comparison.a.label}` vs B `{comparison.b.label}`", "",
             f"{len(comparison.queries)} queries.", "", "| metric | A | B | B - A | 95% CI (paired bootstrap) |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _summary(comparison)[1:]]
    if comparison.judged:
        lines += ["", _tally(comparison) + "."]
        wins, losses = comparison.changes()
        for title, changes in (("B wins", wins), ("B loses", losses)):
            if changes:
                lines += ["", f"<details><summary>{title} on {len(changes)} queries</summary>", "",
                          f"| {comparison.metrics[0]} B - A | query | relevant | A top {TOP} | B top {TOP} |", "|---|---|---|---|---|"]
                lines += [f"| {d:+.3f} | {comparison.queries[qid].replace('|', chr(92) + '|')} | {_ids(sorted(comparison.relevant[qid], key=str))} | "
                          f"{_ids(comparison.top(0, qid))} | {_ids(comparison.top(1, qid))} |" for d, qid in changes]
                lines += ["", "</details>"]
    else:
        lines += ["", "No judgments: overlap is agreement between the two, not quality."]
    return "\n".join(lines) + "\n"


def plot(comparison: Comparison, path: str) -> None:
    """Per-query difference on the first metric (or the overlap, without judgments) and the means per metric, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QmspecError("--plot needs matplotlib: pip install 'qmspec[plot]'") from None
    figure, (per_query, means) = plt.subplots(1, 2, figsize=(12, 4.5))
    ids = list(comparison.queries)
    if comparison.judged:
        metric = comparison.metrics[0]
        values = sorted((comparison.per_query[1][qid][metric] - comparison.per_query[0][qid][metric] for qid in ids), reverse=True)
        per_query.bar(range(len(values)), values, color=["tab:green" if v > 0 else "tab:red" for v in values])
        per_query.axhline(0, color="black", linewidth=0.8)
        per_query.set_title(f"{metric}, B - A, per query (sorted)")
        per_query.axhspan(-comparison.noise, comparison.noise, color="grey", alpha=0.2, label="within noise")
        per_query.legend(fontsize="small")
        names = comparison.metrics
        positions = range(len(names))
        for side, offset, label in ((0, -0.2, f"A {comparison.a.label}"), (1, 0.2, f"B {comparison.b.label}")):
            spreads = [mean_interval([values[m] for values in comparison.per_query[side].values()]) for m in names]
            means.bar([p + offset for p in positions], [spread.estimate for spread in spreads], width=0.4, label=label,
                      yerr=_error_bars(spreads), capsize=4)
        means.set_xticks(list(positions), names)
        means.set_ylim(0, 1.05)
        means.set_title("mean over the judged queries, with 95% intervals")
        means.legend(fontsize="small")
    else:
        per_query.bar(range(len(ids)), [comparison.overlap(qid) for qid in ids])
        per_query.set_title(f"overlap@{comparison.k} per query (agreement, not quality)")
        means.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _error_bars(spreads: list[Interval]) -> list[list[float]]:
    return [[spread.estimate - spread.low for spread in spreads], [spread.high - spread.estimate for spread in spreads]]


def _ids(ids: list) -> str:
    return " ".join(map(str, ids)) or "-"
