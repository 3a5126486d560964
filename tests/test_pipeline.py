"""The moving parts of a migration, without Qdrant: the overlapping pipeline, progress, carried vectors, BM25."""
from __future__ import annotations

import io
import math
import threading

import pytest

from qmspec.applying.progress import Progress
from qmspec.logs import forwarded
from qmspec.applying.transfer import pipelined
from qmspec.embed.vectors import carried_vectors
from qmspec.planning.plan import Carry


def pages(count: int, size: int):
    for start in range(0, count, size):
        yield list(range(start, min(start + size, count))), start + size


def test_pipeline_writes_everything_in_order_and_checkpoints_after_each_write():
    written, checkpoints = [], []
    total = pipelined(pages(1000, 64), lambda items: [i * 2 for i in items], written.extend,
                      lambda position, done: checkpoints.append((position, done, len(written))))
    assert total == 1000 and written == [i * 2 for i in range(1000)]
    assert [c[0] for c in checkpoints] == list(range(64, 1000 + 64, 64))
    assert all(done == seen for _, done, seen in checkpoints)  # never recorded ahead of what was written


@pytest.mark.parametrize("where", ["read", "transform", "write"])
def test_pipeline_failures_reach_the_caller_without_hanging(where):
    def failing_pages():
        yield from pages(100, 10)
        if where == "read":
            raise RuntimeError("read failed")

    def transform(items):
        if where == "transform" and items[0] >= 30:
            raise RuntimeError("transform failed")
        return items

    def write(items):
        if where == "write" and items[0] >= 50:
            raise RuntimeError("write failed")

    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("error", _catch(
        lambda: pipelined(failing_pages() if where == "read" else pages(10_000, 10), transform, write, lambda *a: None))))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "pipeline hung"
    assert str(result["error"]) == f"{where} failed"


def _catch(call):
    try:
        call()
    except RuntimeError as error:
        return error
    return None


def test_progress_logs_plain_lines_when_not_a_terminal():
    lines = []
    with forwarded(lines.append):
        progress = Progress("embed dense", 1000, stream=io.StringIO(), every_s=0)
        progress.update(500)
        progress.update(1000, final=True)
        progress.update(1000, final=True)
    assert len(lines) == 2 and "500/1,000 points" in lines[0] and "ETA" in lines[0] and "points/s" in lines[1]


def test_matryoshka_carry_truncates_and_renormalizes_for_cosine_only():
    vector = {"full": [3.0, 4.0, 12.0]}
    carry = {"short": Carry("full", truncate_to=2)}
    assert carried_vectors(vector, carry, {"short": "Cosine"}) == {"short": pytest.approx([0.6, 0.8])}
    assert carried_vectors(vector, carry, {"short": "Euclid"}) == {"short": [3.0, 4.0]}
    assert carried_vectors(vector, {"same": Carry("full")}, {}) == {"same": [3.0, 4.0, 12.0]}


def test_bm25_options_change_tokenization_and_queries_match_documents():
    pytest.importorskip("qdrant_edge")
    from qmspec.embed.sparse import Bm25Embedder

    text = "The quick brown foxes are jumping over the lazy dogs"
    default = Bm25Embedder({"name": "bm25", "options": {"language": "english"}})
    keep_all = Bm25Embedder({"name": "bm25", "options": {"language": "english", "stopwords": False, "stemming": False}})
    (doc_terms, doc_weights), = default.embed([text])
    assert len(keep_all.embed([text])[0][0]) > len(doc_terms)  # stop words kept
    (query_terms, _), = default.embed_queries(["jumping fox"])
    assert set(query_terms) <= set(doc_terms)  # stemmed alike: jumping/jump, fox/foxes
    assert all(weight > 0 and math.isfinite(weight) for weight in doc_weights)
    german = Bm25Embedder({"name": "bm25", "options": {"language": "german"}})
    assert german.embed(["Die schnellen braunen Füchse springen"])[0][0]
