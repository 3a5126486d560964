"""Relevance judgments: which points are relevant to which query, read from files a person wrote.

Two layouts: JSON Lines, one `{"query": text, "relevant": [ids]}` (or graded `{"relevant": {"id": grade}}`) per line;
or BEIR's `queries.jsonl` (`{"_id", "text"}`) with a `qrels/*.tsv` (query-id, corpus-id, score, with a header line).
Point ids keep their type: integers stay integers, UUIDs strings, as Qdrant returns them.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass

from ..errors import QmspecError

TEMPLATE = '{"query": "how do I reset my password", "relevant": [12, 40]}'


@dataclass(frozen=True)
class Judgments:
    queries: dict  # query id -> query text
    relevant: dict  # query id -> {point id: grade}

    def __len__(self) -> int:
        return len(self.relevant)


def load_judgments(files: list[str] | tuple[str, ...]) -> Judgments:
    """One JSON Lines file, or a BEIR pair (queries.jsonl and a qrels .tsv, in either order)."""
    files = list(files)
    qrels = [path for path in files if path.endswith(".tsv")]
    if qrels:
        queries = [path for path in files if not path.endswith(".tsv")]
        if len(queries) != 1 or len(qrels) != 1:
            raise QmspecError(f"BEIR judgments are a queries.jsonl and one qrels .tsv file; got {', '.join(files)}")
        return _beir(queries[0], qrels[0])
    if len(files) != 1:
        raise QmspecError(f"give one JSON Lines file of judgments ({TEMPLATE} per line); got {', '.join(files)}")
    return _json_lines(files[0])


def point_id(value):
    """Ids as Qdrant returns them: "12" in a TSV is the integer 12."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _json_lines(path: str) -> Judgments:
    queries, relevant = {}, {}
    for number, line in _lines(path):
        try:
            record = json.loads(line)
            text, judged = record["query"], record["relevant"]
            grades = {point_id(pid): int(grade) for pid, grade in judged.items()} if isinstance(judged, dict) else {point_id(pid): 1 for pid in judged}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, RecursionError):
            raise QmspecError(f"{path}:{number}: expected {TEMPLATE} (or graded: \"relevant\": {{\"12\": 2}})") from None
        if not isinstance(text, str) or not text.strip():
            raise QmspecError(f"{path}:{number}: \"query\" must be the query text")
        if any(grade > 0 for grade in grades.values()):  # a query nobody found relevant results for measures nothing
            query_id = f"q{number}"
            queries[query_id], relevant[query_id] = text, grades
    if not relevant:
        raise QmspecError(f"{path}: no query with a relevant point; each line reads {TEMPLATE}")
    return Judgments(queries, relevant)


def _beir(queries_path: str, qrels_path: str) -> Judgments:
    texts = {}
    for number, line in _lines(queries_path):
        try:
            record = json.loads(line)
            texts[str(record["_id"])] = record["text"]
        except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
            raise QmspecError(f"{queries_path}:{number}: expected a BEIR query {{\"_id\": \"q1\", \"text\": \"...\"}}") from None
    relevant: dict = {}
    try:
        with open(qrels_path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except OSError as exc:
        raise QmspecError(f"cannot read {qrels_path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise QmspecError(f"{qrels_path}: not a tab-separated UTF-8 text file ({exc}); BEIR qrels read query-id<TAB>corpus-id<TAB>score") from None
    for number, row in enumerate(rows, 1):
        if number == 1 and row and not row[-1].lstrip("-").isdigit():
            continue  # the header: query-id corpus-id score
        if len(row) < 3 or not row[-1].lstrip("-").isdigit():
            raise QmspecError(f"{qrels_path}:{number}: expected query-id<TAB>corpus-id<TAB>score")
        query_id, pid, grade = row[0], row[-2], int(row[-1])
        if query_id not in texts:
            raise QmspecError(f"{qrels_path}:{number}: query {query_id!r} is not in {queries_path}")
        if grade > 0:
            relevant.setdefault(query_id, {})[point_id(pid)] = grade
    if not relevant:
        raise QmspecError(f"{qrels_path}: no relevant point for any query")
    return Judgments({query_id: texts[query_id] for query_id in relevant}, relevant)


def _lines(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise QmspecError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise QmspecError(f"{path}: not UTF-8 text; save it as UTF-8") from None
