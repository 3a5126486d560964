#!/usr/bin/env bash
# The one step of qmspec's GitHub Action (action.yml): run qmspec on specs or reviewed plans, write a Markdown
# summary, and hand back the exit code. Everything arrives through the environment (never pasted into the script):
#   QMSPEC_COMMAND  changed | plan | apply
#   QMSPEC_SPECS    changed: the specs to consider (paths or globs, default specs/*.yaml); plan: the specs;
#                   apply: the saved plan files (plan.json) reviewed on the pull request
#   QMSPEC_BASE     changed: the git revision the pull request started from (plan what changed since)
#   QMSPEC_PLANS    plan: the folder the saved plans go to (one <spec path with / as __>.plan.json each)
#   QMSPEC_STATE    file | qdrant (default qdrant: any runner resumes)
#   QMSPEC_URL, QMSPEC_API_KEY_ENV   the server and the variable holding its key (default: QDRANT_URL, QDRANT_API_KEY)
# Writes `exit-code`, `specs` (changed) and `markdown` to $GITHUB_OUTPUT, the summary to $GITHUB_STEP_SUMMARY.
# Exit codes of the summary: 0 every spec fine, 3 a safety rule refused a plan (or a gate stopped an apply),
# 4 a reviewed plan went stale, 1 an error.
set -uo pipefail
command="${QMSPEC_COMMAND:?QMSPEC_COMMAND is one of changed, plan, apply}"
state="${QMSPEC_STATE:-qdrant}"
plans="${QMSPEC_PLANS:-qmspec-plans}"
output="${GITHUB_OUTPUT:-/dev/null}"
connection=()
[ -n "${QMSPEC_URL:-}" ] && connection+=(--url "$QMSPEC_URL")
[ -n "${QMSPEC_API_KEY_ENV:-}" ] && connection+=(--api-key-env "$QMSPEC_API_KEY_ENV")
summary="$(mktemp)"
status=0

worse() {  # keep the worst exit code: 1 (error) over 4 (stale) over 3 (refused) over 0
  case "$1" in
    0|2) ;;
    1) status=1 ;;
    4) [ "$status" -eq 1 ] || status=4 ;;
    3) [ "$status" -eq 1 ] || [ "$status" -eq 4 ] || status=3 ;;
    *) status=1 ;;
  esac
}

say_output() {  # name, then the value (possibly many lines) on stdin
  local delimiter="qmspec_$RANDOM$RANDOM"
  { echo "$1<<$delimiter"; cat; echo "$delimiter"; } >> "$output"
}

case "$command" in
  changed)
    # The specs a change concerns: a spec that changed, one whose inputs (source records, judgments, queries)
    # changed, and every spec when qmspec.yaml changed.
    base="${QMSPEC_BASE:?QMSPEC_BASE is the revision to compare with}"
    changes="$(git diff --name-only "$base"...HEAD)"
    shopt -s nullglob globstar
    # shellcheck disable=SC2206 # the globs are meant to expand
    candidates=(${QMSPEC_SPECS:-specs/*.yaml})
    chosen=()
    for spec in "${candidates[@]}"; do
      [ -f "$spec" ] || continue
      if grep -qxF "$spec" <<<"$changes" || grep -qx 'qmspec.yaml' <<<"$changes"; then
        chosen+=("$spec")
        continue
      fi
      inputs="$(qmspec validate "$spec" --format json 2>/dev/null | python3 -c 'import json,sys; print("\n".join(f for e in json.load(sys.stdin)["files"] for f in e["inputs"]))' 2>/dev/null)"
      while IFS= read -r input; do
        if [ -n "$input" ] && grep -qxF "$input" <<<"$changes"; then
          chosen+=("$spec")
          break
        fi
      done <<<"$inputs"
    done
    echo "${chosen[*]:-}" | say_output specs
    echo "specs to plan: ${chosen[*]:-none}"
    ;;
  plan)
    mkdir -p "$plans"
    echo "<!-- qmspec plan -->" > "$summary"
    for spec in ${QMSPEC_SPECS:-}; do
      echo "## \`$spec\`" >> "$summary"
      if ! qmspec validate "$spec" --format github; then
        qmspec validate "$spec" --format markdown >> "$summary"
        worse 1
        continue
      fi
      saved="$plans/${spec//\//__}.plan.json"
      errors="$(mktemp)"
      qmspec plan "$spec" --format markdown --detailed-exitcode --state "$state" --out "$saved" "${connection[@]}" >> "$summary" 2> "$errors"
      code=$?
      cat "$errors" >&2
      if [ "$code" -eq 1 ]; then
        { echo '```text'; grep -E '^(error|internal error)' "$errors" | tail -5; echo '```'; } >> "$summary"
      fi
      worse "$code"
    done
    ;;
  apply)
    echo "<!-- qmspec apply -->" > "$summary"
    for saved in ${QMSPEC_SPECS:-}; do
      echo "## \`$saved\`" >> "$summary"
      log="$(mktemp)"
      qmspec apply "$saved" --auto-approve --state "$state" "${connection[@]}" > "$log" 2>&1
      code=$?
      cat "$log"
      case "$code" in
        0) echo "Applied: $(grep -E '^(Apply complete|Staged|no changes|plan .* was already applied)' "$log" | tail -1)" >> "$summary" ;;
        4) { echo "**Not applied: the reviewed plan is stale** (live state moved since it was reviewed). Plan again on a"
             echo "pull request and review the new plan."; echo '```text'; grep -E 'stale' "$log" | tail -3; echo '```'; } >> "$summary" ;;
        *) { echo "**Not applied (exit $code).**"; echo '```text'; tail -15 "$log"; echo '```'; } >> "$summary" ;;
      esac
      worse "$code"
    done
    ;;
  *)
    echo "QMSPEC_COMMAND=$command: use changed, plan or apply" >&2
    exit 1
    ;;
esac

if [ "$command" != changed ]; then
  say_output markdown < "$summary"
  [ -n "${GITHUB_STEP_SUMMARY:-}" ] && cat "$summary" >> "$GITHUB_STEP_SUMMARY"
  cp "$summary" "${QMSPEC_MARKDOWN:-qmspec-$command.md}"
fi
echo "exit-code=$status" >> "$output"
exit 0  # the caller decides what a refusal means for the job (the example workflow fails it)
