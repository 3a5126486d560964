#!/usr/bin/env bash
# The test command: the import contracts (planning stays pure, no cycles), then the whole suite, offline, on every
# core. Arguments go to pytest: `bash scripts/test.sh -m "not e2e"` runs the fast tier only.
# Exit 5 (no test collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/lint-imports || exit 1
# Tests journal durably (an fsync per checkpoint), which a slow disk makes most of their time; their crashes kill
# processes, never the machine, so the page cache keeps what they wrote: their files live in memory where there is a
# tmpfs. --dist loadfile: each test file on one worker, so its module fixtures (built stores, reference runs) run once.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  basetemp=$(mktemp -d /dev/shm/qmspec-tests.XXXXXX)
  trap 'rm -rf "$basetemp"' EXIT
  set -- --basetemp="$basetemp/run" "$@"
fi
.venv/bin/python -m pytest -n auto --dist loadfile -rs "$@"  # -rs: one line per reason a test was skipped
status=$?
if [ "$status" -eq 5 ]; then
  echo "no test ran: treating that as a failure" >&2
  exit 1
fi
exit "$status"
