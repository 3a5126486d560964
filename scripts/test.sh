#!/usr/bin/env bash
# The test command: the whole suite, offline. Exit 5 (no test collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "no test ran: treating that as a failure" >&2
  exit 1
fi
exit "$status"
