"""The pure middle (diff, rules, planner) with hand-built values: no Qdrant, no files."""
from __future__ import annotations

import dataclasses

import pytest

from qmspec.planning import capabilities
from qmspec.planning.settings import quantization_differs, subset_differs
from qmspec.planning.livestate import LiveCollection, LiveDenseVector, LiveSparseVector, LiveState
from qmspec.planning.plan import Carry
from qmspec.planning.planner import PlanningError, plan_migration
from qmspec.planning.spec import DenseVectorSpec, ModelSpec, Override, SourceSpec, Spec, SparseVectorSpec

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
    accepted = plan_migration(dataclasses.replace(grown, allow=(Override("MF305"),)), live(collection()))
    assert not accepted.refused and [f.allowed for f in accepted.findings] == [True]
    impossible = spec(collection="docs_v1", vectors=(DenseVectorSpec("dense", 768, "Cosine", model=MINI),), allow=(Override("DS104"),))
    assert plan_migration(impossible, live(collection())).refused


def test_an_override_accepts_until_its_date_a_bare_code_for_ever_and_says_why():
    grown = spec(collection="docs_v1", vectors=(DenseVectorSpec("dense", 384, "Cosine", model=MINI),
                                               DenseVectorSpec("new", 768, "Cosine", model=ModelSpec("mpnet", "sentence-transformers"))))
    read_on = dataclasses.replace(live(collection()), observed_at=1_795_960_000)  # 2026-11-29 UTC
    valid = Override("MF305", "compared by hand on 300 queries", "2026-12-31")
    (finding,) = plan_migration(dataclasses.replace(grown, allow=(valid,)), read_on).findings
    assert finding.allowed and finding.accepted == {"reason": "compared by hand on 300 queries", "until": "2026-12-31"}
    last_day = plan_migration(dataclasses.replace(grown, allow=(Override("MF305", "why", "2026-11-29"),)), read_on)
    assert not last_day.refused  # `until` is the last day it accepts
    expired = plan_migration(dataclasses.replace(grown, allow=(Override("MF305", "why", "2026-11-28"),)), read_on)
    assert expired.refused and not expired.findings[0].allowed
    assert "policy.allow accepted MF305 until 2026-11-28, which has passed" in expired.findings[0].message
    (bare,) = plan_migration(dataclasses.replace(grown, allow=(Override("MF305"),)), read_on).findings
    assert bare.allowed and bare.accepted is None


def test_in_place_vector_add_needs_1_18():
    grown = spec(collection="docs_v1", allow=(Override("MF305"),),
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


# ---------------------------------------------------------------- the current guide's in-place path

MPNET = ModelSpec(name="mpnet", backend="sentence-transformers")
GROWN = dict(collection="docs_v1", vectors=(DenseVectorSpec("dense", 384, "Cosine", model=MINI), DenseVectorSpec("mpnet", 768, "Cosine", model=MPNET)))


def grown(**overrides) -> Spec:
    from qmspec.planning.spec import SearchCheck, VerifySpec

    return spec(**(GROWN | {"verify": VerifySpec(search=SearchCheck(("reset password",), "mpnet", 10, 0.3))} | overrides))


@pytest.mark.parametrize("version, refused, strategy", [
    ("1.17.9", {"RQ401"}, "needs a new collection: Qdrant 1.17.9 cannot add a named vector to a collection in place (1.18+); "
                          "set `collection: docs_v2` in spec.yaml"),
    ("1.18.0", set(), "in place: add mpnet to docs_v1"),
    ("1.19.0", set(), "in place: add mpnet to docs_v1"),
])
def test_a_kept_name_adds_the_vector_in_place_from_1_18_and_names_the_spec_change_before(version, refused, strategy):
    plan = plan_migration(grown(), live(collection(), version=version))
    assert {code for code in codes(plan) if plan.refused} == refused
    assert plan.strategy.startswith(strategy)
    assert kinds(plan) == ["update_collection", "create_vector", "backfill_vector", "catch_up_vector", "verify"]


@pytest.mark.parametrize("version, refused", [("1.18.2", True), ("1.19.0", False)])
def test_a_name_deleted_in_place_is_created_again_only_from_1_19(version, refused):
    deleted = collection(metadata={"qmspec": {"vectors": {"dense": {"model": "minilm"}}, "deleted": {"mpnet": "2026-11-30T10:00:00Z"}}})
    plan = plan_migration(grown(), live(deleted, version=version))
    assert ("RQ404" in codes(plan)) is refused
    if refused:
        assert "Qdrant 1.19 fixes it" in next(f.message for f in plan.findings if f.code == "RQ404")


def test_an_unnamed_collection_cannot_get_named_vectors_in_place_and_the_refusal_says_the_new_name():
    unnamed = collection(vectors=(LiveDenseVector("", 384, "Cosine"),), metadata={})
    plan = plan_migration(grown(vectors=(DenseVectorSpec("mpnet", 768, "Cosine", model=MPNET),)), live(unnamed))
    finding = next(f for f in plan.findings if f.code == "RQ405")
    assert finding.refuses and "set `collection: docs_v2` in spec.yaml" in finding.message


def test_a_new_collection_name_keeps_the_alias_swap_and_says_the_in_place_path_exists():
    plan = plan_migration(grown(collection="docs_v2"), live(collection()))
    assert "create_collection" in kinds(plan) and "swap_alias" in kinds(plan)
    assert plan.strategy.startswith("new collection and alias swap") and "in place" in plan.strategy


def quota(**values):
    from qmspec.planning.livestate import Quota

    return Quota(**({"enabled": True, "max_disk_percent": 90, "disk_percent": 50, "disk_bytes": 10 << 30} | values))


@pytest.mark.parametrize("points, used, refused", [(1000, 50, False), (2_000_000, 89, True)])
def test_quota_headroom_is_checked_for_an_in_place_add(points, used, refused):
    state = dataclasses.replace(live(collection(points=points)), quota=quota(disk_percent=used))
    plan = plan_migration(grown(), state)
    assert ("MF307" in codes(plan)) is refused  # 2M x 768 float32 = 5.7 GiB against 1% of 10 GiB


def test_a_new_collection_needs_about_what_the_old_one_takes():
    old = collection(points=1000, footprint=3 << 30)  # the server's own estimate: 3 GiB
    state = dataclasses.replace(live(old), quota=quota(disk_percent=70))  # 20% of 10 GiB left
    finding = next(f for f in plan_migration(spec(), state).findings if f.code == "MF307")
    assert "about 3.0 GiB to disk (collection docs_v2)" in finding.message and "leaves 2.0 GiB" in finding.message


def test_a_node_over_its_quota_refuses_any_plan_that_writes():
    state = dataclasses.replace(live(collection()), quota=quota(exceeded=("disk",)))
    finding = next(f for f in plan_migration(spec(), state).findings if f.code == "MF307")
    assert "over its disk quota now" in finding.message


def test_dropping_needs_the_recorded_query_to_have_left_the_vector_for_the_window():
    import calendar
    import time

    switched = collection(vectors=(LiveDenseVector("dense", 384, "Cosine"), LiveDenseVector("mpnet", 768, "Cosine")),
                          metadata={"qmspec": {"vectors": {"dense": {"model": "minilm"}, "mpnet": {"model": "mpnet"}},
                                               "query": {"using": "mpnet"}, "released": {"dense": "2026-12-01T00:00:00Z"}}})
    at = lambda text: float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))  # noqa: E731
    drop = spec(collection="docs_v1", vectors=(DenseVectorSpec("mpnet", 768, "Cosine", model=MPNET),), query_shape={"using": "mpnet"})
    early = plan_migration(drop, dataclasses.replace(live(switched), observed_at=at("2026-12-01T20:00:00Z")))
    assert "DS103" in codes(early) and "4h00m left" in next(f.message for f in early.findings if f.code == "DS103")
    later = plan_migration(drop, dataclasses.replace(live(switched), observed_at=at("2026-12-02T00:00:00Z")))
    assert kinds(later) == ["delete_vector"] and not later.findings
