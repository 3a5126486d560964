"""A deterministic embedder for tests of the apply machinery (resume, locks, crashes), plugged in through the
registry's `module:Class` backends exactly as a user's own embedder would be: backend
`tests.plugins.hash_embedder:HashEmbedder`. Vectors come from a hash of the text and the model name, so two
"models" give different vector spaces and every run gives the same vectors. `options.delay` slows it down."""
from __future__ import annotations

import hashlib
import time

import numpy as np


class HashEmbedder:
    def __init__(self, model: dict):
        self.name = model["name"]
        self.size = int((model.get("options") or {}).get("size", 16))
        self.delay = float((model.get("options") or {}).get("delay", 0))
        self.batch = int(model.get("batch_size") or 256)  # what a real embedder sends at once: progress moves per batch

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(f"{self.name}|{text}".encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(self.size).astype(np.float32)
            rows.append(row / np.linalg.norm(row))
        return np.stack(rows)
