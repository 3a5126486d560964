"""Commands that read never write: `plan`, `show`, `status`, `drift`, `inspect` and `compare` work against a Qdrant
that refuses every write (a pull-request job's read-only key), with `--state qdrant` too, and create nothing: not
the state collection, not an embedded store that does not exist."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from qmspec import connect, live
from qmspec.planning.record import STATE_COLLECTION

from . import migration
from .run import cli

WRITES = {"upsert", "create_collection", "recreate_collection", "delete_collection", "delete", "update_collection",
          "update_collection_aliases", "set_payload", "overwrite_payload", "delete_payload", "clear_payload", "update_vectors",
          "delete_vectors", "create_payload_index", "delete_payload_index", "create_shard_key", "delete_shard_key",
          "create_vector_name", "delete_vector_name", "batch_update_points", "upload_points", "upload_collection"}


class ReadOnlyClient:
    """A client whose key may only read: every write is answered 403, as Qdrant answers a read-only API key."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        if name in WRITES:
            def refused(*args, **kwargs):
                raise UnexpectedResponse(403, "Forbidden", b'{"status": {"error": "read-only API key"}}', {})

            return refused
        return getattr(self._client, name)


@pytest.fixture()
def read_only(monkeypatch):
    real = connect.open_client

    @contextmanager
    def opened(target, environ=None, read_only=False):
        with real(target, environ, read_only) as client:
            yield ReadOnlyClient(client)

    monkeypatch.setattr(connect, "open_client", opened)
    monkeypatch.setattr(live, "open_client", opened)


@pytest.fixture()
def project(tmp_path) -> Path:
    migration.template(tmp_path, 40)
    (tmp_path / "queries.txt").write_text("passage number 3\ntopic 7\n")
    return tmp_path


def collections(store: Path) -> set:
    client = QdrantClient(path=str(store))
    try:
        return {c.name for c in client.get_collections().collections}
    finally:
        client.close()


READS = [("plan", "spec.yaml", "--no-preflight"), ("status", "spec.yaml"), ("drift", "spec.yaml")]


@pytest.mark.parametrize("state", ["file", "qdrant"])
def test_reading_commands_work_with_a_read_only_key_and_create_nothing(project, read_only, state):
    for command in READS:
        result = cli(*command, "--path", "store", "--state", state, cwd=project)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    planned = cli("plan", "spec.yaml", "--path", "store", "--state", state, "--no-preflight", "--out", "plan.json", cwd=project)
    assert planned.returncode == 0
    shown = cli("show", "plan.json", "--path", "store", "--state", state, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert collections(project / "store") == {"docs_v1"}  # no state collection either
    assert not (project / ".qmspec" / "state").exists()


def test_inspect_and_compare_read_only(project, read_only):
    assert cli("inspect", "--path", "store", cwd=project).returncode == 0
    compared = cli("compare", "spec.yaml", "--path", "store", "--b", "docs_v1", "--queries-file", "queries.txt", cwd=project)
    assert compared.returncode == 0, compared.stderr
    assert collections(project / "store") == {"docs_v1"}


def test_an_apply_with_a_read_only_key_fails_naming_the_refusal(project, read_only):
    refused = cli("apply", "spec.yaml", "--path", "store", "--state", "qdrant", "--auto-approve", "--no-preflight", cwd=project)
    assert refused.returncode == 1 and "read-only API key" in refused.stderr, refused.stderr


def test_planning_against_a_store_that_does_not_exist_creates_none(project, tmp_path):
    missing = tmp_path / "nowhere"
    for state in ("file", "qdrant"):
        planned = cli("plan", "spec.yaml", "--path", missing, "--state", state, "--no-preflight", cwd=project)
        assert planned.returncode == 1 and "does not exist yet" in planned.stderr  # nothing to copy from
        assert cli("status", "spec.yaml", "--path", missing, "--state", state, cwd=project).returncode == 0
    assert not missing.exists()


def test_plan_with_qdrant_state_on_a_fresh_store_leaves_no_state_collection(project):
    shutil.rmtree(project / ".qmspec", ignore_errors=True)
    assert cli("plan", "spec.yaml", "--path", "store", "--state", "qdrant", "--no-preflight", cwd=project).returncode == 0
    assert STATE_COLLECTION not in collections(project / "store")
