"""Embedders, chosen by a model's `backend`: a small registry so a user can plug in another one.

Built in: `sentence-transformers` (dense), `onnx` (dense, onnxruntime), `fastembed` (dense, sparse, ColBERT),
`openai` (any OpenAI-compatible API), `bm25` (sparse, qdrant-edge-py). Any other backend written as
`package.module:ClassName` is imported and constructed with the model's settings (a dict), so an HTTP
embedding service or an in-house model plugs in by configuration alone. An embedder has `embed(texts)`
returning one vector per text (a list of floats; for sparse embedders an (indices, values) pair), and may offer
`embed_queries(texts)` where queries are embedded differently from documents (BM25).
"""
from __future__ import annotations

import importlib
import threading
from typing import Protocol

from ..errors import QmspecError
from ..trust import require_plugin


class EmbedderError(QmspecError):
    """A model could not be found, loaded or run; the message names the model and what to check."""


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list: ...


BUILT_IN = {
    "sentence-transformers": "qmspec.embed.dense:SentenceTransformerEmbedder",
    "onnx": "qmspec.embed.dense:OnnxEmbedder",
    "fastembed": "qmspec.embed.fastembed:FastEmbedEmbedder",
    "openai": "qmspec.embed.api:OpenAICompatibleEmbedder",
    "qdrant": "qmspec.embed.inference:QdrantInferenceEmbedder",
    "bm25": "qmspec.embed.sparse:Bm25Embedder",
}

_loaded: dict = {}
_lock = threading.Lock()


def is_loaded(model: dict) -> bool:
    return _key(model) in _loaded


def _key(model: dict) -> str:
    return repr(sorted((k, repr(v)) for k, v in model.items()))


def get_embedder(model: dict) -> Embedder:
    """One loaded embedder per distinct model settings per process: loading weights is the slow part."""
    key = _key(model)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _construct(model)
        return _loaded[key]


def _construct(model: dict) -> Embedder:
    backend = model.get("backend") or "sentence-transformers"
    target = BUILT_IN.get(backend, backend)
    if ":" not in target:
        raise EmbedderError(f"unknown embedding backend {backend!r} for model {model.get('name')!r}; "
                            f"use one of {', '.join(BUILT_IN)} or `package.module:ClassName`")
    if backend not in BUILT_IN:
        require_plugin(target)
    module_name, _, class_name = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise EmbedderError(f"cannot import embedder {target!r} for model {model.get('name')!r}: {exc}") from None
    return factory(model)
