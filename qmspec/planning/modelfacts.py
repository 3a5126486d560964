"""What a preflight learned of each model by loading it and embedding a sample of the texts it will embed: facts the
planner takes as values, like live state, to record the commit a name resolved to and to estimate time and cost."""
from __future__ import annotations

from dataclasses import dataclass

from .plan import CopyPoints, LoadFiles, Plan, embeds
from .spec import Spec

CHARS_PER_TOKEN = 4  # the usual estimate for English text when the API's tokenizer is not at hand


def duration(seconds: float) -> str:
    """1h02m, 2m05s or 7s."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass(frozen=True)
class ModelFacts:
    name: str
    dimension: int | None = None
    seconds_per_text: float | None = None  # measured on the sample, model start-up excluded
    chars_per_text: float | None = None  # mean length of the sample texts
    commit: str | None = None  # the repository commit the name (and revision) resolved to
    price_per_million_tokens: float | None = None  # APIs: what the spec says they charge
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def estimate(self, texts: int) -> dict:
        """Time (and, for APIs, tokens and cost) to embed `texts` texts."""
        figures: dict = {"texts": texts}
        if self.seconds_per_text is not None:
            figures["seconds"] = round(texts * self.seconds_per_text, 1)
        if self.chars_per_text is not None:
            tokens = round(texts * self.chars_per_text / CHARS_PER_TOKEN)
            figures["tokens"] = tokens
            if self.price_per_million_tokens is not None:
                figures["cost"] = round(tokens / 1e6 * self.price_per_million_tokens, 4)
            if self.tokens_per_minute:
                figures["seconds"] = max(figures.get("seconds", 0), round(tokens / self.tokens_per_minute * 60, 1))
        return figures


@dataclass(frozen=True)
class ModelNeed:
    """A model a plan will run, and where a sample of the texts it will embed can be read."""

    vector: str
    settings: dict  # the model's settings as the plan's steps carry them
    size: int | None  # the dimension the collection stores; None for sparse vectors
    text_field: str
    collection: str | None = None  # payloads to sample
    files: tuple[str, ...] = ()
    id_field: str = "id"


def model_needs(plan: Plan, spec: Spec | None) -> list[ModelNeed]:
    """Every model the plan embeds with, once per vector, in plan order. Without the spec (a saved plan), the
    dimensions are not checked."""
    needs: dict[str, ModelNeed] = {}
    filled: dict[str, dict] = {}  # a collection this plan fills -> where its points come from
    for step in plan.steps:
        if isinstance(step, CopyPoints):
            filled[step.target] = {"collection": step.source}
        elif isinstance(step, LoadFiles):
            filled[step.collection] = {"files": step.files, "id_field": step.id_field}
        for work in embeds(step):
            where = filled.get(work.collection) if work.collection else None
            where = where or {"collection": work.collection, "files": work.files, "id_field": work.id_field}
            size = getattr(spec.vector(work.vector), "size", None) if spec else None
            needs.setdefault(work.vector, ModelNeed(work.vector, work.embedding.model, size, work.embedding.text_field, **where))
    return list(needs.values())
