"""qmspec from Python, without argv: what an Airflow task or a Dagster op calls. The outcomes carry the exit codes of
the command line; failures are typed exceptions with the messages the command line prints; confirmation and the
log are passed in."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qmspec
from qmspec.errors import SpecError

from . import migration
from .run import ROOT, cli

POINTS = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return migration.template(tmp_path_factory.mktemp("template"), POINTS)


@pytest.fixture()
def project(template, tmp_path, monkeypatch) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_importing_qmspec_loads_no_qdrant_client():
    loaded = subprocess.run([sys.executable, "-c", "import qmspec, sys; print('qdrant_client' in sys.modules, qmspec.plan.__module__)"],
                            capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    assert loaded == ["False", "qmspec.workflow"]


def test_plan_returns_the_plan_the_command_line_prints_as_json(project):
    planned = qmspec.plan("spec.yaml", path="store", preflight=False)
    assert [step.kind for step in planned.steps] == migration.STEP_KINDS
    printed = cli("plan", "spec.yaml", "--path", "store", "--no-preflight", "--format", "json", cwd=project)
    assert planned.to_json() == printed.stdout


def test_apply_asks_through_the_callback_and_reports_the_outcome(project):
    previews, lines = [], []
    result = qmspec.apply("spec.yaml", path="store", confirm=lambda preview: previews.append(preview) or True, log=lines.append)
    assert result.ok and result.exit_code == 0 and result.status == "succeeded"
    assert result.serving == "docs_v2" and result.alias == "docs" and result.report.passed
    assert previews[0].question == "Apply this plan?" and previews[0].plan.collection == "docs_v2"
    assert any(line.startswith("[2/7] copy") for line in lines) and any("done in" in line for line in lines)
    assert "count" in result.report.to_text() and result.report_files
    again = qmspec.apply("spec.yaml", path="store", auto_approve=True)
    assert again.status == "nothing" and again.exit_code == 0


def test_an_unapproved_apply_changes_nothing(project):
    before = migration.snapshot(project / "store")
    with pytest.raises(qmspec.NotConfirmed, match="needs confirmation"):
        qmspec.apply("spec.yaml", path="store")  # neither auto_approve nor a confirm callback
    with pytest.raises(qmspec.NotConfirmed):
        qmspec.apply("spec.yaml", path="store", confirm=lambda preview: False)
    assert migration.snapshot(project / "store") == before
    assert qmspec.status("spec.yaml", path="store")["last_apply"] is None


def test_a_refused_plan_and_a_bad_spec(project):
    (project / "refused.yaml").write_text(migration.SPEC.replace("cleanup: {old_collection: delete}", "cleanup: {old_collection: delete, when: immediately}"))
    refused = qmspec.apply("refused.yaml", path="store", auto_approve=True)
    assert refused.status == "refused" and refused.exit_code == 3 and not refused.ok
    assert "DS101" in {finding.code for finding in refused.plan.findings if finding.refuses}
    (project / "bad.yaml").write_text(migration.SPEC.replace("size: 16", "size: sixteen"))
    with pytest.raises(SpecError) as error:
        qmspec.plan("bad.yaml", path="store")
    assert "bad.yaml:6: vectors.dense.size" in str(error.value)  # the same message the command line prints
    assert qmspec.validate("bad.yaml", "spec.yaml").exit_code == 1


def test_rollback_cleanup_and_status_from_python(project):
    (project / "spec.yaml").write_text(migration.SPEC.replace("cleanup: {old_collection: delete}\n", ""))
    assert qmspec.apply("spec.yaml", path="store", auto_approve=True).serving == "docs_v2"
    assert qmspec.status("spec.yaml", path="store")["last_apply"]["status"] == "succeeded"
    back = qmspec.rollback("spec.yaml", path="store", auto_approve=True)
    assert back.exit_code == 0 and "alias docs: docs_v2 -> docs_v1" in back.done
    assert qmspec.status("spec.yaml", path="store")["serves"] == "docs_v1"
    assert qmspec.apply("spec.yaml", path="store", auto_approve=True).serving == "docs_v2"
    assert qmspec.cleanup("spec.yaml", path="store", auto_approve=True).deleted == "docs_v1"


def test_another_specs_unfinished_apply_is_a_typed_error(project, monkeypatch):
    from qmspec.applying import journal as journal_module

    class Crash(BaseException):
        pass

    monkeypatch.setattr(journal_module, "crash", lambda: (_ for _ in ()).throw(Crash()))
    monkeypatch.setenv("QMSPEC_FAULT", "effect:6")  # swapped, then stopped before deleting the old collection
    journal_module._fault_counts.clear()
    with pytest.raises(Crash):
        qmspec.apply("spec.yaml", path="store", auto_approve=True)
    monkeypatch.delenv("QMSPEC_FAULT")
    (project / "other.yaml").write_text(migration.SPEC.replace("docs_v2", "docs_v3"))
    with pytest.raises(qmspec.ApplyBlocked, match="is unfinished"):
        qmspec.apply("other.yaml", path="store", auto_approve=True)
    journal_module._fault_counts.clear()


def test_the_public_names_are_the_documented_ones():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("plan", "apply", "rollback", "status", "validate", "ApplyResult", "NotConfirmed"):
        assert f"qmspec.{name}" in readme, name
    assert set(qmspec.__all__) >= {"plan", "apply", "rollback", "cleanup", "unlock", "status", "validate", "QmspecError"}


def test_status_as_json_is_what_the_library_returns(project):
    assert qmspec.apply("spec.yaml", path="store", auto_approve=True).ok
    printed = json.loads(cli("status", "spec.yaml", "--path", "store", "--format", "json", cwd=project).stdout)
    assert printed == qmspec.status("spec.yaml", path="store")
