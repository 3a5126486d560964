"""`apply --rehearse N`: the whole plan, and a rollback, on a scratch copy of a sample; live state unchanged."""
from __future__ import annotations

import hashlib
import json

from . import migration
from .run import cli

REVERSIBLE = migration.SPEC.replace("cleanup: {old_collection: delete}\n", "")


def digest(folder) -> str:
    """Every byte of the embedded store: what 'unchanged' means."""
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return hashlib.sha256(b"".join(path.relative_to(folder).as_posix().encode() + path.read_bytes() for path in files)).hexdigest()


def test_a_rehearsal_runs_the_plan_and_its_rollback_on_a_sample_and_leaves_live_state_bit_identical(tmp_path):
    project = migration.template(tmp_path, 200)
    (project / "spec.yaml").write_text(REVERSIBLE)
    before = digest(project / "store")
    rehearsed = cli("apply", "spec.yaml", "--path", "store", "--rehearse", "40", cwd=project)
    assert rehearsed.returncode == 0, rehearsed.stderr
    assert "docs_v1: 40 of 200 points" in rehearsed.stdout and "x5.0" in rehearsed.stdout
    assert "copy 40 points docs_v1 -> docs_v2" in rehearsed.stdout and "at full size" in rehearsed.stdout
    assert "verdict: passed" in rehearsed.stdout and "rolled back: alias docs: docs_v2 -> docs_v1" in rehearsed.stdout
    assert "Rehearsal passed: the plan ran end to end on the sample and was rolled back; nothing live was changed." in rehearsed.stdout
    assert digest(project / "store") == before and not (project / ".qmspec").exists()
    assert set(migration.snapshot(project / "store")["collections"]) == {"docs_v1"}


def test_a_rehearsal_says_when_a_gate_fails_and_when_the_plan_cannot_be_undone(tmp_path):
    project = migration.template(tmp_path, 60)
    (project / "judged.jsonl").write_text("".join(json.dumps({"query": f"what about item {i}", "relevant": [i]}) + "\n" for i in range(1, 6)))
    (project / "spec.yaml").write_text(REVERSIBLE + "verify:\n  quality: {judgments: judged.jsonl, metrics: [ndcg@10], min: {ndcg@10: 0.99}}\n")
    failing = cli("apply", "spec.yaml", "--path", "store", "--rehearse", "10", cwd=project)
    assert failing.returncode == 3 and "quality       FAIL" in failing.stdout and "Rehearsal verify_failed" in failing.stdout
    (project / "spec.yaml").write_text(migration.SPEC)  # deletes docs_v1 after the swap
    final = cli("apply", "spec.yaml", "--path", "store", "--rehearse", "10", cwd=project)
    assert final.returncode == 0 and "rolled back: not possible after this plan" in final.stdout and "it cannot be rolled back" in final.stdout
