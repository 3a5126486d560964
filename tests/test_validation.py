"""Bad specs: each case asserts the error names the file, the line and the key path, and offers a fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from qmspec.errors import SpecError
from qmspec.planning.spec import load_spec

GOOD = """\
version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 384
    distance: Cosine
    model: {name: sentence-transformers/all-MiniLM-L6-v2}
query: {using: dense, model: sentence-transformers/all-MiniLM-L6-v2}
"""

# (case, spec text, expected line, expected key path, words the message or fix must contain)
CASES = [
    ("yaml_syntax", GOOD.replace("    size: 384", "    size: [384"), 7, "", "YAML syntax"),
    ("not_a_mapping", "- just\n- a list\n", 1, "", "mapping"),
    ("unknown_key_typo", GOOD + "cleanpu: {old_collection: keep}\n", 10, "cleanpu", "did you mean 'cleanup'"),
    ("missing_alias", GOOD.replace("alias: docs\n", ""), 1, "", "missing required key 'alias'"),
    ("missing_vector_size", GOOD.replace("    size: 384\n", ""), 5, "vectors.dense", "missing required key 'size'"),
    ("size_not_integer", GOOD.replace("size: 384", "size: big"), 6, "vectors.dense.size", "not an integer"),
    ("distance_misspelled", GOOD.replace("distance: Cosine", "distance: cosine"), 7, "vectors.dense.distance", "Cosine, Dot, Euclid"),
    ("size_zero", GOOD.replace("size: 384", "size: 0"), 6, "vectors.dense.size", "out of range"),
    ("wrong_version", GOOD.replace("version: 1", "version: 2"), 1, "version", "use 1"),
    ("bad_update_mode", GOOD + "migration: {update_mode: overwrite}\n", 10, "migration.update_mode", "insert_only, upsert"),
    ("batch_size_zero", GOOD + "migration:\n  batch_size: 0\n", 11, "migration.batch_size", "out of range"),
    ("duplicate_key", GOOD.replace("    distance: Cosine\n", "    distance: Cosine\n    distance: Dot\n"), 8, "vectors.dense.distance", "duplicate key"),
    ("bad_policy_code", GOOD + "policy:\n  allow: [XX999]\n", 11, "policy.allow[0]", "DS101"),
    ("bad_quantization", GOOD + "quantization: {scalar: {type: int4}}\n", 10, "quantization", "scalar / binary / product"),
    ("alias_equals_collection", GOOD.replace("collection: docs_v2", "collection: docs"), 2, "alias", "same name"),
    ("no_model_no_carry", GOOD.replace("    model: {name: sentence-transformers/all-MiniLM-L6-v2}\n", ""), 5, "vectors.dense", "neither `model` nor `carry`"),
    ("model_and_carry", GOOD.replace("    distance: Cosine\n", "    distance: Cosine\n    carry: {from: old}\n"), 8, "vectors.dense.carry", "both `model` and `carry`"),
    ("query_unknown_vector", GOOD.replace("using: dense", "using: dens"), 9, "query.using", "not a declared vector"),
    ("truncate_dim_differs", GOOD.replace("model: {name: sentence-transformers/all-MiniLM-L6-v2}", "model: {name: m, truncate_dim: 256}"), 8, "vectors.dense.model.truncate_dim", "set truncate_dim to 384"),
    ("dense_and_sparse_same_name", GOOD + "sparse_vectors:\n  dense:\n    model: {name: Qdrant/bm25}\n", 11, "sparse_vectors.dense", "both dense and sparse"),
    ("sparse_with_dense_backend", GOOD + "sparse_vectors:\n  bm25:\n    model: {name: x, backend: sentence-transformers}\n", 12, "sparse_vectors.bm25.model.backend", "backend: bm25"),
    ("source_file_missing", GOOD + "source: {files: [missing.jsonl]}\n", 10, "source.files[0]", "file not found"),
    ("env_var_unset", GOOD + "connection: {url: '${QMSPEC_TEST_UNSET_URL}'}\n", 10, "connection.url", "QMSPEC_TEST_UNSET_URL is not set"),
    ("source_is_target", GOOD + "source: {collection: docs_v2}\n", 10, "source.collection", "the target collection itself"),
    ("verify_without_queries", GOOD + "verify:\n  search: {k: 5}\n", 11, "verify.search", "no sample queries"),
    ("name_with_slash", GOOD.replace("collection: docs_v2", "collection: docs/v2"), 3, "collection", "not allowed"),
    ("empty_file", "", None, "", "mapping"),
]


@pytest.mark.parametrize("case,text,line,key,words", CASES, ids=[case[0] for case in CASES])
def test_bad_spec_is_reported_with_file_line_key_and_fix(tmp_path, monkeypatch, case, text, line, key, words):
    monkeypatch.delenv("QMSPEC_TEST_UNSET_URL", raising=False)
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    problem = caught.value.problems[0]
    assert problem.file == str(path)
    assert problem.line == line
    assert problem.key == key
    assert words in f"{problem.message} {problem.fix}"
    assert problem.fix
    rendered = str(caught.value)
    assert rendered.startswith(f"{path}:{line}:" if line else f"{path}:")


def test_good_spec_loads(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")
    spec = load_spec(path)
    assert spec.alias == "docs" and spec.vectors[0].size == 384


def test_all_problems_are_reported_together(tmp_path):
    text = GOOD.replace("size: 384", "size: big").replace("distance: Cosine", "distance: cosine")
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert [p.key for p in caught.value.problems] == ["vectors.dense.size", "vectors.dense.distance"]


def test_environment_variables_expand_with_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("QMSPEC_TEST_URL", "https://qdrant.example:6333")
    path = tmp_path / "env.yaml"
    path.write_text(GOOD + "connection:\n  url: '${QMSPEC_TEST_URL}'\n  path: '${QMSPEC_TEST_NOPE:-/tmp/store}'\n", encoding="utf-8")
    spec = load_spec(path)
    assert spec.connection.url == "https://qdrant.example:6333"
    assert spec.connection.path == "/tmp/store"


def test_spec_hash_ignores_connection_and_tracks_desired_state(tmp_path):
    one, two, three = (tmp_path / name for name in ("1.yaml", "2.yaml", "3.yaml"))
    one.write_text(GOOD, encoding="utf-8")
    two.write_text(GOOD + "connection: {path: elsewhere}\n", encoding="utf-8")
    three.write_text(GOOD.replace("size: 384", "size: 768"), encoding="utf-8")
    assert load_spec(one).spec_hash == load_spec(two).spec_hash != load_spec(three).spec_hash


def test_schema_is_valid_draft_2020_12_with_id_and_descriptions():
    import jsonschema

    from qmspec.planning.spec import load_schema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema") and schema["$id"]
    assert all("description" in value or "$ref" in value for value in schema["properties"].values())


SHIPPED = sorted(str(path.relative_to(Path(__file__).parent.parent)) for folder in ("specs", "examples")
                 for path in (Path(__file__).parent.parent / folder).rglob("*.yaml") if "ci" not in path.parts
                 and not path.name.startswith("pre-commit"))


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_specs_are_valid_and_no_gate_in_them_passes_by_construction(path, monkeypatch):
    monkeypatch.chdir(Path(__file__).parent.parent)
    spec = load_spec(path)
    # e.g. min_overlap 0, a min of 0 or a max_drop of 1; a walkthrough's handful of judged queries is warned about, honestly
    assert spec.alias and [w for w in spec.warnings if "judged queries" not in w.message] == []


def test_environment_values_merge_over_the_spec_and_errors_point_at_the_overlay(tmp_path):
    path = tmp_path / "envs.yaml"
    path.write_text(GOOD + "environments:\n  prod:\n    replication_factor: 3\n    vectors:\n      dense: {on_disk: true}\n"
                           "  qa:\n    replication_factor: many\n", encoding="utf-8")
    base, prod = load_spec(path), load_spec(path, env="prod")
    assert (base.settings.replication_factor, base.vectors[0].on_disk) == (None, False)
    assert (prod.settings.replication_factor, prod.vectors[0].on_disk, prod.vectors[0].size) == (3, True, 384)
    assert base.spec_hash != prod.spec_hash
    with pytest.raises(SpecError) as caught:
        load_spec(path, env="qa")
    problem = caught.value.problems[0]
    assert (problem.line, problem.key) == (16, "replication_factor") and "not an integer" in problem.message


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("text,line,words", [
    (BILLION_LAUGHS, 1, "expands to more than 100,000 values"),
    ("version: 1\nalias: !!python/name:os.system docs\n", 2, "the tag !!python/name:os.system is not allowed"),
    ("version: 1\ncollection: !!python/object:os.x {a: 1}\n", 2, "the tag !!python/object:os.x is not allowed"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", None, "nested too deeply"),
    ("x: " + "y" * 1_100_000 + "\n", None, "more than the 1,000,000 a spec may have"),
    (GOOD + "connection: {url: 'http://localhost:abc'}\n", 10, "not a valid URL (Port could not be cast"),
])
def test_hostile_yaml_is_refused_quickly_with_a_line(tmp_path, text, line, words):
    import time

    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert time.monotonic() - started < 5
    problem = error.value.problems[0]
    assert problem.line == line and words in problem.message


@pytest.mark.e2e
def test_an_anchor_bomb_is_refused_within_seconds_and_a_memory_limit(tmp_path):
    """A real process under a 1 GiB address-space limit: before the bound it grew toward 100 GB."""
    import resource
    import subprocess
    import sys
    import time

    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "qmspec", "validate", "bomb.yaml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=30, preexec_fn=limit)
    assert time.monotonic() - started < 10
    assert result.returncode == 1 and "expands to more than 100,000 values" in result.stderr and "Traceback" not in result.stderr
