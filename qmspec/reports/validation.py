"""`qmspec validate` and `qmspec rules` as text, JSON, Markdown and GitHub workflow annotations."""
from __future__ import annotations

import dataclasses
import json

from ..planning.rules import CLASSES, RULES


def render_validation(results, fmt: str, warnings, inputs: dict | None = None) -> str:
    """Problems fail validation; warnings (a gate that cannot fail) are said and fail nothing. JSON also lists the
    files each spec reads (`inputs`), for a CI job deciding which specs a changed data file concerns."""
    if fmt == "json":
        return json.dumps({"format": 1, "files": [{"file": path, "ok": not problems, "problems": [dataclasses.asdict(p) for p in problems],
                                                   "warnings": [dataclasses.asdict(w) for w in warnings if w.file == path],
                                                   "inputs": (inputs or {}).get(path, [])}
                                                  for path, problems in results]}, indent=2) + "\n"
    if fmt == "github":
        def annotate(level: str, p) -> str:
            return (f"::{level} file={p.file}{f',line={p.line}' if p.line else ''},title=qmspec {p.key or 'spec'}::"
                    f"{p.message} (fix: {p.fix})\n")

        errors = "".join(annotate("error", p) for _, problems in results for p in problems)
        return errors + "".join(annotate("warning", w) for w in warnings) + \
            ("" if errors else "".join(f"::notice file={path}::valid\n" for path, _ in results))
    if fmt == "markdown":
        rows = [f"| `{p.file}` | {p.line or ''} | `{p.key}` | {p.message} | {p.fix} |" for _, problems in results for p in problems]
        rows += [f"| `{w.file}` | {w.line or ''} | `{w.key}` | warning: {w.message} | {w.fix} |" for w in warnings]
        header = ["| file | line | key | problem | fix |", "|---|---|---|---|---|"]
        return "\n".join(header + rows if rows else [f"`{path}`: valid" for path, _ in results]) + "\n"
    said = "".join(f"ok: {path}\n" if not problems else "\n".join(map(str, problems)) + "\n" for path, problems in results)
    return said + "".join(f"warning: {w}\n" for w in warnings)


def render_rules(fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"format": 1, "rules": [{"code": r.code, "class": r.category, "severity": r.severity, "title": r.title,
                                                     "fix": r.fix, "can_be_accepted": r.allowable} for r in RULES.values()]}, indent=2) + "\n"
    if fmt == "markdown":
        lines = ["| code | class | severity | rule | way out | can be accepted |", "|---|---|---|---|---|---|"]
        lines += [f"| `{rule.code}` | {rule.category} | {rule.severity} | {rule.title} | {rule.fix} | {'yes' if rule.allowable else 'no'} |"
                  for rule in RULES.values()]
        return "\n".join(lines) + "\n"
    return "".join(f"{rule.code}  {rule.severity:<7}  {CLASSES[rule.code[:2]]}: {rule.title}\n        fix: {rule.fix}\n" for rule in RULES.values())
