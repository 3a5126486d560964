"""Planner time against a live state of 1,000 collections and 1,000 aliases (target: under one second).

    python benchmarks/plan_large_state.py [--collections 1000] [--store]

Measures the pure planner (plan_migration) on an in-memory LiveState, and with --store also the time to read
that state from a real embedded Qdrant store (reading is I/O, reported apart from planner time).
Writes benchmarks/results/plan_large_state.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qmspec.planning.livestate import LiveCollection, LiveDenseVector, LiveState  # noqa: E402
from qmspec.planning.planner import plan_migration  # noqa: E402
from qmspec.reports.render import render_text  # noqa: E402
from qmspec.planning.spec import DenseVectorSpec, ModelSpec, SparseVectorSpec, Spec  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "plan_large_state.json"


def synthetic_state(count: int) -> LiveState:
    collections = {
        f"c{i:04d}": LiveCollection(
            name=f"c{i:04d}", vectors=(LiveDenseVector("dense", 384, "Cosine"),), points=1000 + i,
            metadata={"qmspec": {"vectors": {"dense": {"model": "minilm"}}}},
        )
        for i in range(count)
    }
    aliases = {f"a{i:04d}": f"c{i:04d}" for i in range(count)}
    return LiveState("1.20.0", embedded=False, collections=collections, aliases=aliases)


def migration_spec(alias: str) -> Spec:
    return Spec(
        file="bench.yaml", alias=alias, collection="c_new",
        vectors=(DenseVectorSpec("dense", 768, "Cosine", model=ModelSpec("mpnet", "sentence-transformers")),),
        sparse_vectors=(SparseVectorSpec("bm25", model=ModelSpec("Qdrant/bm25", "bm25")),),
        cleanup_old="delete",
    )


def time_planner(state: LiveState, repeats: int) -> dict:
    spec = migration_spec("a0500")
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan = plan_migration(spec, state)
        render_text(plan)
        timings.append(time.perf_counter() - start)
    return {"median_s": statistics.median(timings), "max_s": max(timings), "repeats": repeats, "steps": len(plan.steps)}


def time_store_read(count: int) -> dict:
    from qdrant_client import QdrantClient, models

    from qmspec.project import Target
    from qmspec.live import observe

    with tempfile.TemporaryDirectory() as folder:
        client = QdrantClient(path=folder)
        start = time.perf_counter()
        for i in range(count):
            client.create_collection(f"c{i:04d}", vectors_config={"dense": models.VectorParams(size=384, distance=models.Distance.COSINE)})
        client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=f"c{i:04d}", alias_name=f"a{i:04d}"))
            for i in range(count)])
        build = time.perf_counter() - start
        client.close()
        start = time.perf_counter()
        state = observe(Target(path=folder), focus=["c_new"], focus_aliases=["a0500"])
        read = time.perf_counter() - start
        start = time.perf_counter()
        plan_migration(migration_spec("a0500"), state)
        plan = time.perf_counter() - start
    return {"build_store_s": build, "read_live_state_s": read, "plan_s": plan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--store", action="store_true", help="also build and read a real embedded store")
    args = parser.parse_args()
    figures = {
        "benchmark": "plan_large_state",
        "collections": args.collections,
        "aliases": args.collections,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "planner": time_planner(synthetic_state(args.collections), args.repeats),
        "target_s": 1.0,
    }
    if args.store:
        figures["embedded_store"] = time_store_read(args.collections)
    figures["passed"] = figures["planner"]["max_s"] < figures["target_s"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
