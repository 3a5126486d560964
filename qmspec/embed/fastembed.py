"""fastembed, Qdrant's ONNX embedding library: dense models (TextEmbedding), sparse ones (BM25, SPLADE:
SparseTextEmbedding) and late-interaction ColBERT multivectors (LateInteractionTextEmbedding), chosen by which of its
catalogues lists the model. Documents go through `passage_embed`, queries through `query_embed`. Weights come from
fastembed's cache (FASTEMBED_CACHE_PATH or `options.cache_dir`), downloaded when online; `model.path` loads a local
folder instead (offline). A dense ONNX model fastembed does not list is registered from its folder (`model.path`)
with `options: {dim, pooling: mean|cls|disabled, model_file, output_name}`. Install the `fastembed` extra."""
from __future__ import annotations

import numpy as np

from . import EmbedderError
from .dense import finish, prompt_text

FAMILIES = ("TextEmbedding", "SparseTextEmbedding", "LateInteractionTextEmbedding")


class FastEmbedEmbedder:
    def __init__(self, model: dict):
        try:
            import fastembed
        except ImportError:
            raise EmbedderError("the fastembed backend needs fastembed: pip install 'qmspec[fastembed]'") from None
        self.name = model["name"]
        self.family = family_of(self.name) or register_custom(model)
        settings = loader_options(model)
        try:
            self.model = getattr(fastembed, self.family)(self.name, **settings)
        except Exception as exc:  # noqa: BLE001 - download and ONNX errors alike
            raise EmbedderError(f"fastembed cannot load {self.name!r}: {str(exc).splitlines()[0][:300]}; online it downloads "
                                "the model once, offline give model.path (its local folder)") from None
        self.truncate_dim = model.get("truncate_dim")
        self.normalize = model.get("normalize", True)
        self.batch = int(model.get("batch_size") or 64)
        prompts = model.get("prompts") or {}
        self.prompts = {role: prompt_text(prompts.get(role), {}) for role in ("query", "document")}
        self.dimension = None
        self.commit = None

    @property
    def sparse(self) -> bool:
        return self.family == "SparseTextEmbedding"

    def embed(self, texts: list[str]):
        documents = [self.prompts["document"] + text for text in texts]
        return self._finish(list(self.model.passage_embed(documents, batch_size=self.batch)))

    def embed_queries(self, texts: list[str]):
        return self._finish(list(self.model.query_embed([self.prompts["query"] + text for text in texts])))

    def _finish(self, outputs: list):
        if self.sparse:
            return [(list(map(int, out.indices)), list(map(float, out.values))) for out in outputs]
        if self.family == "LateInteractionTextEmbedding":
            return [np.asarray(out, dtype=np.float32).tolist() for out in outputs]  # one vector per token
        return finish(np.asarray(outputs, dtype=np.float32), self.truncate_dim, self.normalize)


def family_of(name: str) -> str | None:
    """Which fastembed catalogue lists `name`."""
    import fastembed

    return next((family for family in FAMILIES if any(
        entry["model"].lower() == name.lower() for entry in getattr(fastembed, family).list_supported_models())), None)


def loader_options(model: dict) -> dict:
    """What fastembed's model constructors take: its cache, threads, and a local folder in place of a download."""
    options = model.get("options") or {}
    settings = {key: options[key] for key in ("cache_dir", "threads") if key in options}
    if model.get("path"):
        settings["specific_model_path"] = model["path"]
    return settings


def register_custom(model: dict) -> str:
    """Make fastembed know a dense ONNX model from its local folder; qdrant-client's inference finds it too."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    options = model.get("options") or {}
    if not model.get("path") or not options.get("dim"):
        raise EmbedderError(f"fastembed does not know model {model['name']!r}: use one of its supported models, or give "
                            "model.path (a folder with the ONNX file and its tokenizer) and options.dim, options.pooling")
    pooling = {"mean": PoolingType.MEAN, "cls": PoolingType.CLS, "disabled": PoolingType.DISABLED}.get(options.get("pooling", "mean"))
    if pooling is None:
        raise EmbedderError(f"model {model['name']!r}: options.pooling is mean, cls or disabled, not {options['pooling']!r}")
    TextEmbedding.add_custom_model(model=model["name"], pooling=pooling, normalization=model.get("normalize", True),
                                   sources=ModelSource(hf=model["name"]), dim=int(options["dim"]),
                                   model_file=options.get("model_file", "model.onnx"), output_name=options.get("output_name"))
    return "TextEmbedding"
