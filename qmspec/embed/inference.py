"""Qdrant inference (`backend: qdrant`): qmspec sends texts, not vectors. Points are written with
`models.Document(text, model)` and queries are asked the same way, so whoever embeds for Qdrant does it here too:
the server with Qdrant Cloud inference (`cloud_inference: true` on the connection), else qdrant-client itself with
fastembed. Switching models is then a configuration change, as the playbook says."""
from __future__ import annotations

from . import EmbedderError
from .dense import prompt_text


class QdrantInferenceEmbedder:
    def __init__(self, model: dict):
        from qdrant_client import models

        self.models = models
        self.name = model["name"]
        if model.get("path"):  # a local model that qdrant-client's fastembed must know before it can embed with it
            from .fastembed import family_of, register_custom

            family_of(self.name) or register_custom(model)
        from .fastembed import loader_options

        self.options = loader_options(model) or None
        prompts = model.get("prompts") or {}
        self.prompts = {role: prompt_text(prompts.get(role), {}) for role in ("query", "document")}
        self.dimension = None  # known to whoever embeds: the write fails with Qdrant's own message on a mismatch
        self.commit = None

    def embed(self, texts: list[str]) -> list:
        return [self.models.Document(text=self.prompts["document"] + text, model=self.name, options=self.options) for text in texts]

    def embed_queries(self, texts: list[str]) -> list:
        return [self.models.Document(text=self.prompts["query"] + text, model=self.name, options=self.options) for text in texts]

    def probe(self, texts: list[str]) -> list:
        """Real vectors for the preflight, computed as qdrant-client computes them locally (fastembed)."""
        try:
            from qdrant_client.embed.embedder import Embedder
        except ImportError:
            raise EmbedderError("the qdrant backend embeds locally with fastembed: pip install 'qmspec[fastembed]'") from None
        try:
            return list(Embedder().embed(self.name, texts=[self.prompts["document"] + text for text in texts],
                                         options=self.options))
        except Exception as exc:  # noqa: BLE001 - fastembed and qdrant-client raise plain errors
            raise EmbedderError(f"Qdrant inference cannot embed with {self.name!r}: {str(exc).splitlines()[0][:300]}") from None
