"""Quality gates on relevance judgments (the fast tier: the deterministic hash embedder, whose query for a passage's
exact text finds that passage first). A judged query here is a passage's text, relevant: that passage; a model that
embeds another field than the one judged retrieves the wrong passages. tests/test_examples.py runs the same gates
with real models (examples/6)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from qdrant_client import QdrantClient, models

from qmspec.applying.quality import Retriever, evaluate, rank
from qmspec.planning.judgments import load_judgments
from qmspec.errors import QmspecError

from .migration import PLUGIN
from .plugins.hash_embedder import HashEmbedder
from .run import cli

POINTS = 60
APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")


def text(i: int) -> str:
    return f"passage {i} on topic {i % 7}"


def model(name: str) -> str:
    return f'{{name: {name}, backend: "{PLUGIN}", options: {{size: 16}}}}'


def spec(collection: str, *, vector_model: str = "hash-b", text_field: str = "text", quality: str = "", extra: str = "") -> str:
    return (f"version: 1\nalias: docs\ncollection: {collection}\n"
            f"vectors:\n  dense:\n    size: 16\n    distance: Cosine\n    model: {model(vector_model)}\n    text_field: {text_field}\n"
            f"query: {{using: dense, model: {vector_model}}}\nmigration: {{scroll_page: 1000}}\n"
            + (f"verify:\n  quality:\n{quality}" if quality else "") + extra)


@pytest.fixture()
def project(tmp_path):
    """docs_v1 behind alias docs, embedded with hash-a from `text` (so it answers the judged queries), and the
    judgments: each of 20 passages' text, relevant: that passage."""
    client = QdrantClient(path=str(tmp_path / "store"))
    settings = {"name": "hash-a", "backend": PLUGIN, "options": {"size": 16}}
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": settings}}}})
    vectors = HashEmbedder(settings).embed([text(i) for i in range(1, POINTS + 1)])
    client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": vectors[i - 1].tolist()},
                                                        payload={"text": text(i), "other": text(POINTS + 1 - i)}) for i in range(1, POINTS + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()
    (tmp_path / "judged.jsonl").write_text("".join(json.dumps({"query": text(i), "relevant": [i]}) + "\n" for i in range(1, 21)))
    return tmp_path


GATES = "    judgments: judged.jsonl\n    metrics: [ndcg@10, recall@5]\n    max_drop: {ndcg@10: 0.02}\n"


def serving(folder) -> str:
    client = QdrantClient(path=str(folder / "store"))
    try:
        return {a.alias_name: a.collection_name for a in client.get_aliases().aliases}["docs"]
    finally:
        client.close()


def test_a_model_as_good_as_the_current_one_passes_and_the_report_shows_both(project):
    (project / "spec.yaml").write_text(spec("docs_v2", quality=GATES))
    result = cli(*APPLY, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"quality\s+pass\s+against docs_v1:dense: ndcg@10 1\.000 vs 1\.000: \+0\.000 \(95% CI \+0\.000 to \+0\.000, "
                     r"20 queries, paired bootstrap\); recall@5 1\.000 vs 1\.000: \+0\.000 .*; ndcg@10 change \+0\.000 "
                     r"\(95% CI \+0\.000 to \+0\.000\) within max_drop 0\.02", result.stdout), result.stdout
    assert serving(project) == "docs_v2"


def test_a_quality_drop_stops_before_the_swap_with_exit_3_and_only_an_explicit_journaled_acceptance_moves_on(project):
    (project / "spec.yaml").write_text(spec("docs_v2", text_field="other", quality=GATES))
    refused = cli(*APPLY, cwd=project)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert re.search(r"quality\s+FAIL\s+against docs_v1:dense: ndcg@10 0\.\d+ vs 1\.000: -0\.\d+ \(95% CI -0\.\d+ to -0\.\d+", refused.stdout)
    assert "exceeds max_drop 0.02: the whole interval is beyond it" in refused.stdout
    assert "the alias was not moved" in refused.stderr
    assert '--accept-quality "why"' in refused.stderr and serving(project) == "docs_v1"
    status = cli("status", "spec.yaml", "--path", "store", "--format", "json", cwd=project)
    assert json.loads(status.stdout)["last_apply"]["status"] == "verify_failed"

    fresh = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", "--accept-quality", "x", cwd=tmp_other(project))
    assert fresh.returncode == 1 and "there is none" in fresh.stderr  # nothing open to accept in another project

    accepted = cli(*APPLY, "--accept-quality", "ids of the other field are what we want", cwd=project)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert re.search(r"quality\s+accepted\s+.*accepted: ids of the other field are what we want", accepted.stdout)
    assert serving(project) == "docs_v2"
    journal = json.loads(next((project / ".qmspec" / "state").rglob("docs.json")).read_text())
    assert journal["history"][-1]["status"] == "succeeded"
    report = json.loads(next((project / ".qmspec" / "reports").rglob("docs-*.json")).read_text())
    assert report["passed"] and next(c for c in report["checks"] if c["name"] == "quality")["accepted"]


def tmp_other(project):
    other = project / "other"
    other.mkdir()
    shutil.copytree(project / "store", other / "store")
    shutil.copy(project / "spec.yaml", other / "spec.yaml")
    shutil.copy(project / "judged.jsonl", other / "judged.jsonl")
    return other


def test_a_first_deployment_gates_on_min_and_has_nothing_to_compare_with(tmp_path):
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": i, "text": text(i)}) + "\n" for i in range(1, POINTS + 1)))
    (tmp_path / "judged.jsonl").write_text("".join(json.dumps({"query": text(i), "relevant": [i]}) + "\n" for i in range(1, 21)))
    gates = "    judgments: judged.jsonl\n    min: {ndcg@10: 0.9}\n    max_drop: {ndcg@10: 0.02}\n"
    agreement = "  search: {queries: [passage 3], k: 5}\n"
    (tmp_path / "spec.yaml").write_text(spec("docs_v1", quality=gates, extra=agreement + "source: {files: [docs.jsonl]}\n"))
    result = cli(*APPLY, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ndcg@10 1.000 >= min 0.9" in result.stdout
    assert "max_drop ndcg@10: not applicable (nothing to compare with)" in result.stdout
    assert re.search(r"agreement\s+n/a\s+not applicable \(nothing to compare with", result.stdout)  # never a pass against itself


def test_the_fused_query_is_what_verify_runs_and_it_measures_something_else_than_either_vector(project, monkeypatch):
    fused = ("sparse_vectors:\n  bm25: {modifier: idf, model: {name: Qdrant/bm25, language: english}}\n"
             "query:\n  prefetch: [{using: dense, limit: 20}, {using: bm25, limit: 20}]\n  fusion: rrf\n  limit: 10\n")
    body = spec("docs_hybrid", text_field="other", quality=GATES).replace("query: {using: dense, model: hash-b}\n", "")
    (project / "spec.yaml").write_text(body + fused + "policy: {allow: [BC202]}\n")
    requests = []
    original = QdrantClient.query_batch_points

    def spy(self, collection_name, requests=(), **kwargs):
        if collection_name == "docs_hybrid":
            recorded.extend(requests)
        return original(self, collection_name, requests=requests, **kwargs)

    recorded = requests
    monkeypatch.setattr(QdrantClient, "query_batch_points", spy)
    result = cli(*APPLY, "--stop-before-swap", cwd=project)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    # each prefetch searched on its own, in pairs per query, then fused with Qdrant's RRF here (ties ordered by id first)
    assert requests and len(requests) % 2 == 0 and all(r.prefetch is None for r in requests)
    assert [r.using for r in requests[:2]] == ["dense", "bm25"] and all(r.limit >= 20 for r in requests)

    judgments = load_judgments([str(project / "judged.jsonl")])
    client = QdrantClient(path=str(project / "store"))
    try:
        means = {name: evaluate(judgments, rank(client, Retriever("docs_hybrid", query), judgments.queries, 10), ["ndcg@10"])[0]["ndcg@10"]
                 for name, query in (("dense", {"using": "dense"}), ("bm25", {"using": "bm25"}),
                                     ("fused", {"prefetch": [{"using": "dense", "limit": 20}, {"using": "bm25", "limit": 20}],
                                                "fusion": "rrf", "limit": 10}))}
    finally:
        client.close()
    assert means["fused"] not in (means["dense"], means["bm25"]), means


def test_stop_before_swap_stages_and_a_later_apply_catches_up_verifies_again_and_promotes(project):
    (project / "spec.yaml").write_text(spec("docs_v2", quality=GATES))
    staged = cli(*APPLY, "--stop-before-swap", cwd=project)
    assert staged.returncode == 0 and "Staged: docs_v2 is built and verified; alias docs still serves docs_v1" in staged.stdout
    assert serving(project) == "docs_v1"
    client = QdrantClient(path=str(project / "store"))  # the application writes meanwhile
    client.upsert("docs_v1", points=[models.PointStruct(id=999, vector={"dense": [0.25] * 16}, payload={"text": "written later", "other": "x"})])
    client.close()
    promoted = cli(*APPLY, cwd=project)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "resuming plan" in promoted.stdout + promoted.stderr and "[5/6] verify docs_v2" in promoted.stderr  # verified again
    client = QdrantClient(path=str(project / "store"))
    try:
        assert client.retrieve("docs_v2", ids=[999])[0].payload["text"] == "written later"
    finally:
        client.close()
    assert serving(project) == "docs_v2"


def test_compare_puts_metrics_side_by_side_with_wins_losses_markdown_and_a_plot(project):
    (project / "spec.yaml").write_text(spec("docs_v2", text_field="other"))
    assert cli(*APPLY, cwd=project).returncode == 0
    result = cli("compare", "spec.yaml", "--path", "store", "--a", "docs_v1", "--b", "docs_v2", "--judgments", "judged.jsonl",
                 "--metric", "ndcg@10", "--metric", "mrr@10", cwd=project)
    assert result.returncode == 0, result.stderr
    assert re.search(r"ndcg@10\s+1\.000\s+0\.\d+\s+-0\.\d+", result.stdout)
    assert "B better on 0 queries, worse on 20" in result.stdout and "losses:" in result.stdout
    markdown = cli("compare", "spec.yaml", "--path", "store", "--a", "docs_v1", "--b", "docs_v2", "--judgments", "judged.jsonl",
                   "--format", "markdown", "--plot", "compare.png", cwd=project)
    assert "<summary>B loses on 20 queries</summary>" in markdown.stdout and (project / "compare.png").stat().st_size > 1000
    agreement = cli("compare", "spec.yaml", "--path", "store", "--a", "docs_v1", "--b", "docs_v2", "--queries-file", "judged.jsonl", cwd=project)
    assert "not which is better" in agreement.stdout


def test_judge_writes_candidates_that_become_judgments(project):
    (project / "spec.yaml").write_text(spec("docs_v2"))
    assert cli(*APPLY, cwd=project).returncode == 0
    result = cli("judge", "spec.yaml", "--path", "store", "--out", "candidates.jsonl", "--sample", "8", "-k", "3", cwd=project)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (project / "candidates.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["relevant"] == [] and r["candidates"] for r in records)
    records[0]["relevant"] = [records[0]["candidates"][0]["id"]]  # a person judged one query
    (project / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert len(load_judgments([str(project / "candidates.jsonl")])) == 1


def test_judgments_in_json_lines_graded_or_beir_and_their_errors(tmp_path):
    (tmp_path / "graded.jsonl").write_text('{"query": "a", "relevant": {"12": 2, "7": 1}}\n\n{"query": "b", "relevant": ["x-uuid"]}\n')
    graded = load_judgments([str(tmp_path / "graded.jsonl")])
    assert graded.relevant == {"q1": {12: 2, 7: 1}, "q3": {"x-uuid": 1}}
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "first"}\n{"_id": "2", "text": "second"}\n')
    (tmp_path / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\t10\t1\n2\t11\t0\n")
    beir = load_judgments([str(tmp_path / "queries.jsonl"), str(tmp_path / "test.tsv")])
    assert beir.queries == {"1": "first"} and beir.relevant == {"1": {10: 1}}
    (tmp_path / "bad.jsonl").write_text('{"query": "a", "relevant": [1]}\n{"q": "b"}\n')
    with pytest.raises(QmspecError, match=r"bad\.jsonl:2: expected"):
        load_judgments([str(tmp_path / "bad.jsonl")])


def test_validate_warns_about_gates_that_cannot_fail_and_refuses_unknown_metrics(project):
    never = "verify:\n  search: {queries: [a], min_overlap: 0.0}\n"
    (project / "never.yaml").write_text(spec("docs_v2", extra=never))
    warned = cli("validate", "never.yaml", cwd=project)
    assert warned.returncode == 0 and "min_overlap 0 passes whatever the results: this gate cannot fail" in warned.stdout
    (project / "typo.yaml").write_text(spec("docs_v2", quality="    judgments: judged.jsonl\n    metrics: [ndcg@10]\n    max_drop: {recall@10: 0.1}\n"))
    refused = cli("validate", "typo.yaml", cwd=project)
    assert refused.returncode == 1 and "'recall@10' is gated but not computed" in refused.stdout + refused.stderr
