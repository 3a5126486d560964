"""Preflight: before anything is written, load each model a plan needs and embed a sample of the texts it will
embed. A model that cannot load, or whose vectors have another dimension than the collection stores, stops the
plan with every such problem named; otherwise the facts learned (dimension, seconds per text, resolved commit)
go back to the planner for the plan's records and estimates."""
from __future__ import annotations

import time

from ..logs import logger
from ..planning.modelfacts import ModelFacts, ModelNeed
from . import EmbedderError, get_embedder

log = logger(__name__)

PROBE = "qmspec preflight: a short probe text"
SAMPLE = 32  # texts timed per model: one API request, a few forward passes locally


def check_models(needs: list[ModelNeed], samples: dict[str, dict]) -> dict[str, ModelFacts]:
    """`samples`: vector -> {point id: value of its text field} for the first points the vector is embedded from."""
    facts: dict[str, ModelFacts] = {}
    problems: list[str] = []
    for need in needs:
        name = need.settings["name"]
        sample = samples.get(need.vector, {})
        not_text = [pid for pid, value in sample.items() if not isinstance(value, str)]
        if not_text:
            problems.append(f"{need.vector}: {len(not_text)} of the first {len(sample)} points have no text in payload field "
                            f"{need.text_field!r} (ids {', '.join(map(str, not_text[:5]))}); fix their payloads or set "
                            "text_field in the spec")
        texts = [value for value in sample.values() if isinstance(value, str)][:SAMPLE] or [PROBE]
        log.info(f"preflight: loading {name} ({need.settings.get('backend')}) for {need.vector}")
        try:
            found = _check(need, texts)
        except EmbedderError as error:
            problems.append(f"{need.vector}: {error}")
            continue
        if need.size and found.dimension and found.dimension != need.size:
            problems.append(f"{need.vector}: {name} produces {found.dimension}-dimensional vectors but the collection stores "
                            f"{need.size}; set `size: {found.dimension}` (or truncate_dim for a Matryoshka model)")
        facts.setdefault(name, found)
    if problems:
        raise EmbedderError("preflight failed, nothing was written:\n  " + "\n  ".join(problems))
    return facts


def _check(need: ModelNeed, texts: list[str]) -> ModelFacts:
    embedder = get_embedder(need.settings)
    embed = getattr(embedder, "probe", None) or embedder.embed  # Qdrant inference: real vectors, as qdrant-client makes them
    started = time.perf_counter()
    vectors = embed(texts)
    seconds = (time.perf_counter() - started) / len(texts)
    options = need.settings.get("options") or {}
    api = need.settings.get("backend") == "openai"
    return ModelFacts(
        name=need.settings["name"],
        dimension=_dimension(vectors[0]) if len(vectors) else None,
        seconds_per_text=round(seconds, 6),
        chars_per_text=round(sum(map(len, texts)) / len(texts), 1) if api else None,
        commit=getattr(embedder, "commit", None),
        price_per_million_tokens=options.get("price_per_million_tokens") if api else None,
        requests_per_minute=options.get("requests_per_minute") if api else None,
        tokens_per_minute=options.get("tokens_per_minute") if api else None,
    )


def _dimension(vector) -> int | None:
    """Dense: its length; multivector: the length of one token's vector; sparse (indices, values): None."""
    if isinstance(vector, tuple):
        return None
    first = vector[0] if len(vector) else None
    return len(first) if hasattr(first, "__len__") else len(vector)
