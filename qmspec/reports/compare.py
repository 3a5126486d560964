"""`qmspec compare`: two vectors side by side on sample queries, each embedded with the model recorded for it.

A side is `collection:vector` (old and new model as named vectors of one collection, or two collections).
Per query: the top-k of each side and their overlap@k; with relevance judgments also recall@k and nDCG@k.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..applying.search import here, is_sparse, recorded_models, search_ids
from ..embed import get_embedder
from ..errors import QmspecError


@dataclass(frozen=True)
class Side:
    collection: str
    vector: str
    model: dict

    @property
    def label(self) -> str:
        return f"{self.collection}:{self.vector}"


@dataclass
class Row:
    query: str
    a: list
    b: list
    overlap: float
    a_scores: list = field(default_factory=list)
    b_scores: list = field(default_factory=list)
    a_recall: float | None = None
    b_recall: float | None = None
    a_ndcg: float | None = None
    b_ndcg: float | None = None


@dataclass
class Comparison:
    a: Side
    b: Side
    k: int
    rows: list[Row]

    @property
    def judged(self) -> bool:
        return any(row.a_recall is not None for row in self.rows)

    def mean(self, name: str) -> float | None:
        values = [getattr(row, name) for row in self.rows if getattr(row, name) is not None]
        return sum(values) / len(values) if values else None

    def to_json(self) -> str:
        summary = {name: self.mean(name) for name in ("overlap", "a_recall", "b_recall", "a_ndcg", "b_ndcg")}
        return json.dumps({"format": 1, "a": asdict(self.a), "b": asdict(self.b), "k": self.k, "summary": summary,
                           "rows": [asdict(row) for row in self.rows]}, indent=2, default=str) + "\n"


def resolve_side(client, text: str, local: dict | None = None) -> Side:
    """`collection[:vector]` with the model recorded for the vector, run the way `local` (model name -> settings
    from the spec) runs it on this machine."""
    collection, _, vector = text.partition(":")
    if not client.collection_exists(collection):
        raise QmspecError(f"collection {collection!r} (in {text!r}) does not exist")
    recorded = recorded_models(client, collection)
    vector = vector or next((name for name, meta in recorded.items() if meta.get("model_settings")), "")
    settings = (recorded.get(vector) or {}).get("model_settings")
    if not settings:
        raise QmspecError(f"{collection} records no runnable model for vector {vector!r}; compare vectors qmspec created "
                          "(their metadata says which model made them)")
    return Side(collection, vector, here(settings, local or {}))


def compare(client, a: Side, b: Side, queries: list[str], k: int, judgments: dict | None = None) -> Comparison:
    embedders = {side.label: get_embedder(side.model) for side in (a, b)}
    rows = []
    for query in queries:
        hits = {side.label: search_ids(client, side.collection, side.vector, embedders[side.label], query, k,
                                       is_sparse(client, side.collection, side.vector), with_scores=True) for side in (a, b)}
        a_hits, b_hits = hits[a.label], hits[b.label]
        a_ids, b_ids = [i for i, _ in a_hits], [i for i, _ in b_hits]
        row = Row(query, a_ids, b_ids, len(set(a_ids) & set(b_ids)) / k, [s for _, s in a_hits], [s for _, s in b_hits])
        relevant = (judgments or {}).get(query)
        if relevant:
            row.a_recall, row.b_recall = recall(a_ids, relevant), recall(b_ids, relevant)
            row.a_ndcg, row.b_ndcg = ndcg(a_ids, relevant, k), ndcg(b_ids, relevant, k)
        rows.append(row)
    return Comparison(a, b, k, rows)


def recall(ids: list, relevant: set) -> float:
    return len(set(ids) & relevant) / len(relevant)


def ndcg(ids: list, relevant: set, k: int) -> float:
    gain = sum(1 / math.log2(rank + 2) for rank, pid in enumerate(ids[:k]) if pid in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return gain / ideal if ideal else 0.0


def load_judgments(path: str) -> dict:
    """JSON Lines: {"query": "...", "relevant": [ids]} per line."""
    judgments = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                judgments[record["query"]] = set(record["relevant"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise QmspecError(f"{path}:{number}: expected {{\"query\": \"...\", \"relevant\": [ids]}}") from None
    return judgments


# ---------------------------------------------------------------- output


def _cells(comparison: Comparison, row: Row) -> list[str]:
    cells = [row.query, _ids(row.a), _ids(row.b), f"{row.overlap:.2f}"]
    if comparison.judged:
        cells += [_num(row.a_recall), _num(row.b_recall), _num(row.a_ndcg), _num(row.b_ndcg)]
    return cells


def _headers(comparison: Comparison) -> list[str]:
    k = comparison.k
    headers = ["query", f"{comparison.a.label} top-{k}", f"{comparison.b.label} top-{k}", f"overlap@{k}"]
    if comparison.judged:
        headers += [f"recall@{k} A", f"recall@{k} B", f"nDCG@{k} A", f"nDCG@{k} B"]
    return headers


def _totals(comparison: Comparison) -> list[str]:
    cells = ["mean", "", "", _num(comparison.mean("overlap"))]
    if comparison.judged:
        cells += [_num(comparison.mean(name)) for name in ("a_recall", "b_recall", "a_ndcg", "b_ndcg")]
    return cells


def render_text(comparison: Comparison) -> str:
    table = [_headers(comparison)] + [_cells(comparison, row) for row in comparison.rows] + [_totals(comparison)]
    widths = [min(max(len(line[i]) for line in table), 48) for i in range(len(table[0]))]
    lines = [f"A = {comparison.a.label} ({comparison.a.model['name']})", f"B = {comparison.b.label} ({comparison.b.model['name']})", ""]
    for index, line in enumerate(table):
        lines.append("  ".join(cell[:48].ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0 or index == len(table) - 2:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def render_markdown(comparison: Comparison) -> str:
    headers = _headers(comparison)
    lines = [f"### Side by side: `{comparison.a.label}` ({comparison.a.model['name']}) vs `{comparison.b.label}` "
             f"({comparison.b.model['name']})", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(comparison, row)) + " |" for row in comparison.rows]
    lines.append("| " + " | ".join(f"**{cell}**" if cell else "" for cell in _totals(comparison)) + " |")
    return "\n".join(lines) + "\n"


def plot(comparison: Comparison, path: str) -> None:
    """Per-query overlap (and recall, with judgments) and the score distributions of both sides, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QmspecError("--plot needs matplotlib: pip install 'qmspec[plot]'") from None
    figure, (per_query, scores) = plt.subplots(1, 2, figsize=(12, 4.5))
    positions = range(len(comparison.rows))
    bars = [("overlap", f"overlap@{comparison.k}")]
    if comparison.judged:
        bars += [("a_recall", f"recall@{comparison.k} A"), ("b_recall", f"recall@{comparison.k} B")]
    width = 0.8 / len(bars)
    for index, (name, label) in enumerate(bars):
        offset = (index - (len(bars) - 1) / 2) * width
        per_query.bar([p + offset for p in positions], [getattr(row, name) or 0 for row in comparison.rows], width=width, label=label)
    per_query.set_xticks(list(positions), [row.query[:18] for row in comparison.rows], rotation=45, ha="right")
    per_query.set_ylim(0, 1.05)
    per_query.set_title("per query")
    per_query.legend()
    scores.hist([s for row in comparison.rows for s in row.a_scores], bins=20, alpha=0.6, label=f"A {comparison.a.label}")
    scores.hist([s for row in comparison.rows for s in row.b_scores], bins=20, alpha=0.6, label=f"B {comparison.b.label}")
    scores.set_title("score distribution of the top-k")
    scores.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _ids(ids: list) -> str:
    return " ".join(map(str, ids))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
