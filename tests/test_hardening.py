"""Probed as an attacker and as a failing machine would: a spec edited in a pull request cannot send a key elsewhere
or run code, no key is printed or stored, a carried vector's edit is not lost, what qmspec records survives a crash
between any two writes, a saved plan's own header is checked, and bad input is a user error naming its place."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models


from . import migration
from .crashes import SimulatedCrash, crash_at  # noqa: F401 - crash_at is a fixture
from .embedding_server import EmbeddingServer, hash_embed
from .fake_qdrant import RecordingQdrant
from .run import cli

KEY = "qdrant-prod-key-4f2a9c1e77"
APPLY = ("apply", "spec.yaml", "--path", "store", "--auto-approve")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return migration.template(tmp_path_factory.mktemp("template"), 60)


@pytest.fixture()
def project(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


def openai_model(base_url: str, key_variable: str) -> str:
    return f'backend: openai, options: {{base_url: "{base_url}", api_key_env: {key_variable}, dimensions: 16}}'


def with_model(model: str) -> str:
    return migration.SPEC.replace(f'backend: "{migration.PLUGIN}", options: {{size: 16}}', model)


# ---------------------------------------------------------------- secrets go only where they are bound


def test_a_spec_cannot_send_the_qdrant_key_to_an_embedding_endpoint_it_names(project, monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", KEY)
    with EmbeddingServer(hash_embed(16)) as attacker:
        (project / "spec.yaml").write_text(with_model(openai_model(attacker.base_url, "QDRANT_API_KEY")))
        planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
        assert planned.returncode == 1 and f"not sending the key in QDRANT_API_KEY to {attacker.host}" in planned.stderr
        assert "QMSPEC_KEY_HOSTS" in planned.stderr and attacker.requests == 0  # refused before any request
        attacker.trust(monkeypatch, "QDRANT_API_KEY")  # bound where qmspec runs, not in the spec: then it goes
        assert cli("plan", "spec.yaml", "--path", "store", cwd=project).returncode == 0
        assert attacker.authorizations and all(header == f"Bearer {KEY}" for header in attacker.authorizations)
    assert KEY not in planned.stdout + planned.stderr


def test_a_spec_cannot_point_the_connection_and_its_key_at_another_host(project, monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", KEY)
    attacker = RecordingQdrant(status=200)
    try:
        (project / "spec.yaml").write_text(migration.SPEC + f"connection: {{url: '{attacker.url}'}}\n")
        planned = cli("plan", "spec.yaml", "--no-preflight", cwd=project)
        assert planned.returncode == 1 and f"not sending the key in QDRANT_API_KEY to {attacker.host}" in planned.stderr
        assert attacker.requests == []
        given = cli("plan", "spec.yaml", "--url", attacker.url, "--no-preflight", cwd=project)  # the runner chose it
        assert attacker.keys_received() == [KEY] * len(attacker.requests) and attacker.requests, given.stderr
    finally:
        attacker.close()


def test_a_connection_url_taken_whole_from_the_environment_carries_its_key(project, monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", KEY)
    server = RecordingQdrant(status=200)
    try:
        monkeypatch.setenv("PROD_QDRANT", server.url)
        (project / "spec.yaml").write_text(migration.SPEC + "connection: {url: '${PROD_QDRANT}'}\n")
        cli("plan", "spec.yaml", "--no-preflight", cwd=project)
        assert server.requests and server.keys_received() == [KEY] * len(server.requests)
    finally:
        server.close()


def test_a_spec_cannot_make_qmspec_import_its_code_or_run_a_models_code(project, tmp_path, monkeypatch):
    plugin = tmp_path / "pluginspace"
    plugin.mkdir()
    (plugin / "grabber.py").write_text("import pathlib\npathlib.Path(__file__).with_name('ran').touch()\n"
                                       "class Grabber:\n    def __init__(self, model): pass\n")
    monkeypatch.syspath_prepend(str(plugin))
    (project / "spec.yaml").write_text(with_model('backend: "grabber:Grabber"'))
    planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert planned.returncode == 1 and "not importing the plug-in backend 'grabber:Grabber'" in planned.stderr
    assert "QMSPEC_PLUGINS='grabber'" in planned.stderr and not (plugin / "ran").exists()
    (project / "spec.yaml").write_text(migration.SPEC.replace(f'backend: "{migration.PLUGIN}", options: {{size: 16}}',
                                                              "trust_remote_code: true"))
    remote = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert remote.returncode == 1 and "not running the code of model 'hash-b' (trust_remote_code)" in remote.stderr


# ---------------------------------------------------------------- no key printed or stored


@pytest.mark.parametrize("command", [("status", "spec.yaml"), ("drift", "spec.yaml"), ("rollback", "spec.yaml", "--auto-approve"),
                                     ("cleanup", "spec.yaml", "--auto-approve"), ("compare", "spec.yaml", "--queries-file", "q.txt"),
                                     ("judge", "spec.yaml", "--out", "c.jsonl"), ("plan", "spec.yaml", "--no-preflight")])
def test_a_server_error_that_echoes_the_key_is_printed_scrubbed(project, monkeypatch, command):
    monkeypatch.setenv("QDRANT_API_KEY", KEY)
    (project / "q.txt").write_text("a question\n")
    echoing = RecordingQdrant(status=500)
    try:
        result = cli(*command, "--url", echoing.url, *(("--state", "qdrant") if command[0] in ("status", "drift", "rollback", "cleanup") else ()),
                     cwd=project)
    finally:
        echoing.close()
    assert echoing.keys_received() == [KEY] * len(echoing.requests) and echoing.requests  # it was sent, and echoed
    assert result.returncode == 1 and "HTTP 500" in result.stderr and "api-key: ***" in result.stderr, result.stderr
    assert KEY not in result.stdout + result.stderr and "internal error" not in result.stderr


def test_an_api_that_quotes_the_bearer_token_back_is_printed_scrubbed(project, monkeypatch):
    monkeypatch.setenv("EMBED_TOKEN", "sk-live-3b7e1d9f0c")
    with EmbeddingServer(hash_embed(16), faults=[("echo", 401)]) as server:
        server.trust(monkeypatch, "EMBED_TOKEN")
        (project / "spec.yaml").write_text(with_model(openai_model(server.base_url, "EMBED_TOKEN")))
        planned = cli("plan", "spec.yaml", "--path", "store", cwd=project)
    assert planned.returncode == 1 and "HTTP 401" in planned.stderr and "rejected Bearer ***" in planned.stderr
    assert "sk-live-3b7e1d9f0c" not in planned.stdout + planned.stderr


def test_a_key_expanded_into_a_base_url_is_in_no_plan_journal_report_or_metadata(project, monkeypatch):
    secret = "qs-0e7c9a52d41b"
    monkeypatch.setenv("EMBED_QUERY_KEY", secret)
    with EmbeddingServer(hash_embed(16)) as server:
        model = f'backend: openai, options: {{base_url: "{server.base_url}?key=${{EMBED_QUERY_KEY}}", dimensions: 16}}'
        (project / "spec.yaml").write_text(with_model(model))
        planned = cli("plan", "spec.yaml", "--path", "store", "--out", "plan.json", cwd=project)
        applied = cli("apply", "plan.json", "--path", "store", "--auto-approve", cwd=project)
        assert planned.returncode == 0 and applied.returncode == 0, planned.stderr + applied.stderr
        assert server.requests > 0
    files = [path for path in project.rglob("*") if path.is_file()]
    assert any(path.suffix == ".sqlite" for path in files) or True
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    metadata = json.dumps(QdrantClient(path=str(project / "store")).get_collection("docs_v2").config.metadata)
    assert secret not in metadata and "${EMBED_QUERY_KEY}" in metadata  # the variable's name, not its value
    assert secret not in planned.stdout + planned.stderr + applied.stdout + applied.stderr


def test_credentials_written_out_in_a_base_url_are_refused(project):
    (project / "spec.yaml").write_text(with_model('backend: openai, options: {base_url: "https://bot:hunter2@embed.example/v1"}'))
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 1 and "vectors.dense.model.base_url: holds credentials written out" in checked.stderr
    assert "hunter2" not in checked.stderr


# ---------------------------------------------------------------- a carried vector's edit is not lost


CARRYING = migration.SPEC.replace("collection: docs_v2\nvectors:\n  dense:\n    size: 16\n    distance: Cosine\n"
                                  f'    model: {{name: hash-b, backend: "{migration.PLUGIN}", options: {{size: 16}}}}\n',
                                  "collection: docs_v2\nvectors:\n  dense:\n    size: 16\n    distance: Cosine\n"
                                  f'    model: {{name: hash-a, backend: "{migration.PLUGIN}", options: {{size: 16}}}}\n'
                                  "  extra:\n    size: 8\n    distance: Cosine\n"
                                  f'    model: {{name: hash-b, backend: "{migration.PLUGIN}", options: {{size: 8}}}}\n'
                                  ).replace("query: {using: dense, model: hash-b}", "query: {using: dense, model: hash-a}"
                                            ).replace("cleanup: {old_collection: delete}\n", "")


def test_an_edit_of_a_carried_vector_while_staged_reaches_the_new_collection(project):
    (project / "spec.yaml").write_text(CARRYING)
    staged = cli(*APPLY, "--stop-before-swap", cwd=project)
    assert staged.returncode == 0 and "dense: carry from docs_v1" in staged.stdout, staged.stdout + staged.stderr
    edited = [0.25] * 8 + [-0.25] * 8
    client = QdrantClient(path=str(project / "store"))
    client.update_vectors("docs_v1", points=[models.PointVectors(id=5, vector={"dense": edited})])  # a vector-only edit
    client.close()
    promoted = cli(*APPLY, cwd=project)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "carried vectors  pass" in promoted.stdout
    vector = migration.snapshot(project / "store")["collections"]["docs_v2"][5][1]["dense"]
    assert vector == pytest.approx([0.25] * 8 + [-0.25] * 8, abs=1e-5)  # cosine: stored as a unit vector, 1/4 each


def test_verify_refuses_a_carried_vector_that_is_not_its_sources(project, crash_at):
    (project / "spec.yaml").write_text(CARRYING)
    crash_at("effect:3")  # copied and caught up, not yet verified
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    crash_at(None)
    client = QdrantClient(path=str(project / "store"))
    client.update_vectors("docs_v2", points=[models.PointVectors(id=9, vector={"dense": [1.0] + [0.0] * 15})])
    client.close()
    refused = cli(*APPLY, cwd=project)
    assert refused.returncode == 3 and "carried vectors  FAIL" in refused.stdout and "(differ: 9...)" in refused.stdout


# ---------------------------------------------------------------- what is recorded survives a crash anywhere


@pytest.mark.parametrize("fault", ["recorded:2", "written:2"], ids=["between-record-and-write", "between-write-and-checkpoint"])
def test_a_crash_between_the_baseline_and_the_write_loses_no_source_edit(project, crash_at, fault):
    """The second page of 25 is recorded (and written) but its checkpoint did not move; the source edits a point of
    that page; the resumed copy sends the page again (insert-only keeps what landed) and the catch-up carries the
    edit: the baseline still says what was first written."""
    crash_at(fault)
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    crash_at(None)
    client = QdrantClient(path=str(project / "store"))
    client.set_payload("docs_v1", payload={"text": "edited after its page was written"}, points=[30])
    client.close()
    assert cli(*APPLY, cwd=project).returncode == 0
    assert migration.snapshot(project / "store")["collections"]["docs_v2"][30][0]["text"] == "edited after its page was written"


def test_a_torn_write_ahead_log_of_the_baseline_is_recovered(project, crash_at):
    crash_at("checkpoint:2")
    with pytest.raises(SimulatedCrash):
        cli(*APPLY, cwd=project)
    crash_at(None)
    baseline = next((project / ".qmspec" / "state").rglob("*.baseline.sqlite"))
    with open(f"{baseline}-wal", "ab") as wal:
        wal.write(b"\x37\x7f\x06\x82 a frame cut off by a power cut")
    assert cli(*APPLY, cwd=project).returncode == 0
    with sqlite3.connect(baseline) if baseline.exists() else sqlite3.connect(":memory:") as db:
        db.execute("select 1")


def test_a_torn_last_line_of_a_0_1_baseline_is_refused_naming_the_file_and_the_fix(tmp_path):
    stopped = tmp_path / "stopped"
    shutil.copytree(Path(__file__).parent / "fixtures" / "legacy-0.1" / "copy-stopped", stopped)
    legacy = next((stopped / ".qmspec" / "baselines").glob("*.jsonl"))
    legacy.write_bytes(legacy.read_bytes()[:-40])  # the power cut came in the middle of the last append
    refused = cli(*APPLY, cwd=stopped)
    assert refused.returncode == 1 and f"{legacy.relative_to(stopped)}:" in refused.stderr and "delete that last line" in refused.stderr


# ---------------------------------------------------------------- a saved plan is checked, header included


def test_a_saved_plan_whose_alias_was_edited_is_refused_before_its_lock_or_journal(project):
    from qmspec.planning.plan import Plan

    assert cli("plan", "spec.yaml", "--path", "store", "--no-preflight", "--out", "plan.json", cwd=project).returncode == 0
    data = json.loads((project / "plan.json").read_text())
    data.pop("hash")
    edited = Plan.from_dict(data | {"alias": "other"})
    (project / "edited.json").write_text(edited.to_json())  # the hash recomputed, as an attacker would
    refused = cli("apply", "edited.json", "--path", "store", "--auto-approve", cwd=project)
    assert refused.returncode == 1 and "its alias is 'other', the spec it carries says 'docs'" in refused.stderr
    assert not list((project / ".qmspec").rglob("other*"))
    shown = cli("show", "edited.json", "--path", "store", cwd=project)
    assert shown.returncode == 1 and "its alias is 'other'" in shown.stderr


# ---------------------------------------------------------------- a staged apply is never deleted silently


def test_a_changed_spec_does_not_delete_a_staged_apply_without_being_told_to(project):
    (project / "spec.yaml").write_text(migration.SPEC.replace("cleanup: {old_collection: delete}\n", ""))
    assert cli(*APPLY, "--stop-before-swap", cwd=project).returncode == 0
    client = QdrantClient(path=str(project / "store"))
    client.upsert("docs_v2", points=[models.PointStruct(id=777, vector={"dense": [0.5] * 16}, payload={"text": "only here"})])
    client.close()
    (project / "spec.yaml").write_text(migration.SPEC.replace("docs_v2", "docs_v3"))
    refused = cli(*APPLY, cwd=project)
    assert refused.returncode == 1 and "--abandon-staged" in refused.stderr
    assert "61 points, 1 of them written by the application there (1 inserted" in refused.stderr
    assert "docs_v2" in migration.snapshot(project / "store")["collections"]
    abandoned = cli(*APPLY, "--abandon-staged", cwd=project)
    assert abandoned.returncode == 0 and "collection docs_v2 deleted" in abandoned.stdout, abandoned.stderr


# ---------------------------------------------------------------- bounded input, user errors


def test_bad_source_records_are_user_errors_naming_the_line(project):
    records = ['{"id": 1, "text": "fine"}', '{"id": 2, "text": "caf\xe9"}']
    (project / "latin1.jsonl").write_bytes("\n".join(records).encode("latin-1") + b"\n")
    (project / "nested.jsonl").write_text('{"id": 1, "text": "fine"}\n{"id": 2, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    (project / "twice.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    for name, expected in (("latin1.jsonl", "latin1.jsonl:2: not UTF-8 text"), ("nested.jsonl", "nested.jsonl:2: the record is nested too deeply"),
                           ("twice.jsonl", "twice.jsonl:2: id 1 appears twice")):
        spec = migration.SPEC.replace("cleanup: {old_collection: delete}\n", f"source: {{files: [{name}]}}\n").replace("alias: docs", "alias: fresh")
        (project / "files.yaml").write_text(spec)
        result = cli("apply", "files.yaml", "--path", "store", "--auto-approve", "--no-preflight", cwd=project)
        assert result.returncode == 1 and expected in result.stderr and "internal error" not in result.stderr, result.stderr
        assert cli("status", "files.yaml", "--path", "store", "--format", "json", cwd=project).stdout.count('"running"') == 0


def test_bad_plan_files_queries_and_retry_settings_are_user_errors(project, monkeypatch):
    (project / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in cli("show", "deep.json", "--path", "store", cwd=project).stderr
    empty = cli("compare", "spec.yaml", "--path", "store", "--b", "docs_v1", "--queries-file", "/dev/null", cwd=project)
    assert empty.returncode == 1 and "/dev/null holds no query" in empty.stderr
    monkeypatch.setenv("QMSPEC_RETRY_ATTEMPTS", "many")
    retry = cli("plan", "spec.yaml", "--url", "http://127.0.0.1:9", cwd=project)
    assert retry.returncode == 1 and "QMSPEC_RETRY_ATTEMPTS='many' is not a positive whole number" in retry.stderr
    for result in (empty, retry):
        assert "internal error" not in result.stderr


@pytest.mark.parametrize("judgments, expected", [
    ("", "no query with a relevant point"),
    ('{"query": "reset password", "relevant": [1]}\nnot json\n', "judgments.jsonl:2: expected"),
], ids=["empty", "malformed"])
def test_judgments_are_checked_when_the_spec_is_validated(project, judgments, expected):
    (project / "judgments.jsonl").write_text(judgments)
    (project / "spec.yaml").write_text(migration.SPEC + "verify:\n  quality: {judgments: judgments.jsonl, min: {ndcg@10: 0.5}}\n")
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 1 and "verify.quality.judgments" in checked.stderr and expected in checked.stderr


def test_beir_qrels_without_tabs_are_refused_when_validated(project):
    (project / "queries.jsonl").write_text('{"_id": "q1", "text": "reset password"}\n')
    (project / "qrels.tsv").write_text("query-id corpus-id score\nq1 1 1\n")
    (project / "spec.yaml").write_text(migration.SPEC + "verify:\n  quality: {judgments: {queries: queries.jsonl, qrels: qrels.tsv}, "
                                       "min: {ndcg@10: 0.5}}\n")
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 1 and "qrels.tsv" in checked.stderr and "query-id<TAB>corpus-id<TAB>score" in checked.stderr


def test_shard_keys_need_custom_sharding_and_index_fields_are_paths(project):
    (project / "spec.yaml").write_text(migration.SPEC + "sharding_method: auto\nshard_keys: [eu]\n")
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 1 and "spec.yaml:13: shard_keys: shard keys need custom sharding" in checked.stderr
    (project / "spec.yaml").write_text(migration.SPEC + "payload_indexes: {meta..n: keyword}\n")
    checked = cli("validate", "spec.yaml", cwd=project)
    assert checked.returncode == 1 and "spec.yaml:12: payload_indexes.meta..n: 'meta..n' is not a payload field path" in checked.stderr
