#!/usr/bin/env bash
# On merge to main: apply each changed spec, non-interactively. The journal and lock live in Qdrant
# (--state qdrant) so a re-run on another runner resumes an interrupted apply.
set -euo pipefail
for spec in "$@"; do
  qmspec apply "$spec" --auto-approve --state qdrant ${QMSPEC_ENV:+--env "$QMSPEC_ENV"}
done
