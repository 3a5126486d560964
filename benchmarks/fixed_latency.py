"""An embedder that answers like a GPU service or an API seen from the driver: a fixed latency per batch of texts,
no CPU spent. Backend `benchmarks.fixed_latency:FixedLatencyEmbedder`, options {size, latency, batch}."""
from __future__ import annotations

import hashlib
import time

import numpy as np


class FixedLatencyEmbedder:
    def __init__(self, model: dict):
        options = model.get("options") or {}
        self.size, self.latency, self.batch = int(options.get("size", 16)), float(options.get("latency", 0.02)), int(options.get("batch", 64))

    def embed(self, texts: list[str]) -> np.ndarray:
        for _ in range(0, len(texts), self.batch):
            time.sleep(self.latency)
        rows = [np.frombuffer(hashlib.sha256(text.encode()).digest()[: self.size * 2], dtype=np.uint8)[: self.size].astype(np.float32) + 1
                for text in texts]
        return np.stack([row / np.linalg.norm(row) for row in rows])
