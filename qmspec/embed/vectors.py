"""Vector math of carrying stored vectors instead of re-embedding: renaming, Matryoshka truncation, and a learned
linear map into a new model's space, with the recall it keeps."""
from __future__ import annotations

import numpy as np

from ..planning.plan import Carry


def carried_vectors(record_vector: dict | None, carry: dict[str, Carry], distances: dict, maps: dict | None = None) -> dict:
    """The vectors a copied point keeps: renamed; for Matryoshka truncated, or mapped through a learned linear map
    (`maps`: target vector -> matrix); then re-normalized where the distance wants unit vectors."""
    result = {}
    for target_name, how in carry.items():
        value = (record_vector or {}).get(how.source_vector)
        if value is None:
            continue
        if how.truncate_to or how.adapter:
            changed = np.asarray(value, dtype=np.float32)
            changed = changed[: how.truncate_to] if how.truncate_to else changed @ maps[target_name]
            if distances.get(target_name) in ("Cosine", "Dot"):
                norm = float(np.linalg.norm(changed))
                changed = changed / norm if norm else changed
            value = changed.tolist()
        result[target_name] = value
    return result


def fit_linear_map(old: np.ndarray, new: np.ndarray, ridge: float = 0.01) -> np.ndarray:
    """Least squares W minimizing |old @ W - new|^2 + ridge |W|^2 (scaled by samples per dimension): maps stored
    vectors into the new model's space. The small ridge keeps it stable when samples barely outnumber dimensions."""
    x, y = old.astype(np.float64), new.astype(np.float64)
    penalty = ridge * len(x) / x.shape[1] * np.eye(x.shape[1])
    return np.linalg.solve(x.T @ x + penalty, x.T @ y).astype(np.float32)


def map_recall(mapped: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Recall@k of search over mapped vectors against search over the new model's own vectors: each held-out text's
    true vector queries both sets, and the share of the true top-k that the mapped top-k also returns is averaged.
    1.0 means the map loses nothing a search would notice."""
    def unit(rows):
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    truth, mapped = unit(truth), unit(mapped)
    k = min(k, len(truth) - 1)
    true_top = np.argsort(-(truth @ truth.T), axis=1)[:, 1:k + 1]  # the query itself ranks first in both
    mapped_top = np.argsort(-(truth @ mapped.T), axis=1)[:, :k + 1]
    hits = [len(set(t) & (set(m) - {i})) for i, (t, m) in enumerate(zip(true_top, mapped_top))]
    return float(np.mean(hits) / k)
