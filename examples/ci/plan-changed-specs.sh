#!/usr/bin/env bash
# Pull requests: validate and plan every changed spec; the Markdown plans go to plan-comment.md for the PR.
# Exit 0 when every plan is acceptable (changes or none), 3 when a safety rule refused one, 1 on an error.
set -u
status=0
: > plan-comment.md
for spec in "$@"; do
  echo "## \`$spec\`" >> plan-comment.md
  # annotations on the spec's lines in the pull request, and the same problems in the comment
  if ! qmspec validate "$spec" --format github; then
    qmspec validate "$spec" --format markdown >> plan-comment.md
    status=1
    continue
  fi
  # --state qdrant: the journal the merge job keeps in Qdrant, so the plan says if an apply is unfinished or locked
  qmspec plan "$spec" --format markdown --detailed-exitcode --state qdrant ${QMSPEC_ENV:+--env "$QMSPEC_ENV"} >> plan-comment.md
  code=$?
  case "$code" in
    0|2) ;;
    3) [ "$status" -eq 1 ] || status=3 ;;
    *) status=1 ;;
  esac
done
exit "$status"
