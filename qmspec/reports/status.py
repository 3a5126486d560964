"""`qmspec status`: the alias's live target, the last apply recorded for it, its steps, and the lock."""
from __future__ import annotations

from dataclasses import asdict

from ..planning.livestate import LiveState
from ..planning.record import AliasRecord


def describe_status(record: AliasRecord, lock: dict | None, live: LiveState) -> dict:
    active = record.active
    report = {"format": 1, "alias": record.alias, "serves": live.aliases.get(record.alias), "lock": lock, "last_apply": None,
              "history": [asdict(entry) for entry in record.history]}
    serving = live.collections.get(report["serves"] or "")
    if serving is not None and serving.lacking:  # vectors added in place that the application's query does not use yet
        report["backfilling"] = {"collection": serving.name, "lacking": dict(serving.lacking)}
    if active:
        report["last_apply"] = {
            "plan_hash": active.plan_hash, "status": active.status, "started_at": active.started_at,
            "finished_at": active.finished_at, "collection": active.plan.collection, "alias_before": active.alias_before,
            "steps": [{"kind": s.kind, "status": s.status, "checkpoint": s.checkpoint, "error": s.error} for s in active.steps],
        }
    return report


def render_status(report: dict) -> str:
    lines = [f"alias {report['alias']} serves {report['serves'] or '(nothing: the alias does not exist)'}"]
    last = report["last_apply"]
    if last is None:
        lines.append("no apply recorded")
    else:
        lines.append(f"last apply: plan {last['plan_hash']} -> {last['collection']}: {last['status']} "
                     f"(started {last['started_at']}{', finished ' + last['finished_at'] if last['finished_at'] else ''})")
        lines.append(f"alias before it: {last['alias_before'] or '(none)'}")
        for number, step in enumerate(last["steps"], 1):
            extra = f"  {_progress(step['checkpoint'])}" if step["checkpoint"] and step["status"] != "done" else ""
            error = f"  error: {step['error']}" if step.get("error") else ""
            lines.append(f"  {number}. {step['kind']:<18} {step['status']}{extra}{error}")
    lines += _backfilling(report)
    lock = report["lock"]
    lines.append(f"lock: held by pid {lock.get('pid')} on {lock.get('host')} since {lock.get('since')}" if lock else "lock: free")
    return "\n".join(lines)


def _backfilling(report: dict) -> list[str]:
    """Vectors added in place whose backfill the application's writes keep open: what the next apply catches up."""
    backfilling = report.get("backfilling")
    if not backfilling:
        return []
    return [f"vector {vector} (added in place, not queried yet): {count:,} point(s) of {backfilling['collection']} lack it"
            + ("; the next apply of the spec embeds them" if count else "") for vector, count in backfilling["lacking"].items()]


def _progress(checkpoint: dict) -> str:
    """A partitioned step as partitions done and points written; any other as its checkpoint."""
    partitions = checkpoint.get("partitions")
    if not partitions:
        return f"checkpoint {checkpoint}"
    states = [part["status"] for part in partitions]
    return (f"{states.count('done')}/{len(partitions)} partitions done, {states.count('running')} running, "
            f"{sum(part['copied'] for part in partitions):,} points written")


def render_status_markdown(report: dict) -> str:
    last = report["last_apply"]
    lines = [f"### qmspec status: `{report['alias']}`", "", f"Alias `{report['alias']}` serves `{report['serves']}`."]
    if last:
        lines += ["", f"Last apply: plan `{last['plan_hash']}` -> `{last['collection']}`: **{last['status']}**", "",
                  "| # | step | status |", "|---|---|---|"]
        lines += [f"| {n} | {step['kind']} | {step['status']} |" for n, step in enumerate(last["steps"], 1)]
    lines += [f"- {line}" for line in _backfilling(report)]
    lock = report["lock"]
    lines += ["", f"Lock: held by pid {lock.get('pid')} on {lock.get('host')} since {lock.get('since')}." if lock else "Lock: free."]
    return "\n".join(lines) + "\n"
