"""The pure middle (diff, rules, planner) with hand-built values: no Qdrant, no files."""
from __future__ import annotations

import dataclasses

import pytest

from qmspec.planning import capabilities
from qmspec.planning.settings import quantization_differs, subset_differs
from qmspec.planning.livestate import LiveCollection, LiveDenseVector, LiveSparseVector, LiveState
from qmspec.planning.plan import Carry
from qmspec.planning.planner import PlanningError, plan_migration
from qmspec.planning.spec import DenseVectorSpec, ModelSpec, SourceSpec, Spec, SparseVectorSpec

MINI = ModelSpec(name="minilm", backend="sentence-transformers")


def spec(**overrides) -> Spec:
    values = dict(file="spec.yaml", alias="docs", collection="docs_v2",
                  vectors=(DenseVectorSpec("dense", 384, "Cosine", model=MINI),))
    return Spec(**(values | overrides))


def collection(name="docs_v1", points=10, model="minilm", **overrides) -> LiveCollection:
    values = dict(name=name, vectors=(LiveDenseVector("dense", 384, "Cosine"),), points=points,
                  metadata={"qmspec": {"vectors": {"dense": {"model": model}}}} if model else {})
    return LiveCollection(**(values | overrides))


def live(*collections, aliases=None, version="1.20.0") -> LiveState:
    return LiveState(version, embedded=False, collections={c.name: c for c in collections},
                     aliases=aliases if aliases is not None else {"docs": "docs_v1"})


def kinds(plan) -> list[str]:
    return [step.kind for step in plan.steps]


def codes(plan) -> set[str]:
    return {finding.code for finding in plan.findings}


def test_same_model_same_shape_is_carried_not_re_embedded():
    plan = plan_migration(spec(), live(collection()))
    assert kinds(plan) == ["create_collection", "copy_points", "catch_up", "restore_indexing", "verify", "swap_alias"]
    assert plan.steps[1].carry == {"dense": Carry("dense")}
    assert plan.estimate["vectors_to_embed"] == 0


def test_unknown_source_model_is_re_embedded_to_be_safe():
    plan = plan_migration(spec(), live(collection(model=None)))
    assert set(plan.steps[1].embed) == {"dense"} and plan.steps[1].carry == {}
    assert "records no model" in plan.notes[0]


def test_plan_is_deterministic():
    state = live(collection())
    assert plan_migration(spec(), state).hash == plan_migration(spec(), state).hash


def test_delete_after_verify_is_the_last_step_and_gated():
    plan = plan_migration(spec(cleanup_old="delete"), live(collection()))
    assert kinds(plan)[-1] == "delete_collection"
    assert plan.steps[-1].after == ("verify", "swap_alias")
    assert not plan.refused


def test_delete_with_verification_disabled_is_refused():
    from qmspec.planning.spec import VerifySpec

    no_gates = VerifySpec(count=False, vectors=False, payload_mode="off")
    plan = plan_migration(spec(cleanup_old="delete", verify=no_gates), live(collection()))
    assert "DS101" in codes(plan) and plan.refused


def test_policy_allow_accepts_allowable_rules_only():
    grown = spec(collection="docs_v1", vectors=(DenseVectorSpec("dense", 384, "Cosine", model=MINI),
                                               DenseVectorSpec("new", 768, "Cosine", model=ModelSpec("mpnet", "sentence-transformers"))))
    assert plan_migration(grown, live(collection())).refused
    accepted = plan_migration(dataclasses.replace(grown, allow=frozenset({"MF305"})), live(collection()))
    assert not accepted.refused and [f.allowed for f in accepted.findings] == [True]
    impossible = spec(collection="docs_v1", vectors=(DenseVectorSpec("dense", 768, "Cosine", model=MINI),), allow=frozenset({"DS104"}))
    assert plan_migration(impossible, live(collection())).refused


def test_in_place_vector_add_needs_1_18():
    grown = spec(collection="docs_v1", allow=frozenset({"MF305"}),
                 vectors=(DenseVectorSpec("dense", 384, "Cosine", model=MINI), DenseVectorSpec("b", 8, "Dot", model=MINI)))
    assert "RQ401" in codes(plan_migration(grown, live(collection(), version="1.17.9")))
    assert "RQ401" not in codes(plan_migration(grown, live(collection(), version="1.18.0")))


def test_sparse_vector_is_carried_when_source_has_it_from_the_same_model():
    bm25 = ModelSpec(name="Qdrant/bm25", backend="bm25")
    source = collection(sparse_vectors=(LiveSparseVector("bm25", "idf"),),
                        metadata={"qmspec": {"vectors": {"dense": {"model": "minilm"}, "bm25": {"model": "Qdrant/bm25"}}}})
    plan = plan_migration(spec(sparse_vectors=(SparseVectorSpec("bm25", model=bm25),)), live(source))
    assert set(plan.steps[1].carry) == {"dense", "bm25"}
    assert "MF303" not in codes(plan)  # not new to this data: no hybrid migration


@pytest.mark.parametrize("state,spec_values,message", [
    (live(collection("docs")), {}, "is the name of an existing collection"),
    (live(aliases={}), {}, "nothing to copy points from"),
    (live(collection()), {"source": SourceSpec(collection="nope")}, "source collection 'nope' does not exist"),
    (live(collection()), {"vectors": (DenseVectorSpec("dense", 384, "Cosine", carry_from="gone"),)}, "has no vector 'gone'"),
    (live(collection()), {"vectors": (DenseVectorSpec("dense", 1024, "Cosine", carry_from="dense"),)}, "cannot fill a 1024-d vector"),
])
def test_impossible_situations_raise_planning_errors(state, spec_values, message):
    with pytest.raises(PlanningError, match=message):
        plan_migration(spec(**spec_values), state)


def test_large_live_state_plans_fast():
    """A smoke bound only; the timed figure lives in benchmarks/plan_large_state.py."""
    many = [collection(f"c{i}") for i in range(1000)]
    state = live(*many, collection(), aliases={f"a{i}": f"c{i}" for i in range(1000)} | {"docs": "docs_v1"})
    assert plan_migration(spec(), state).steps


def test_subset_and_quantization_comparisons():
    assert not subset_differs({"m": 16}, {"m": 16, "ef_construct": 100})
    assert subset_differs({"m": 32}, {"m": 16})
    assert not quantization_differs(None, {"scalar": {}})
    assert quantization_differs({}, {"scalar": {"type": "int8"}})
    assert quantization_differs({"binary": {}}, {"scalar": {"type": "int8"}})
    assert not quantization_differs({"scalar": {"type": "int8"}}, {"scalar": {"type": "int8", "quantile": 0.99}})


def test_capabilities_by_version():
    assert not capabilities.supports("1.17.3", "create_vector_name")
    assert capabilities.supports("v1.18.0", "create_vector_name")
    assert capabilities.supports(None, "update_mode")  # unknown: assume current
    assert capabilities.parse_version("1.16") == (1, 16, 0)


E5 = ModelSpec("intfloat/e5-small-v2", "sentence-transformers", prompts={"query": "query: ", "document": "passage: "})


@pytest.mark.parametrize("recorded,model,same", [
    ({"model": "minilm"}, MINI, True),  # recorded by an older qmspec: no revision, no prompts
    ({"model": "minilm"}, dataclasses.replace(MINI, revision="abc123"), False),
    ({"model": "minilm", "revision": "abc123"}, dataclasses.replace(MINI, revision="abc123"), True),
    ({"model": "minilm", "revision": "abc123"}, dataclasses.replace(MINI, revision="def456"), False),
    ({"model": E5.name, "prompts": E5.prompts}, E5, True),
    ({"model": E5.name}, E5, False),  # stored without the prompts the model needs
    ({"model": E5.name, "prompts": E5.prompts}, dataclasses.replace(E5, prompts={"query": "query: ", "document": ""}), False),
    ({"model": "minilm"}, dataclasses.replace(MINI, path="/models/minilm", device="cuda", batch_size=8), True),  # how, not what
])
def test_a_different_revision_or_prompt_is_a_model_change(recorded, model, same):
    source = collection(metadata={"qmspec": {"vectors": {"dense": recorded}}})
    plan = plan_migration(spec(vectors=(DenseVectorSpec("dense", 384, "Cosine", model=model),)), live(source))
    assert (plan.steps[1].carry != {}) is same
    in_place = plan_migration(spec(collection="docs_v1", vectors=(DenseVectorSpec("dense", 384, "Cosine", model=model),)), live(source))
    assert ("MF302" in codes(in_place)) is not same


def test_metadata_records_a_portable_identity_never_a_path():
    from qmspec.planning.modelfacts import ModelFacts

    model = dataclasses.replace(E5, path="/home/me/models/e5", revision="main", device="cpu")
    plan = plan_migration(spec(vectors=(DenseVectorSpec("dense", 384, "Cosine", model=model),)), live(collection()),
                          models={E5.name: ModelFacts(E5.name, 384, 0.004, commit="0123abcd")})
    recorded = plan.steps[0].metadata["qmspec"]["vectors"]["dense"]
    assert recorded["model"] == E5.name and recorded["revision"] == "main" and recorded["commit"] == "0123abcd"
    assert recorded["prompts"] == {"query": "query: ", "document": "passage: "}
    assert "path" not in recorded["model_settings"] and "device" not in recorded["model_settings"]
    assert "/home/me" not in str(recorded)
    assert plan.steps[1].embed["dense"].model["path"] == "/home/me/models/e5"  # the step still loads it from there
    assert plan.estimate["embedding"] == [{"vector": "dense", "model": E5.name, "texts": 10, "seconds": 0.0}]
