"""The command line as a user meets it: its exit codes and its streams, in process (fast tier); the few tests marked
e2e run the same commands as a real subprocess, as a shell sees them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from .livebuilder import build_store
from .run import cli, qmspec

ROOT = Path(__file__).parent.parent
MINI = "sentence-transformers/all-MiniLM-L6-v2"

LIVE_V1 = {
    "collections": {"docs_v1": {"vectors": {"dense": {"size": 8, "distance": "Cosine"}}, "points": 5, "models": {"dense": MINI}}},
    "aliases": {"docs": "docs_v1"},
}
SPEC_V2 = """\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense: {size: 16, distance: Cosine, model: {name: other/model-16, backend: "tests.plugins.hash_embedder:HashEmbedder", options: {size: 16}}}
query: {using: dense, model: other/model-16}
"""
SPEC_SAME = f"""\
version: 1
alias: docs
collection: docs_v1
vectors:
  dense: {{size: 8, distance: Cosine, model: {{name: {MINI}}}}}
"""




@pytest.fixture()
def project(tmp_path):
    build_store(str(tmp_path / "store"), LIVE_V1)
    (tmp_path / "v2.yaml").write_text(SPEC_V2, encoding="utf-8")
    (tmp_path / "same.yaml").write_text(SPEC_SAME, encoding="utf-8")
    return tmp_path


def test_plan_exit_codes(project):
    assert cli("plan", "same.yaml", "--path", "store", cwd=project).returncode == 0
    assert cli("plan", "same.yaml", "--path", "store", "--detailed-exitcode", cwd=project).returncode == 0
    changes = cli("plan", "v2.yaml", "--path", "store", "--detailed-exitcode", cwd=project)
    assert changes.returncode == 2, changes.stderr
    assert "swap alias docs: docs_v1 -> docs_v2" in changes.stdout
    assert cli("plan", "v2.yaml", "--path", "store", cwd=project).returncode == 0


def test_refused_plan_exits_3_and_is_not_saved(project):
    (project / "bad.yaml").write_text(SPEC_V2 + "cleanup: {old_collection: delete, when: immediately}\n", encoding="utf-8")
    result = cli("plan", "bad.yaml", "--path", "store", "--out", "plan.json", cwd=project)
    assert result.returncode == 3
    assert "DS101" in result.stdout and "Plan refused" in result.stdout
    assert not (project / "plan.json").exists()


def test_invalid_spec_exits_1_with_line_and_no_traceback(project):
    (project / "broken.yaml").write_text(SPEC_V2.replace("distance: Cosine", "distance: cos"), encoding="utf-8")
    result = cli("plan", "broken.yaml", "--path", "store", cwd=project)
    assert result.returncode == 1
    assert "broken.yaml:5: vectors.dense.distance" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert cli("validate", "v2.yaml", "broken.yaml", cwd=project).returncode == 1
    assert cli("validate", "v2.yaml", cwd=project).stdout.strip() == "ok: v2.yaml"


def test_usage_errors_exit_1_not_2(project):
    result = cli("plan", "v2.yaml", "--format", "yaml", cwd=project)
    assert result.returncode == 1
    assert cli("plan", "v2.yaml", "--path", "a", "--url", "http://b", cwd=project).returncode == 1


def test_formats(project):
    as_json = cli("plan", "v2.yaml", "--path", "store", "--format", "json", cwd=project)
    data = json.loads(as_json.stdout)
    assert [step["kind"] for step in data["steps"]] == [
        "create_collection", "copy_points", "catch_up", "restore_indexing", "verify", "swap_alias"]
    assert [e["vector"] for e in data["estimate"]["embedding"]] == ["dense"]  # measured by the preflight
    assert "Estimates (measured on a sample by the preflight" in cli("plan", "v2.yaml", "--path", "store", cwd=project).stdout
    markdown = cli("plan", "v2.yaml", "--path", "store", "--format", "markdown", cwd=project).stdout
    assert markdown.startswith("### qmspec plan: `docs` → `docs_v2`")
    assert "| 6 | `~` | swap alias docs: docs_v1 -> docs_v2 (atomic) |" in markdown


def test_saved_plan_goes_stale_when_live_state_moves(project):
    assert cli("plan", "v2.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    assert cli("show", "plan.json", "--path", "store", cwd=project).returncode == 0
    client = QdrantClient(path=str(project / "store"))
    client.upsert("docs_v1", points=[models.PointStruct(id=99, vector={"dense": [0.1] * 8}, payload={"text": "new"})])
    client.close()
    stale = cli("show", "plan.json", "--path", "store", cwd=project)
    assert stale.returncode == 4
    assert "stale plan" in stale.stderr


def test_stale_when_alias_moves(project):
    assert cli("plan", "v2.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    client = QdrantClient(path=str(project / "store"))
    client.create_collection("docs_v0", vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)})
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v0", alias_name="docs"))])
    client.close()
    stale = cli("show", "plan.json", "--path", "store", cwd=project)
    assert stale.returncode == 4
    assert "alias docs now serves docs_v0, not docs_v1" in stale.stderr


def test_damaged_plan_file_is_an_error_not_a_traceback(project):
    (project / "plan.json").write_text("{not json", encoding="utf-8")
    result = cli("show", "plan.json", "--path", "store", cwd=project)
    assert result.returncode == 1 and "invalid JSON" in result.stderr and "Traceback" not in result.stderr


def test_plan_never_writes_to_qdrant(project):
    before = _tree(project / "store")
    assert cli("plan", "v2.yaml", "--path", "store", cwd=project).returncode == 0
    assert _tree(project / "store") == before
    assert cli("plan", "v2.yaml", "--path", "nowhere", cwd=project).returncode == 1  # alias missing in an empty store
    assert not (project / "nowhere").exists()


def test_locked_embedded_store_is_a_clear_error(project):
    holder = QdrantClient(path=str(project / "store"))
    try:
        result = cli("plan", "v2.yaml", "--path", "store", cwd=project)
    finally:
        holder.close()
    assert result.returncode == 1
    assert "open in another process" in result.stderr and "Traceback" not in result.stderr


def test_api_key_is_never_printed_or_saved(project):
    secret = "qmspec-test-secret-7f3a9c"
    env = {"QMSPEC_TEST_KEY": secret}
    result = cli("plan", "v2.yaml", "--url", "http://user:pw@127.0.0.1:9/", "--api-key-env", "QMSPEC_TEST_KEY",
                    "--out", "plan.json", cwd=project, env=env)
    assert result.returncode == 1
    assert "server http://127.0.0.1:9/" in result.stderr
    for text in (result.stdout, result.stderr):
        assert secret not in text and "pw@" not in text


@pytest.mark.e2e
def test_a_real_process_exits_with_the_documented_codes_and_no_traceback(project):
    assert qmspec("plan", "v2.yaml", "--path", "store", "--detailed-exitcode", cwd=project).returncode == 2
    (project / "broken.yaml").write_text(SPEC_V2.replace("distance: Cosine", "distance: cos"), encoding="utf-8")
    broken = qmspec("plan", "broken.yaml", "--path", "store", cwd=project)
    assert broken.returncode == 1 and "broken.yaml:5: vectors.dense.distance" in broken.stderr
    assert "Traceback" not in broken.stderr + broken.stdout
    assert qmspec("--version", cwd=project).stdout.startswith("qmspec, version")


def test_schema_command_prints_the_schema(project):
    result = cli("schema", cwd=project)
    assert json.loads(result.stdout)["title"] == "qmspec migration spec"


def test_rules_catalog_is_documented_in_the_readme():
    from qmspec.planning.rules import RULES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        assert f"`{code}`" in readme and rule.title in readme, code


def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_secrets_expanded_into_a_url_or_pasted_as_a_variable_name_are_never_echoed(project, tmp_path):
    token = "tok-3f9a7c21e8"
    env = {"QMSPEC_TEST_TOKEN": token, "QMSPEC_TEST_KEY": "key-5d6e7f8a9b"}
    (project / "url.yaml").write_text(SPEC_V2 + "connection: {url: 'http://127.0.0.1:9/${QMSPEC_TEST_TOKEN}'}\n", encoding="utf-8")
    for command in (("plan", "url.yaml"), ("apply", "url.yaml", "--auto-approve")):
        result = cli(*command, cwd=project, env=env)
        assert result.returncode == 1 and token not in result.stdout + result.stderr and "127.0.0.1:9" in result.stderr
    assert token not in str(list(project.rglob("*")))  # nor in a state path
    (project / "pasted.yaml").write_text(SPEC_V2 + "connection: {url: 'http://127.0.0.1:9', api_key_env: sk-live-0a1b2c}\n",
                                         encoding="utf-8")
    pasted = cli("validate", "pasted.yaml", cwd=project)
    assert pasted.returncode == 1 and "sk-live-0a1b2c" not in pasted.stderr and "not the name of an environment variable" in pasted.stderr
    insecure = cli("plan", "v2.yaml", "--url", "http://127.0.0.1:9", "--api-key-env", "QMSPEC_TEST_KEY", cwd=project, env=env)
    assert "warning: the API key in QMSPEC_TEST_KEY is sent to the server http://127.0.0.1:9 over plain http" in insecure.stderr
    assert "key-5d6e7f8a9b" not in insecure.stderr


REPORTS = ["plan", "show", "status", "drift", "diff", "compare", "rules", "validate"]
CHANGES = ["apply", "rollback", "cleanup", "unlock"]


@pytest.mark.parametrize("command", REPORTS)
def test_every_report_takes_the_same_formats(command):
    from qmspec.cli import cli as group

    [fmt] = [param for param in group.commands[command].params if param.name == "fmt"]
    assert {"text", "json", "markdown"} <= set(fmt.type.choices)


@pytest.mark.parametrize("command", CHANGES)
def test_every_command_that_changes_qdrant_asks_the_same_way(command):
    from qmspec.cli import cli as group

    assert "auto_approve" in {param.name for param in group.commands[command].params}


@pytest.mark.parametrize("command", ["plan", "drift", "diff"])
def test_exit_2_comes_only_with_detailed_exitcode(command):
    from qmspec.cli import cli as group

    assert "detailed_exitcode" in {param.name for param in group.commands[command].params}


def test_validate_checks_every_environment_overlay_and_speaks_github(project):
    (project / "envs.yaml").write_text(SPEC_SAME + "environments:\n  prod: {replication_factor: many}\n", encoding="utf-8")
    text = cli("validate", "envs.yaml", cwd=project)
    assert text.returncode == 1 and "envs.yaml:7: replication_factor: 'many' is not an integer" in text.stderr
    github = cli("validate", "envs.yaml", "--format", "github", cwd=project)
    assert github.stdout.startswith("::error file=envs.yaml,line=7,title=qmspec replication_factor::'many' is not an integer")
    assert cli("validate", "v2.yaml", "--format", "github", cwd=project).stdout == "::notice file=v2.yaml::valid\n"


def _rewrite(path: Path, change) -> None:
    """Edit a saved plan as an attacker would: change it, then recompute its content hash."""
    from qmspec.planning.plan import Plan

    data = json.loads(path.read_text())
    data.pop("hash")
    change(data)
    path.write_text(json.dumps(data | {"hash": Plan.from_dict(data).hash}))


@pytest.mark.parametrize("tamper,words", [
    (lambda d: d.update(steps=[{"kind": "delete_collection", "collection": "other", "after": []}]),
     "step 1 is delete_collection on other in the file, create_collection on docs_v2 when planned"),
    (lambda d: d["steps"].insert(2, {"kind": "delete_collection", "collection": "other", "after": []}),
     "step 3 is delete_collection on other in the file"),
    (lambda d: d["steps"].pop(4), "step 5 is swap_alias"),  # verify removed
])
def test_an_edited_saved_plan_is_refused_and_runs_nothing(project, tamper, words):
    client = QdrantClient(path=str(project / "store"))
    client.create_collection("other", vectors_config={})
    client.close()
    assert cli("plan", "v2.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    _rewrite(project / "plan.json", tamper)
    shown = cli("show", "plan.json", "--path", "store", cwd=project)
    assert shown.returncode == 1 and words in shown.stderr
    applied = cli("apply", "plan.json", "--path", "store", "--auto-approve", cwd=project)
    assert applied.returncode == 1 and words in applied.stderr
    client = QdrantClient(path=str(project / "store"))
    try:
        assert {c.name for c in client.get_collections().collections} == {"docs_v1", "other"}
    finally:
        client.close()


def test_a_saved_plan_edited_without_its_hash_and_one_stripped_of_its_findings_are_refused(project):
    assert cli("plan", "v2.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    data = json.loads((project / "plan.json").read_text())
    data["steps"][5]["to_collection"] = "elsewhere"
    (project / "plan.json").write_text(json.dumps(data))
    edited = cli("apply", "plan.json", "--path", "store", "--auto-approve", cwd=project)
    assert edited.returncode == 1 and "changed after `qmspec plan` wrote it" in edited.stderr

    # a spec the rules refuse, its plan saved by hand without the refusing finding: the checks run again
    refused_spec = SPEC_V2 + "cleanup: {old_collection: delete, when: immediately}\n"
    assert cli("plan", "v2.yaml", "--path", "store", "--out", "plan.json", cwd=project).returncode == 0
    (project / "v2.yaml").write_text(refused_spec, encoding="utf-8")
    raw = cli("plan", "v2.yaml", "--path", "store", "--format", "json", cwd=project)
    assert raw.returncode == 3

    def strip(d):
        d.update({key: value for key, value in json.loads(raw.stdout).items() if key != "hash"}, findings=[])

    _rewrite(project / "plan.json", strip)
    applied = cli("apply", "plan.json", "--path", "store", "--auto-approve", cwd=project)
    assert applied.returncode == 3 and "DS101" in applied.stdout
