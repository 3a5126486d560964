"""Dense embedders: sentence-transformers (PyTorch) and ONNX Runtime. Both offline, both Matryoshka-aware."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import EmbedderError
from .models import TOKENIZER_OF, resolve

MAX_TOKENS = 256
BATCH = 64  # texts per forward pass: big enough to use both cores, small enough to keep padding waste low


def finish(vectors: np.ndarray, truncate_dim: int | None, normalize: bool) -> np.ndarray:
    """Matryoshka truncation first, then normalization: a prefix of a unit vector is not a unit vector."""
    if truncate_dim:
        vectors = vectors[:, :truncate_dim]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    return vectors.astype(np.float32)


class SentenceTransformerEmbedder:
    def __init__(self, model: dict):
        for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                            ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
            os.environ.setdefault(name, value)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbedderError("sentence-transformers is not installed: install qmspec with its `embed` extra "
                                "(torch==2.13.0 first, see README)") from None
        self.name = model["name"]
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        self.batch = int((model.get("options") or {}).get("batch_size", BATCH))
        path = resolve(self.name, model.get("path"))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.model = SentenceTransformer(str(path), device=device)
        except Exception as exc:  # noqa: BLE001 - many loader errors, one message
            raise EmbedderError(f"cannot load model {self.name!r} from {path}: {exc}") from None

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch, convert_to_numpy=True, normalize_embeddings=False,
                                    show_progress_bar=False)
        return finish(vectors, self.truncate_dim, self.normalize)


class OnnxEmbedder:
    """A BERT-style ONNX export with mean pooling, tokenized with the `tokenizers` library."""

    def __init__(self, model: dict):
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise EmbedderError("onnxruntime is not installed: pip install onnxruntime") from None
        self.name = model["name"]
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        path = resolve(self.name, model.get("path"))
        onnx_file = path if path.is_file() else next(iter(sorted(path.glob("*.onnx"))), None)
        if onnx_file is None:
            raise EmbedderError(f"model {self.name!r}: no .onnx file in {path}")
        tokenizer_file = self._tokenizer_file(model, path)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.inputs = {item.name for item in self.session.get_inputs()}
        self.pooled, self.tokens = self._outputs()

    def _tokenizer_file(self, model: dict, path: Path) -> Path:
        given = (model.get("options") or {}).get("tokenizer")
        if given:
            return Path(given)
        folder = path if path.is_dir() else path.parent
        if (folder / "tokenizer.json").exists():
            return folder / "tokenizer.json"
        if self.name in TOKENIZER_OF:
            return resolve(TOKENIZER_OF[self.name], None) / "tokenizer.json"
        raise EmbedderError(f"model {self.name!r}: no tokenizer.json beside the ONNX file; give model.tokenizer")

    def _outputs(self) -> tuple[str | None, str | None]:
        """Prefer the export's own pooled sentence output ([batch, dim]); else mean-pool token embeddings."""
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
        """Length-sorted batches, like sentence-transformers: similar lengths pad little."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start:start + BATCH] for start in range(0, len(order), BATCH)]
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
            hidden = self.session.run([self.tokens], feeds)[0]
            vectors = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return finish(vectors, self.truncate_dim, self.normalize)
