"""The quality gate's cost at 1,000 judged queries, phase by phase, through the functions verify runs.

    .venv/bin/python benchmarks/quality_gates.py [--queries 1000] [--resamples 10000]

Two collections of the same passages in embedded Qdrant, one embedded with all-MiniLM-L6-v2, one with
paraphrase-MiniLM-L3-v2 (ONNX), both shipped in PyPI packages; one judged query per passage (a paraphrase of what it
answers). Then what `verify.quality` does with them: embed the queries and search each side in batches (rank), score
every query with ir-measures (evaluate), and decide the gates on paired bootstrap intervals of 10,000 resamples
(gates, then the report's intervals of the metrics no gate read). Loading the passages is set-up, not timed. Writes benchmarks/results/quality_gates.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qdrant_client import QdrantClient, models  # noqa: E402

from qmspec.applying import evidence  # noqa: E402
from qmspec.applying.quality import Retriever, evaluate, gates, rank  # noqa: E402
from qmspec.applying.verify import intervals  # noqa: E402
from qmspec.embed import get_embedder  # noqa: E402
from qmspec.planning.judgments import Judgments  # noqa: E402
from qmspec.planning.plan import QualityGates  # noqa: E402

MODELS = {"minilm": {"name": "sentence-transformers/all-MiniLM-L6-v2", "backend": "sentence-transformers"},
          "l3": {"name": "sentence-transformers/paraphrase-MiniLM-L3-v2", "backend": "onnx"}}
ASPECTS = {  # what a passage says, and a question it answers in other words
    "price": ("The {p} {c} costs ${n} and ships free.", "how much is the {p}"),
    "refund": ("Send the {p} {c} back within {n} days for your money.", "can I return my {p}"),
    "battery": ("On a full charge the {p} {c} runs for about {n} hours.", "how long does the {p} last between charges"),
    "reset": ("Hold the button on the {p} {c} for {n} seconds to restore factory settings.", "how do I wipe my {p}"),
    "warranty": ("Defects in the {p} {c} are repaired for free for {n} months.", "is the {p} covered if it breaks"),
    "noise": ("A buzzing {p} {c} usually stands unevenly; level it within {n} mm.", "my {p} makes a strange sound"),
    "update": ("New firmware for the {p} {c} installs by itself every {n} days.", "does the {p} get software updates"),
    "clean": ("Wipe the {p} {c} with a dry cloth; never use more than {n} ml of water.", "what can I clean the {p} with"),
}
CATEGORIES = ["router", "robot vacuum", "thermostat", "camera", "fitness tracker", "standing desk", "e-reader", "espresso machine",
              "smart lock", "projector", "drone", "heater", "monitor", "keyboard", "scooter", "speaker"]


def corpus(size: int, seed: int = 7) -> tuple[list[str], dict, dict]:
    """`size` passages (products x aspects), and per passage one judged query: (texts, queries, relevant)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ra", "ve", "to", "su", "ne", "di", "qua", "zo", "fen", "bar", "tel", "gri", "mo"]
    texts, queries, relevant = [], {}, {}
    names: set = set()
    while len(texts) < size:
        name = "".join(rng.choice(syllables) for _ in range(3)).capitalize()
        if name in names:
            continue
        names.add(name)
        category = rng.choice(CATEGORIES)
        for aspect, (passage, question) in ASPECTS.items():
            if len(texts) == size:
                break
            point = len(texts) + 1
            texts.append(passage.format(p=name, c=category, n=rng.randint(2, 90)))
            queries[f"q{point}"], relevant[f"q{point}"] = question.format(p=name), {point: 1}
    return texts, queries, relevant


def load(client, name: str, settings: dict, texts: list[str]) -> None:
    embedder = get_embedder(settings)
    vectors = embedder.embed(texts)
    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=len(vectors[0]), distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": settings["name"], "model_settings": settings}}}})
    client.upload_points(name, [models.PointStruct(id=i, vector={"dense": list(map(float, vector))}, payload={"text": text})
                                for i, (vector, text) in enumerate(zip(vectors, texts), 1)], batch_size=512)


def timed(timings: dict, phase: str, work):
    started = time.perf_counter()
    result = work()
    timings[phase] = round(time.perf_counter() - started, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=evidence.RESAMPLES)
    args = parser.parse_args()
    evidence.RESAMPLES = args.resamples
    texts, queries, relevant = corpus(args.queries)
    judgments = Judgments(queries, relevant)
    metrics = ["ndcg@10", "mrr@10", "recall@3"]
    check = QualityGates(judgments=(), fingerprint="", metrics=tuple(metrics), depth=10, minimum={},
                         max_drop={"ndcg@10": 0.02, "recall@3": 0.05}, query={"using": "dense"}, current=None)
    timings: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        client = QdrantClient(path=folder)
        timed(timings, "set-up: import scipy.stats (once a process)", lambda: __import__("scipy.stats"))
        for side, settings in MODELS.items():
            timed(timings, f"set-up: load {side}", lambda: load(client, side, settings, texts))
        rankings = {side: timed(timings, f"rank {side} (embed queries, batched search)", lambda: rank(client, Retriever(side, {"using": "dense"}),
                                                                                                     queries, 10))
                    for side in MODELS}
        scored = {side: timed(timings, f"evaluate {side} (ir-measures)", lambda: evaluate(judgments, rankings[side], metrics))
                  for side in MODELS}
        new, current = scored["l3"][1], scored["minilm"][1]
        spreads = evidence.Evidence(new, current)
        found = timed(timings, "gates (paired bootstrap per gated metric)", lambda: gates(check, spreads))
        figures = timed(timings, "intervals of the other metrics (report)", lambda: intervals(metrics, spreads))
        client.close()
    bootstrap = timings["gates (paired bootstrap per gated metric)"] + timings["intervals of the other metrics (report)"]
    gate_total = sum(value for phase, value in timings.items() if not phase.startswith("set-up"))
    result = {"queries": len(queries), "resamples": args.resamples, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "timings_s": timings, "bootstrap_s": round(bootstrap, 3), "gate_total_s": round(gate_total, 3),
              "gates": [gate.describe() for gate in found],
              "intervals": {metric: {key: round(value, 4) if isinstance(value, float) else value for key, value in entry.items()}
                            for metric, entry in figures.items()}}
    for phase, seconds in timings.items():
        print(f"{phase:52} {seconds:8.3f} s")
    print(f"{'bootstrap, all intervals (' + str(args.resamples) + ' resamples)':52} {bootstrap:8.3f} s")
    print(f"{'the gate, set-up excluded':52} {gate_total:8.3f} s")
    for gate in found:
        print(f"  {gate.describe()}")
    out = ROOT / "benchmarks" / "results" / "quality_gates.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
