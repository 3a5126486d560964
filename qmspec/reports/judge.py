"""`qmspec judge`: when there are no relevance judgments yet, make candidates for a person to judge.

Queries come from a query log (one per line: the best source, what users really ask) or are sampled from payload
text (a sentence of a random point: pseudo-queries, which favour the lexical overlap with their own passage). Each
query runs on both sides (what the alias serves now, and the new collection); the union of their top results,
with the text and each side's rank, is written as one JSON Lines record with an empty `relevant` list. A person
fills `relevant` with the ids that answer the query; the file then feeds `verify.quality.judgments` (queries left
with no relevant id are skipped).
"""
from __future__ import annotations

import json
import re

from ..applying.quality import Retriever, rank
from ..applying.search import sample_ids


def sample_queries(client, collection: str, field: str, count: int, ids: list | None = None) -> dict:
    """query id -> the first sentence (at most 12 words) of `field` of `count` random points (or of the points `ids`)."""
    records = client.retrieve(collection, ids=sample_ids(client, collection, count) if ids is None else ids, with_payload=[field])
    queries = {}
    for record in records:
        text = (record.payload or {}).get(field)
        if isinstance(text, str) and text.strip():
            sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
            queries[f"s{record.id}"] = " ".join(sentence.split()[:12])
    return queries


def candidates(client, sides: list[Retriever], queries: dict, depth: int, text_field: str, local: dict | None = None) -> list[dict]:
    """One record per query: the union of each side's top `depth`, with texts and ranks, and `relevant` to fill."""
    rankings = [rank(client, side, queries, depth, local) for side in sides]
    records = []
    for query_id, text in queries.items():
        ranks = [{pid: position for position, (pid, _) in enumerate(ranking.results[query_id], 1)} for ranking in rankings]
        ids = list(dict.fromkeys(pid for ranked in ranks for pid in ranked))
        payloads = {record.id: record.payload or {} for record in client.retrieve(sides[-1].collection, ids=ids, with_payload=[text_field])}
        records.append({"query": text, "relevant": [], "candidates": [
            {"id": pid, "text": payloads.get(pid, {}).get(text_field), **{f"rank_{side.collection}": ranked.get(pid) for side, ranked in zip(sides, ranks)}}
            for pid in ids]})
    return records


def to_json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
