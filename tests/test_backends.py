"""Backends that run without a hub, on weights laid out from packages: fastembed and Qdrant inference on a local
ONNX folder, ONNX pooling read from the model's configuration, backend names checked before anything runs."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qmspec.embed import EmbedderError, get_embedder
from qmspec.embed.dense import _pooling, pool
from qmspec.embed.models import packaged

from . import migration
from .run import cli

pytest.importorskip("fastembed")
L3 = "sentence-transformers/paraphrase-MiniLM-L3-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["how do I change my password", "make search use less memory", "point the app at a new collection"]


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory) -> Path:
    """paraphrase-MiniLM-L3-v2's ONNX export (packaged) with the tokenizer it was trained with, as fastembed reads a
    local model folder. The export has its pooled sentence output ('461') already: no pooling on top."""
    onnx, tokenizer = packaged(L3), packaged(MINILM)
    if onnx is None or tokenizer is None:
        pytest.skip("the packaged MiniLM models are not installed (scripts/setup.sh installs them)")
    folder = tmp_path_factory.mktemp("l3-onnx")
    shutil.copy(onnx, folder / "model.onnx")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "vocab.txt"):
        shutil.copy(tokenizer / name, folder / name)
    return folder


def local_model(folder: Path, backend: str) -> dict:
    return {"name": "qmspec-test/paraphrase-minilm-l3", "backend": backend, "path": str(folder),
            "options": {"dim": 384, "pooling": "disabled", "output_name": "461"}}


def test_fastembed_runs_a_local_onnx_folder_as_our_onnx_backend_does(onnx_folder):
    ours = get_embedder({"name": L3, "backend": "onnx"}).embed(TEXTS)
    theirs = get_embedder(local_model(onnx_folder, "fastembed")).embed(TEXTS)
    assert theirs.shape == (3, 384)
    assert np.allclose((ours * theirs).sum(axis=1), 1.0, atol=1e-4)


def test_fastembed_refuses_an_unknown_model_without_a_folder():
    with pytest.raises(EmbedderError, match="fastembed does not know model 'acme/nothing'"):
        get_embedder({"name": "acme/nothing", "backend": "fastembed"})


SPEC = """\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 384
    distance: Cosine
    model: {{name: qmspec-test/paraphrase-minilm-l3, backend: qdrant, path: "{folder}", options: {{dim: 384, pooling: disabled, output_name: "461"}}}}
query: {{using: dense, model: qmspec-test/paraphrase-minilm-l3}}
migration: {{batch_size: 64, scroll_page: 50}}
verify:
  search: {{queries: [topic 3, number 12], k: 5, min_overlap: 0.2}}
"""


def test_qdrant_inference_writes_texts_and_qdrant_client_embeds_them(onnx_folder, tmp_path):
    migration.template(tmp_path, 40)
    (tmp_path / "spec.yaml").write_text(SPEC.format(folder=onnx_folder), encoding="utf-8")
    applied = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "preflight: loading qmspec-test/paraphrase-minilm-l3 (qdrant)" in applied.stderr
    stored = migration.snapshot(tmp_path / "store")["collections"]["docs_v2"]
    text = stored[3][0]["text"]
    expected = get_embedder({"name": L3, "backend": "onnx"}).embed([text])[0]
    assert float(np.dot(stored[3][1]["dense"], expected)) > 0.9999
    assert str(onnx_folder) not in str(migration.snapshot(tmp_path / "store"))  # the path stays out of Qdrant


def test_onnx_pooling_follows_the_model_configuration(tmp_path):
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "cls").tolist() == [[0, 1], [6, 7]]
    assert pool(hidden, mask, "lasttoken").tolist() == [[2, 3], [10, 11]]
    assert pool(hidden, mask, "mean").tolist() == [[1, 2], [8, 9]]
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}')
    assert _pooling(tmp_path) == "cls" and _pooling(tmp_path / "nowhere") == "mean"


@pytest.mark.parametrize("backend,words", [
    ("sentence-transformer", "did you mean 'sentence-transformers'?"),
    ("mypackage", "unknown backend 'mypackage'"),
])
def test_a_typo_in_a_backend_name_fails_validation(tmp_path, backend, words):
    (tmp_path / "spec.yaml").write_text(migration.SPEC.replace('backend: "tests.plugins.hash_embedder:HashEmbedder"',
                                                               f"backend: {backend}"), encoding="utf-8")
    result = cli("validate", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "spec.yaml:8: vectors.dense.model.backend" in result.stderr and words in result.stderr
