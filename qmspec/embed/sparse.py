"""BM25 sparse vectors, computed locally with qdrant-edge-py's `Bm25` (the tokenizer, stemmer and stop-word lists
Qdrant itself uses), stored with Qdrant's IDF modifier so the server supplies IDF. Queries go through
`embed_query` of the same model, so documents and queries are tokenized alike."""
from __future__ import annotations

from . import EmbedderError


class Bm25Embedder:
    def __init__(self, model: dict):
        try:
            import qdrant_edge
        except ImportError:
            raise EmbedderError("the bm25 backend needs qdrant-edge-py: install qmspec with its `embed` extra") from None
        options = model.get("options") or {}
        settings = {"language": str(options.get("language", "english")).lower()}
        for name in ("k", "b", "avg_len"):
            if name in options:
                settings[name] = float(options[name])
        if options.get("stopwords") is False:
            settings["stopwords"] = qdrant_edge.StopwordsSet(languages=set(), custom=set())
        if options.get("stemming") is False:
            settings["stemmer"] = qdrant_edge.DisabledStemmer()
        try:
            self.model = qdrant_edge.Bm25(qdrant_edge.Bm25Config(**settings))
        except (TypeError, ValueError) as exc:
            raise EmbedderError(f"BM25 settings {options} for {model.get('name')!r} are not valid: {exc}") from None

    def embed(self, texts: list[str]) -> list[tuple[list[int], list[float]]]:
        return [_pair(self.model.embed_document(text)) for text in texts]

    def embed_queries(self, texts: list[str]) -> list[tuple[list[int], list[float]]]:
        return [_pair(self.model.embed_query(text)) for text in texts]


def _pair(vector) -> tuple[list[int], list[float]]:
    return list(vector.indices), list(vector.values)
