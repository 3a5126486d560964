"""Models named the normal way, as a user's machine resolves them: a Hugging Face cache laid out on disk (HF_HOME)
from the packaged MiniLM weights, read with HF_HUB_OFFLINE=1 through sentence-transformers' own resolution; a
revision pin; a miss that says where it looked and how to download; e5-style prompts in stored vectors, in the
recorded identity and in verification queries; a prompt change that plans a re-embedding."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from qmspec.embed.dense import SentenceTransformerEmbedder
from qmspec.embed.models import packaged

from .run import ROOT, qmspec

pytestmark = pytest.mark.e2e  # real models in real processes (HF_HOME is read when huggingface_hub is imported)
pytest.importorskip("sentence_transformers")
REPO = "qmspec-test/minilm"
MAIN, CLS = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
SPEC = """\
version: 1
alias: docs
collection: {collection}
{source}vectors:
  dense:
    size: 384
    distance: Cosine
    model: {model}
query: {{using: dense, model: {name}}}
verify:
  search: {{queries: [forgot my password, less memory], k: 5, min_overlap: 0.6}}
"""


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    """The hub's cache layout for repo qmspec-test/minilm: main is MiniLM as shipped; commit CLS pools the CLS
    token instead of the mean, so its vectors differ."""
    weights = packaged("sentence-transformers/all-MiniLM-L6-v2")
    if weights is None:
        pytest.skip("the packaged MiniLM is not installed (scripts/setup.sh installs it)")
    home = tmp_path_factory.mktemp("hf-home")
    repo = home / "hub" / f"models--{REPO.replace('/', '--')}"
    for commit in (MAIN, CLS):
        shutil.copytree(weights, repo / "snapshots" / commit)
    (repo / "snapshots" / CLS / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    return home


@pytest.fixture()
def project(tmp_path, hf_home) -> Path:
    shutil.copy(ROOT / "specs" / "data" / "docs.jsonl", tmp_path / "docs.jsonl")
    return tmp_path


def write_spec(folder: Path, model: str, collection: str = "docs_v1", file: str = "spec.yaml") -> str:
    """A first deployment from docs.jsonl (docs_v1), or a migration copying from what the alias serves."""
    name = model.split("name: ")[1].split(",")[0].rstrip("}")
    source = "source: {files: [docs.jsonl]}\n" if collection == "docs_v1" else ""
    (folder / file).write_text(SPEC.format(collection=collection, source=source, model=model, name=name), encoding="utf-8")
    return file


def run(folder: Path, hf_home: Path, *args) -> object:
    return qmspec(*args, "--path", "store", cwd=folder, env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})


def stored(folder: Path, collection: str, point: int = 1) -> tuple[np.ndarray, dict]:
    client = QdrantClient(path=str(folder / "store"))
    try:
        [record] = client.retrieve(collection, [point], with_vectors=True, with_payload=True)
        metadata = client.get_collection(collection).config.metadata
        return np.asarray(record.vector["dense"]), {"text": record.payload["text"], "metadata": metadata}
    finally:
        client.close()


def snapshot_embedder(hf_home: Path, commit: str, **settings) -> SentenceTransformerEmbedder:
    folder = hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit
    return SentenceTransformerEmbedder({"name": REPO, "path": str(folder)} | settings)


def test_a_hub_name_resolves_through_the_cache_and_records_its_commit_not_a_path(project, hf_home):
    write_spec(project, f"{{name: {REPO}}}")
    planned = run(project, hf_home, "plan", "spec.yaml", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    assert f"preflight: loading {REPO} (sentence-transformers)" in planned.stderr
    recorded = json.loads(planned.stdout)["steps"][0]["metadata"]["qmspec"]["vectors"]["dense"]
    assert recorded["commit"] == MAIN and "path" not in recorded["model_settings"]
    applied = run(project, hf_home, "apply", "spec.yaml", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    vector, point = stored(project, "docs_v1")
    assert np.allclose(vector, snapshot_embedder(hf_home, MAIN).embed([point["text"]])[0], atol=1e-5)
    assert str(hf_home) not in json.dumps(point["metadata"])


def test_a_revision_pin_picks_its_snapshot(project, hf_home):
    write_spec(project, f"{{name: {REPO}, revision: {CLS}}}")
    applied = run(project, hf_home, "apply", "spec.yaml", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    vector, point = stored(project, "docs_v1")
    assert np.allclose(vector, snapshot_embedder(hf_home, CLS).embed([point["text"]])[0], atol=1e-5)
    assert float(vector @ snapshot_embedder(hf_home, MAIN).embed([point["text"]])[0]) < 0.99  # another model
    assert point["metadata"]["qmspec"]["vectors"]["dense"]["revision"] == CLS
    inspected = run(project, hf_home, "inspect", "--alias", "docs")
    assert f"revision: {CLS}" in inspected.stdout and "path" not in inspected.stdout
    (project / "inspected.yaml").write_text(inspected.stdout, encoding="utf-8")
    again = run(project, hf_home, "plan", "inspected.yaml", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr


def test_a_model_missing_offline_says_where_it_looked_and_how_to_get_it(project, hf_home):
    write_spec(project, "{name: qmspec-test/not-there}")
    result = run(project, hf_home, "plan", "spec.yaml")
    assert result.returncode == 1
    assert "'qmspec-test/not-there' could not be loaded" in result.stderr and str(hf_home / "hub") in result.stderr
    assert "`hf download qmspec-test/not-there`" in result.stderr and "Traceback" not in result.stderr
    assert run(project, hf_home, "apply", "spec.yaml", "--auto-approve").returncode == 1
    assert not list(project.glob(".qmspec/state/**/*.json"))  # no journal: the apply never started
    client = QdrantClient(path=str(project / "store"))
    try:
        assert client.get_collections().collections == []  # nothing written
    finally:
        client.close()


def test_prompts_shape_the_stored_vectors_and_the_queries_and_changing_one_means_re_embedding(project, hf_home):
    e5 = f'{{name: {REPO}, prompts: {{query: "query: ", document: "passage: "}}}}'
    write_spec(project, e5)
    applied = run(project, hf_home, "apply", "spec.yaml", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    vector, point = stored(project, "docs_v1")
    plain = snapshot_embedder(hf_home, MAIN)
    assert np.allclose(vector, plain.embed(["passage: " + point["text"]])[0], atol=1e-5)
    assert not np.allclose(vector, plain.embed([point["text"]])[0], atol=1e-3)
    recorded = point["metadata"]["qmspec"]["vectors"]["dense"]
    assert recorded["prompts"] == {"query": "query: ", "document": "passage: "}
    # verification (and compare) embed queries from the recorded settings: with the query prompt
    queries = snapshot_embedder(hf_home, MAIN, prompts=recorded["model_settings"]["prompts"]).embed_queries(["forgot my password"])
    assert np.allclose(queries, plain.embed(["query: forgot my password"]), atol=1e-5)

    write_spec(project, f'{{name: {REPO}, prompts: {{query: "query: ", document: "document: "}}}}', file="changed.yaml")
    in_place = run(project, hf_home, "plan", "changed.yaml")
    assert in_place.returncode == 3 and "MF302" in in_place.stdout
    drift = run(project, hf_home, "drift", "changed.yaml", "--detailed-exitcode")
    assert drift.returncode == 2 and 'prompts: {query: "query: ", document: "passage: "}' in drift.stdout
    write_spec(project, f'{{name: {REPO}, prompts: {{query: "query: ", document: "document: "}}}}', "docs_v2", "v2.yaml")
    migrated = run(project, hf_home, "plan", "v2.yaml")
    assert migrated.returncode == 0, migrated.stdout
    assert f"dense: re-embed with {REPO} (stored vectors come from {REPO}; prompts {{query: \"query: \", document: \"passage: \"}} -> " in migrated.stdout


def test_an_openai_compatible_server_embedding_with_minilm_gives_the_vectors_sentence_transformers_gives():
    from qmspec.embed.api import OpenAICompatibleEmbedder

    from .embedding_server import EmbeddingServer

    weights = packaged("sentence-transformers/all-MiniLM-L6-v2")
    if weights is None:
        pytest.skip("the packaged MiniLM is not installed (scripts/setup.sh installs it)")
    local = SentenceTransformerEmbedder({"name": "all-MiniLM-L6-v2", "path": str(weights), "normalize": False})
    texts = ["How to reset a forgotten password", "Enabling two-factor authentication", "quantization saves memory"]
    with EmbeddingServer(local.embed) as server:
        remote = OpenAICompatibleEmbedder({"name": "all-MiniLM-L6-v2", "backend": "openai", "options": {
            "base_url": server.base_url, "encoding_format": "base64"}, "prompts": {"document": "passage: "}})
        vectors = remote.embed(texts)
    expected = SentenceTransformerEmbedder({"name": "all-MiniLM-L6-v2", "path": str(weights)}).embed(["passage: " + t for t in texts])
    assert np.allclose(vectors, expected, atol=1e-5)
