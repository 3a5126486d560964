"""qmspec logs through the standard `logging` module: -v adds each batch and every retry with its cause and wait,
-q keeps only results and errors, a library user's handlers receive the records, and no record holds a secret."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from qmspec.connect import open_client
from qmspec.logs import logger
from qmspec.project import RetryPolicy, Target

from . import migration
from .embedding_server import EmbeddingServer, hash_embed
from .run import cli
from .test_retry import FakeQdrant

APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve", "--no-preflight")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return migration.template(tmp_path_factory.mktemp("template"), 40)


@pytest.fixture()
def project(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_quiet_keeps_results_and_verbose_adds_batches(template, project, tmp_path):
    quiet = cli(*APPLY, "-q", cwd=project)
    assert quiet.returncode == 0 and "Apply complete: alias docs serves docs_v2." in quiet.stdout
    assert "[1/7]" not in quiet.stdout + quiet.stderr and "verdict: passed" in quiet.stdout  # the verification is a result
    verbose_project = tmp_path / "verbose"
    shutil.copytree(template, verbose_project)
    verbose = cli(*APPLY, "-v", cwd=verbose_project)
    assert verbose.returncode == 0
    assert "[2/7] copy 40 points docs_v1 -> docs_v2" in verbose.stderr and "wrote 25 points to docs_v2 (insert_only" in verbose.stderr
    plain_project = tmp_path / "plain"
    shutil.copytree(template, plain_project)
    plain = cli(*APPLY, cwd=plain_project)
    assert "[2/7] copy" in plain.stderr and "wrote 25 points" not in plain.stderr  # batches only with -v


def test_retries_are_logged_with_their_cause_and_wait(caplog):
    fake = FakeQdrant([(503, {}), (429, {"Retry-After": "1"})])
    with caplog.at_level(logging.INFO, logger="qmspec"), \
            open_client(Target(url=fake.url, retry=RetryPolicy(attempts=4, max_seconds=20, timeout_s=2, initial_wait=0.05, max_wait=0.1))) as client:
        client.get_collections()
    said = [record.getMessage() for record in caplog.records if "retrying" in record.getMessage()]
    assert len(said) == 2, said
    assert said[0].startswith("      retrying get_collections on the server http://127.0.0.1:") and "503" in said[0] and "(attempt 1 of 4)" in said[0]
    assert "in 1.0s" in said[1] and "(attempt 2 of 4)" in said[1]  # the wait the server asked for


def test_no_record_holds_a_secret(project, caplog, monkeypatch):
    """An embedding API key read because the spec names its variable, and a key expanded into a value: whatever a
    message says, the record holds ***."""
    key = "sk-test-5f1c2e9a7b"
    monkeypatch.setenv("EMBEDDING_TOKEN", key)
    with EmbeddingServer(hash_embed(16), key=key, faults=[("status", 500, None)]) as server:
        server.trust(monkeypatch, "EMBEDDING_TOKEN")
        spec = migration.SPEC.replace(f'backend: "{migration.PLUGIN}", options: {{size: 16}}',
                                      f'backend: openai, options: {{base_url: "{server.base_url}", api_key_env: EMBEDDING_TOKEN, '
                                      'dimensions: 16}')
        (project / "spec.yaml").write_text(spec)
        with caplog.at_level(logging.DEBUG, logger="qmspec"):
            applied = cli(*APPLY[:-1], "-v", cwd=project)
            logger("qmspec.test").info(f"a message that quotes the key {key} by mistake")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    records = [record.getMessage() for record in caplog.records]
    assert any("retrying" in text for text in records) and any("texts (about" in text for text in records)
    assert all(key not in text for text in records) and records[-1].endswith("quotes the key *** by mistake")
    assert key not in applied.stdout + applied.stderr


def test_a_library_user_configures_logging_as_usual(project, caplog):
    import qmspec

    with caplog.at_level(logging.INFO, logger="qmspec"):
        assert qmspec.apply(str(project / "spec.yaml"), path=str(project / "store"), auto_approve=True, preflight=False,
                            state_dir=str(project / ".qmspec" / "state")).ok
    names = {record.name for record in caplog.records}
    assert {"qmspec.applying.runner", "qmspec.applying.verify"} <= names
