"""Where Qdrant is, found as a Terraform provider's configuration is: the command line, then the spec (and its
environment in qmspec.yaml), then QDRANT_URL / QDRANT_API_KEY, then the embedded default. Every plan says what it ran
against; CI never plans against a runner-local store that does not exist; paths in a spec are relative to the spec."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qmspec.planning.spec import ConnectionSpec
from qmspec.project import resolve_target

from . import migration
from .fake_qdrant import RecordingQdrant
from .run import cli


@pytest.fixture()
def project(tmp_path) -> Path:
    migration.template(tmp_path, 30)
    return tmp_path


@pytest.mark.parametrize("given, spec, environ, expected", [
    ({"path": "here"}, ConnectionSpec(url="http://spec:6333"), {"QDRANT_URL": "http://env:6333"}, ("--path", "here")),
    ({"url": "http://cli:6333"}, ConnectionSpec(path="there"), {"QDRANT_URL": "http://env:6333"}, ("--url", "http://cli:6333")),
    ({}, ConnectionSpec(url="http://spec:6333"), {"QDRANT_URL": "http://env:6333"}, ("the spec's connection.url", "http://spec:6333")),
    ({}, ConnectionSpec(path="there"), {"QDRANT_URL": "http://env:6333"}, ("the spec's connection.path", "there")),
    ({}, ConnectionSpec(), {"QDRANT_URL": "http://env:6333"}, ("QDRANT_URL", "http://env:6333")),
    ({}, ConnectionSpec(), {}, ("the default", ".qmspec/qdrant")),
], ids=["path-over-all", "url-over-spec", "spec-url-over-env", "spec-path-over-env", "env-over-default", "default"])
def test_the_connection_precedence(given, spec, environ, expected):
    target = resolve_target(spec_connection=spec, environ=environ, **given)
    assert (target.chosen_by, target.url or target.path) == expected


def test_qdrant_url_binds_qdrant_api_key_only():
    """QDRANT_URL is paired with QDRANT_API_KEY where qmspec runs; a variable only the spec names is not sent there."""
    assert resolve_target(spec_connection=ConnectionSpec(), environ={"QDRANT_URL": "http://env:6333"}).key_hosts == ("env:6333",)
    named = resolve_target(spec_connection=ConnectionSpec(api_key_env="OTHER_SECRET"), environ={"QDRANT_URL": "http://env:6333"})
    assert named.api_key_env == "OTHER_SECRET" and named.key_hosts == ()


def test_with_qdrant_url_set_and_no_connection_plan_talks_to_that_server_never_a_local_store(project, monkeypatch):
    server = RecordingQdrant(status=500)
    try:
        monkeypatch.setenv("QDRANT_URL", server.url)
        monkeypatch.setenv("QDRANT_API_KEY", "qk-7b1e4f0a93")
        (project / "spec.yaml").write_text(migration.SPEC)
        planned = cli("plan", "spec.yaml", "--no-preflight", cwd=project)
    finally:
        server.close()
    assert server.requests and server.keys_received() == ["qk-7b1e4f0a93"] * len(server.requests)
    assert planned.returncode == 1 and f"the server {server.url} failed: HTTP 500" in planned.stderr
    assert "chosen by QDRANT_URL" in planned.stderr and not (project / ".qmspec" / "qdrant").exists()


def test_plans_open_with_what_they_ran_against_in_every_format(project):
    text = cli("plan", "spec.yaml", "--path", "store", "--no-preflight", cwd=project).stdout
    where = str((project / "store").resolve())
    assert text.splitlines()[1] == f"against the embedded store {where}, chosen by --path"
    markdown = cli("plan", "spec.yaml", "--path", "store", "--no-preflight", "--format", "markdown", cwd=project).stdout
    assert f"Against the embedded store `{where}`, chosen by --path." in markdown
    planned = json.loads(cli("plan", "spec.yaml", "--path", "store", "--no-preflight", "--format", "json", cwd=project).stdout)
    assert planned["against"] == {"kind": "embedded", "where": where, "chosen_by": "--path", "existed": True}
    missing = cli("plan", "spec.yaml", "--path", "nowhere", "--no-preflight", cwd=project)
    assert "against the embedded store" in missing.stdout or "does not exist yet" in missing.stderr


def test_in_ci_a_store_that_does_not_exist_is_an_error_that_says_how_to_reach_the_server(project, monkeypatch):
    monkeypatch.setenv("CI", "true")
    refused = cli("plan", "spec.yaml", "--no-preflight", cwd=project)
    assert refused.returncode == 1 and "running in CI (CI is set) against the embedded store" in refused.stderr
    assert "set QDRANT_URL (and QDRANT_API_KEY) in the workflow" in refused.stderr
    assert cli("plan", "spec.yaml", "--path", "store", "--no-preflight", cwd=project).returncode == 0
    named = cli("plan", "spec.yaml", "--path", "elsewhere", "--no-preflight", cwd=project)  # named on purpose: the user's choice
    assert "running in CI" not in named.stderr and "does not exist yet" in named.stderr


def test_validate_needs_no_deploy_time_variables(project, monkeypatch):
    monkeypatch.delenv("QMSPEC_TEST_PROD_URL", raising=False)
    (project / "spec.yaml").write_text(migration.SPEC + "connection: {url: '${QMSPEC_TEST_PROD_URL}'}\n")
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 0 and "environment variable QMSPEC_TEST_PROD_URL is not set here" in checked.stdout
    planned = cli("plan", "spec.yaml", "--no-preflight", cwd=project)
    assert planned.returncode == 1 and "environment variable QMSPEC_TEST_PROD_URL is not set" in planned.stderr


def test_a_saved_plan_applied_against_another_store_is_stale(project):
    assert cli("plan", "spec.yaml", "--path", "store", "--no-preflight", "--out", "plan.json", cwd=project).returncode == 0
    shutil.copytree(project / "store", project / "copy")
    elsewhere = cli("apply", "plan.json", "--path", "copy", "--auto-approve", cwd=project)
    assert elsewhere.returncode == 4 and "it was made against embedded" in elsewhere.stderr and "plan again against this one" in elsewhere.stderr


def test_a_store_named_in_a_spec_is_relative_to_the_spec(project):
    (project / "specs").mkdir()
    (project / "specs" / "spec.yaml").write_text(migration.SPEC + "connection: {path: ../store}\n")
    planned = cli("plan", "specs/spec.yaml", "--no-preflight", cwd=project)
    assert planned.returncode == 0 and f"against the embedded store {(project / 'store').resolve()}" in planned.stdout
