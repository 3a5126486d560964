"""The same collection and query give the same ranking, so the same metrics, in every process: fused BM25 scores tie
often (equal texts, equal term statistics), and Qdrant orders tied points as its segments happen to meet them: the
process that wrote the points meets them in the order it wrote them, a fresh one in the order it loads them. Both
must agree exactly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from .migration import PLUGIN

pytestmark = pytest.mark.e2e  # separate processes
ROOT = Path(__file__).parent.parent
TEXTS = ["reset your password from the sign-in page", "change the billing address", "export invoices as a spreadsheet",
         "the battery lasts a day", "contact support by chat"]
EVALUATE = """
import json, sys
from qdrant_client import QdrantClient
from qmspec.applying.quality import Retriever, evaluate, rank
from qmspec.planning.judgments import load_judgments
client = QdrantClient(path=sys.argv[1])
judgments = load_judgments([sys.argv[2]])
query = {"prefetch": [{"using": "dense", "limit": 20}, {"using": "bm25", "limit": 20}], "fusion": "rrf", "limit": 10}
ranking = rank(client, Retriever("docs", query), judgments.queries, 10)
means, per_query = evaluate(judgments, ranking, ["ndcg@10", "recall@5"])
print(json.dumps({"results": {q: [str(pid) for pid, _ in hits] for q, hits in ranking.results.items()}, "means": means}))
"""


WRITE = """
import json, sys, uuid
from qdrant_client import QdrantClient, models
from qmspec.embed import get_embedder
from tests.plugins.hash_embedder import HashEmbedder
TEXTS = %r
dense = {"name": "hash-a", "backend": "%s", "options": {"size": 16}}
bm25 = get_embedder({"name": "Qdrant/bm25", "backend": "bm25", "options": {}})
client = QdrantClient(path=sys.argv[1])
client.create_collection("docs", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                         sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
                         metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": dense}, "bm25": {
                             "model": "Qdrant/bm25", "sparse": True, "model_settings": {"name": "Qdrant/bm25", "backend": "bm25"}}}}})
order = sorted(range(60), key=lambda i: -i)  # written last id first: another order than a fresh process loads them in
texts = [TEXTS[i %% len(TEXTS)] for i in order]  # every text twelve times: ties everywhere
ids = [i + 1 for i in order]
vectors, sparse = HashEmbedder(dense).embed(texts), bm25.embed(texts)
client.upsert("docs", points=[models.PointStruct(id=pid, vector={"dense": vector.tolist(), "bm25": models.SparseVector(
    indices=[int(i) for i in indices], values=[float(v) for v in values])}, payload={"text": text})
    for pid, text, vector, (indices, values) in zip(ids, texts, vectors, sparse)])
""" % (TEXTS, PLUGIN)


def test_fused_bm25_metrics_are_equal_in_the_process_that_wrote_the_points_and_in_a_fresh_one(tmp_path):
    judged = tmp_path / "judged.jsonl"
    judged.write_text("".join(json.dumps({"query": text, "relevant": [i + 1]}) + "\n" for i, text in enumerate(TEXTS)))
    store, environ = str(tmp_path / "store"), {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", program, store, str(judged)], capture_output=True, text=True, env=environ,
                           check=True, timeout=300, cwd=ROOT).stdout
            for program in (WRITE + EVALUATE.replace("client = QdrantClient(path=sys.argv[1])\n", ""), EVALUATE)]
    writer, fresh = (json.loads(run.strip().splitlines()[-1]) for run in runs)
    assert writer == fresh
    assert all(len(hits) == 10 for hits in writer["results"].values())
