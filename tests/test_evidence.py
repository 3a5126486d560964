"""Quality gates decided on confidence intervals: a better model passes on many judged queries and is refused on ten for
want of evidence, a worse one is refused with an interval that excludes zero, the same inputs give the same interval,
and the gate, the text, the Markdown and the JSON report say the same thing."""
from __future__ import annotations

import json
import random
import re

import pytest
from qdrant_client import QdrantClient, models

from qmspec.applying.evidence import Evidence, mean_interval, paired_difference
from qmspec.applying.quality import NOT_ENOUGH, WORSE, gates
from qmspec.planning.plan import QualityGates

from .migration import PLUGIN
from .plugins.hash_embedder import HashEmbedder
from .run import cli


def per_query(values: list[float]) -> dict:
    return {f"q{index}": {"ndcg@10": value} for index, value in enumerate(values)}


def gate(max_drop: float | None = None, minimum: float | None = None, confidence: float = 0.95) -> QualityGates:
    return QualityGates(("j.jsonl",), "f", ("ndcg@10",), 10, {"ndcg@10": minimum} if minimum is not None else {},
                        {"ndcg@10": max_drop} if max_drop is not None else {}, {"using": "dense"}, None, confidence)


def better_model(queries: int, seed: int = 1) -> tuple[dict, dict]:
    """The new model wins on 40% of the queries, loses on 15%, ties on the rest: better by about 0.25 on average."""
    rng = random.Random(seed)
    current, new = [], []
    for _ in range(queries):
        base, roll = rng.uniform(0.3, 0.7), rng.random()
        current.append(base)
        new.append(min(1.0, base + 0.6) if roll < 0.4 else max(0.0, base - 0.6) if roll < 0.55 else base)
    return per_query(new), per_query(current)


def test_a_better_model_passes_on_many_queries_and_is_refused_on_ten_for_want_of_evidence():
    new, current = better_model(400)
    (passed,) = gates(gate(max_drop=0.02), Evidence(new, current))
    assert passed.passed and passed.interval.low > -0.02 and passed.interval.queries == 400
    few_new, few_current = better_model(10, seed=2)
    (refused,) = gates(gate(max_drop=0.02), Evidence(few_new, few_current))
    assert not refused.passed and refused.verdict == NOT_ENOUGH
    assert refused.interval.low < -0.02 < 0 < refused.interval.high  # better on average, but 10 queries bound nothing
    assert re.match(r"max_drop ndcg@10: not enough evidence: 10 queries give ±0\.\d{3} at 95% \(95% CI -0\.\d+ to \+0\.\d+\); "
                    r"judge more queries, widen max_drop, or accept with --accept-quality", refused.describe()), refused.describe()


def test_a_worse_model_is_refused_with_an_interval_that_excludes_zero():
    current, new = better_model(120)  # the same model, the other way round
    (refused,) = gates(gate(max_drop=0.02), Evidence(new, current))
    assert refused.verdict == WORSE and refused.interval.high < 0
    assert "the drop is real (the interval excludes 0) and may be as large as 0.141, beyond max_drop 0.02" in refused.describe()


def test_a_floor_is_cleared_by_the_interval_low_end_not_by_the_mean():
    values = per_query([0.9, 0.1, 0.95, 0.85, 0.2, 0.9, 0.92, 0.15])
    (floor,) = gates(gate(minimum=0.5), Evidence(values, None))
    assert floor.value > 0.5 and floor.verdict == NOT_ENOUGH  # mean 0.62, 8 queries
    (clear,) = gates(gate(minimum=0.5), Evidence(per_query([0.9, 0.92, 0.95, 0.88] * 10), None))
    assert clear.passed


def test_the_same_inputs_give_the_same_interval_and_the_confidence_is_configurable():
    new, current = better_model(80)
    new_values, current_values = ({q: v["ndcg@10"] for q, v in side.items()} for side in (new, current))
    first, again = paired_difference(new_values, current_values), paired_difference(new_values, current_values)
    assert first == again and first.method == "paired bootstrap"
    wider = paired_difference(new_values, current_values, confidence=0.99)
    assert wider.low < first.low and wider.high > first.high
    assert mean_interval([0.5, 0.5, 0.5]) .low == 0.5  # nothing varies: the value itself


# ---------------------------------------------------------------- through apply, against the embedded store


def text(i: int) -> str:
    return f"passage {i} on topic {i % 7}"


def build(store, judged: int, old_misses: set, new_misses: set) -> None:
    """docs_v1 (hash-a) behind alias docs: its vectors embed each passage's text, except for `old_misses`, which embed
    another passage's; `mixed` is what the new spec embeds: the text, except for `new_misses`."""
    client = QdrantClient(path=str(store))
    settings = {"name": "hash-a", "backend": PLUGIN, "options": {"size": 16}}
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "hash-a", "model_settings": settings}}}})
    count = judged + 20
    embedded = HashEmbedder(settings).embed([text(count + i if i in old_misses else i) for i in range(1, count + 1)])
    client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": embedded[i - 1].tolist()}, payload={
        "text": text(i), "mixed": text(count + i) if i in new_misses else text(i)}) for i in range(1, count + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()


SPEC = f"""version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: hash-b, backend: "{PLUGIN}", options: {{size: 16}}}}
    text_field: mixed
query: {{using: dense, model: hash-b}}
migration: {{scroll_page: 1000}}
verify:
  quality:
    judgments: judged.jsonl
    metrics: [ndcg@10, recall@5]
    max_drop: {{ndcg@10: 0.05}}
"""


@pytest.fixture()
def few(tmp_path):
    """12 judged queries: the new model finds 2 the old one misses and misses 1 the old one finds."""
    build(tmp_path / "store", 12, old_misses={2, 5}, new_misses={9})
    (tmp_path / "judged.jsonl").write_text("".join(json.dumps({"query": text(i), "relevant": [i]}) + "\n" for i in range(1, 13))
                                           + json.dumps({"query": "judged elsewhere", "relevant": [10_000]}) + "\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_too_few_queries_refuse_the_swap_as_not_enough_evidence_and_every_report_says_so(few):
    refused = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=few)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert re.search(r"quality\s+FAIL\s+against docs_v1:dense: ndcg@10 \d\.\d{3} vs \d\.\d{3}: \+0\.\d{3} \(95% CI -0\.\d{3} to \+0\.\d{3}, "
                     r"12 queries, paired bootstrap\)", refused.stdout), refused.stdout
    assert "1 of 13 judged queries left out: none of their relevant ids is in docs_v2 or docs_v1" in refused.stdout
    assert "not enough evidence: 12 queries give ±" in refused.stdout and "the alias was not moved" in refused.stderr
    status = json.loads(cli("status", "spec.yaml", "--path", "store", "--format", "json", cwd=few).stdout)
    assert status["serves"] == "docs_v1" and status["last_apply"]["status"] == "verify_failed"  # journal open, alias untouched

    report = json.loads(next((few / ".qmspec" / "reports").rglob("*.json")).read_text())
    quality = next(check for check in report["checks"] if check["name"] == "quality")
    interval = quality["figures"]["intervals"]["ndcg@10"]
    assert set(interval) >= {"difference", "ci_low", "ci_high", "confidence", "queries", "method"}
    assert interval["queries"] == 12 and interval["confidence"] == 0.95 and interval["method"] == "paired bootstrap"
    (gated,) = quality["figures"]["gates"]
    assert gated["verdict"] == NOT_ENOUGH and gated["interval"]["low"] == interval["ci_low"]
    markdown = next((few / ".qmspec" / "reports").rglob("*.md")).read_text()
    shown = f"{interval['difference']:+.3f} (95% CI {interval['ci_low']:+.3f} to {interval['ci_high']:+.3f}, 12 queries, paired bootstrap)"
    assert shown in markdown and shown in refused.stdout  # one interval, the same in text, Markdown and JSON


def test_judgments_of_points_neither_collection_holds_are_no_evidence_at_all(few):
    (few / "judged.jsonl").write_text("".join(json.dumps({"query": text(i), "relevant": [50_000 + i]}) + "\n" for i in range(1, 13)))
    refused = cli("apply", "spec.yaml", "--path", "store", "--auto-approve", cwd=few)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "no evidence: none of the 12 judged queries' relevant ids exists in docs_v2 or docs_v1" in refused.stdout


def test_validate_warns_when_the_judgments_hold_fewer_than_50_queries(few):
    warned = cli("validate", "spec.yaml", cwd=few)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "13 judged queries: decisions on fewer than 50 are unstable" in warned.stdout
