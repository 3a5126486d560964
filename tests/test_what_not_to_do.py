"""The playbook's "What NOT to do", item by item: each is tried through the CLI and refused with its rule code."""
from __future__ import annotations

from pathlib import Path

import pytest

from .livebuilder import build_store
from .run import cli

MINI = "sentence-transformers/all-MiniLM-L6-v2"
LIVE = {"collections": {"docs_v1": {"vectors": {"dense": {"size": 384, "distance": "Cosine"}}, "points": 10,
                                    "models": {"dense": MINI}},
                        "docs_v2": {"vectors": {"dense": {"size": 384, "distance": "Cosine"}}, "points": 0,
                                    "models": {"dense": MINI}}},
        "aliases": {"docs": "docs_v1"}}
HEAD = "version: 1\nalias: docs\n"
NEW_MODEL = "vectors:\n  dense: {size: 768, distance: Cosine, model: {name: sentence-transformers/all-mpnet-base-v2}}\n"

ITEMS = {
    "assume you can add named vectors to an existing collection": (
        "MF305", HEAD + "collection: docs_v1\nvectors:\n  dense: {size: 384, distance: Cosine, model: {name: " + MINI + "}}\n"
                 "  extra: {size: 768, distance: Cosine, model: {name: sentence-transformers/all-mpnet-base-v2}}\n"),
    "delete the old collection before verifying the new one": (
        "DS101", HEAD + "collection: docs_v3\n" + NEW_MODEL + "cleanup: {old_collection: delete, when: immediately}\n"),
    "forget to update the query embedding model": (
        "BC201", HEAD + "collection: docs_v3\n" + NEW_MODEL + "query: {using: dense, model: " + MINI + "}\n"),
    "skip payload migration when using alias swap": (
        "MF301", HEAD + "collection: docs_v2\nvectors:\n  dense: {size: 384, distance: Cosine, model: {name: " + MINI + "}}\n"),
    "keep ColBERT vectors co-located with dense vectors during a long migration": (
        "PF501", HEAD + "collection: docs_v3\nvectors:\n  dense: {size: 384, distance: Cosine, carry: {from: dense}}\n"
                 "  colbert: {size: 128, distance: Cosine, multivector: {comparator: max_sim}, model: {name: colbert-ir/colbertv2.0}}\n"),
    "migrate to hybrid search without testing BM25 quality at chunk level": (
        "MF303", HEAD + "collection: docs_v3\nvectors:\n  dense: {size: 384, distance: Cosine, carry: {from: dense}}\n"
                 "sparse_vectors:\n  bm25: {model: {name: Qdrant/bm25}}\n"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("not-to-do")
    build_store(str(folder / "qdrant"), LIVE)
    return folder


@pytest.mark.parametrize("item", ITEMS, ids=[code for code, _ in ITEMS.values()])
def test_refused_with_its_rule_code(store, item):
    code, spec = ITEMS[item]
    path = store / f"{code}.yaml"
    path.write_text(spec, encoding="utf-8")
    for command in ("plan", "apply"):
        extra = ["--auto-approve"] if command == "apply" else []
        result = cli(command, path.name, "--path", "qdrant", *extra, cwd=store)
        assert result.returncode == 3, f"{item}: {result.stdout}{result.stderr}"
        assert f"error    {code}" in result.stdout, item
