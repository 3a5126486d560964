"""Re-embedding and copy throughput, and qmspec's own memory, on this machine, in one run.

    .venv/bin/python benchmarks/migration_throughput.py [--points 2000] [--model minilm|onnx] [--copy-points 20000]

Re-embedding (same texts, same loaded model):
  1. ceiling: the embedder alone over all texts (`model.encode`);
  2. qmspec: create + copy_points + embed_vectors into embedded Qdrant, through the real step functions;
  3. naive: scroll 128, encode, upsert, repeat, one stream.
Copy only (carried vectors, no model):
  ceiling: upserting the prepared points into the same store; qmspec: copy_points; naive: scroll 128 + upsert.
Memory: peak resident memory of a copy, of an embedding run (hash embedder) and of the catch-up after a copy, against
a server-like client that generates points and discards writes, at 10k and 1M points, each size in a fresh process,
with the apply's records (the baseline of what was written) in SQLite as `--state file` keeps them.
Writes benchmarks/results/migration_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import os
import random
import subprocess
import threading
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QMSPEC_PLUGINS", "tests.plugins")  # the hash embedder is a plug-in (qmspec/trust.py)

from qdrant_client import QdrantClient, models  # noqa: E402

from qmspec.applying.journal import FileStateStore, Journal  # noqa: E402
from qmspec.applying.runner import apply_plan  # noqa: E402
from qmspec.embed import get_embedder  # noqa: E402
from qmspec.planning.plan import CatchUp, Carry, CopyPoints, CreateCollection, Embedding, Plan, Prior  # noqa: E402
from qmspec.planning.record import AliasRecord  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "migration_throughput.json"
MODELS = {
    "minilm": {"name": "sentence-transformers/all-MiniLM-L6-v2", "backend": "sentence-transformers"},
    "onnx": {"name": "sentence-transformers/paraphrase-MiniLM-L3-v2", "backend": "onnx"},
}
WORDS = ("vector search index payload alias collection model embedding quantization shard replica snapshot query "
         "filter score dense sparse hybrid token batch stream upload scroll migrate verify recall latency memory disk "
         "password invoice refund account billing language multilingual matryoshka dimension distance cosine").split()


class MemoryStore:
    """The journal kept in memory (the benchmark measures moving points, not writing journals); the apply's records
    (its baseline) in SQLite files as `--state file` keeps them."""

    kind = "file"

    def __init__(self, folder: str):
        self.journals, self.files = {}, FileStateStore(Path(folder))

    def write(self, record):
        self.journals[record.alias] = json.loads(json.dumps(record.to_dict()))

    def records(self, alias: str, plan_hash: str):
        return self.files.records(alias, plan_hash)


def texts(count: int) -> list[str]:
    rng = random.Random(42)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + "." for _ in range(count)]


def make_source(client, name: str, corpus: list[str], vector_size: int) -> None:
    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=vector_size, distance=models.Distance.COSINE)})
    rng = random.Random(1)
    for start in range(0, len(corpus), 1000):
        client.upsert(name, points=[
            models.PointStruct(id=i + 1, vector={"dense": [rng.uniform(-1, 1) for _ in range(vector_size)]},
                               payload={"text": corpus[i], "n": i}) for i in range(start, min(start + 1000, len(corpus)))])


def qmspec_steps(client, steps: list, points: int, journal: Journal | None = None) -> float:
    """Run `steps` as one apply through the real runner; `journal`: go on with an apply begun before (its records)."""
    plan = Plan(alias="bench", collection=steps[0].collection if isinstance(steps[0], CreateCollection) else steps[0].target,
                spec_file="bench", spec_hash="bench", prior=Prior("", None, True, None, ()), steps=tuple(steps))
    if journal is None:
        journal = Journal(MemoryStore(tempfile.mkdtemp(prefix="qmspec-bench-")), AliasRecord("bench"))
    journal.start(plan)
    started = time.perf_counter()
    apply_plan(plan, client, journal, embedded=True)
    return time.perf_counter() - started


def create_step(name: str, size: int) -> CreateCollection:
    return CreateCollection(name, {"dense": {"size": size, "distance": "Cosine", "on_disk": False, "datatype": "float32"}},
                            {}, {}, {"hnsw": {"m": 0}}, {"qmspec": {"vectors": {}}})


def bench_embedding(model_name: str, count: int) -> dict:
    model = dict(MODELS[model_name], path=None, normalize=True, truncate_dim=None, options={})
    embedder = get_embedder(model)
    corpus = texts(count)
    embedder.embed(corpus[:64])  # warm-up: first calls allocate
    started = time.perf_counter()
    for start in range(0, count, 1000):
        vectors = embedder.embed(corpus[start:start + 1000])
    ceiling = count / (time.perf_counter() - started)
    dimension = len(vectors[0])

    with tempfile.TemporaryDirectory() as folder:
        client = QdrantClient(path=folder)
        make_source(client, "src", corpus, 8)
        embed = {"dense": Embedding(model, "text")}
        steps = [create_step("qm", dimension), CopyPoints("src", "qm", {}, embed, 128, 2, 1000, "insert_only", count)]
        qmspec_rate = count / qmspec_steps(client, steps, count)

        client.create_collection("naive", vectors_config={"dense": models.VectorParams(size=dimension, distance=models.Distance.COSINE)})
        started, offset = time.perf_counter(), None
        while True:
            page, offset = client.scroll("src", limit=128, offset=offset, with_payload=True, with_vectors=False)
            vectors = embedder.embed([p.payload["text"] for p in page])
            client.upsert("naive", points=[models.PointStruct(id=p.id, vector={"dense": v.tolist()}, payload=p.payload)
                                           for p, v in zip(page, vectors)])
            if offset is None:
                break
        naive_rate = count / (time.perf_counter() - started)
        client.close()
    return {"model": model["name"], "points": count, "ceiling_points_per_s": round(ceiling, 1),
            "qmspec_points_per_s": round(qmspec_rate, 1), "naive_points_per_s": round(naive_rate, 1),
            "qmspec_share_of_ceiling": round(qmspec_rate / ceiling, 3), "qmspec_vs_naive": round(qmspec_rate / naive_rate, 2)}


def bench_copy(count: int, size: int = 384) -> dict:
    corpus = texts(count)
    with tempfile.TemporaryDirectory() as folder:
        client = QdrantClient(path=folder)
        make_source(client, "src", corpus, size)
        prepared = [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload)
                    for p in client.scroll("src", limit=count, with_payload=True, with_vectors=True)[0]]
        client.create_collection("ingest", vectors_config={"dense": models.VectorParams(size=size, distance=models.Distance.COSINE)})
        started = time.perf_counter()
        for start in range(0, count, 128):
            client.upsert("ingest", points=prepared[start:start + 128])
        ceiling = count / (time.perf_counter() - started)
        del prepared

        steps = [create_step("qm", size), CopyPoints("src", "qm", {"dense": Carry("dense")}, {}, 128,
                                                     2, 1000, "insert_only", count)]
        qmspec_rate = count / qmspec_steps(client, steps, count)

        client.create_collection("naive", vectors_config={"dense": models.VectorParams(size=size, distance=models.Distance.COSINE)})
        started, offset = time.perf_counter(), None
        while True:
            page, offset = client.scroll("src", limit=128, offset=offset, with_payload=True, with_vectors=True)
            client.upsert("naive", points=[models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in page])
            if offset is None:
                break
        naive_rate = count / (time.perf_counter() - started)
        client.close()
    return {"points": count, "vector_size": size, "ceiling_points_per_s": round(ceiling, 1),
            "qmspec_points_per_s": round(qmspec_rate, 1), "naive_points_per_s": round(naive_rate, 1),
            "qmspec_share_of_ceiling": round(qmspec_rate / ceiling, 3), "qmspec_vs_naive": round(qmspec_rate / naive_rate, 2)}


# ---------------------------------------------------------------- memory, against a server-like client


class ServerLikeClient:
    """Answers like a remote Qdrant whose memory is elsewhere: every point is generated from its id on demand (the
    target holds what a copy would have written), writes are counted and dropped. What grows in this process is
    qmspec's own memory."""

    def __init__(self, points: int, size: int):
        self.points, self.size, self.received = points, size, 0

    def collection_exists(self, name):
        return name != "qm" or self.received > 0

    def create_collection(self, *args, **kwargs):
        return True

    def get_collection(self, name):
        vectors = {"dense": SimpleNamespace(distance=models.Distance.COSINE, size=self.size)}
        return SimpleNamespace(config=SimpleNamespace(params=SimpleNamespace(vectors=vectors, sparse_vectors={}), metadata={}))

    def _point(self, point_id: int, with_vectors) -> SimpleNamespace:
        rng = random.Random(point_id)
        vector = {"dense": [rng.random() for _ in range(self.size)]} if with_vectors else None
        return SimpleNamespace(id=point_id, payload={"text": f"passage {point_id} " + " ".join(rng.choice(WORDS) for _ in range(40))},
                               vector=vector)

    def scroll(self, name, limit, offset=None, with_payload=True, with_vectors=False, **kwargs):
        start = offset or 1
        page = [self._point(i, with_vectors) for i in range(start, min(start + limit, self.points + 1))]
        following = start + limit
        return page, (following if following <= self.points else None)

    def retrieve(self, name, ids, with_payload=True, with_vectors=False, **kwargs):
        return [self._point(i, with_vectors) for i in ids if 1 <= i <= self.points]

    def upsert(self, name, points, **kwargs):
        self.received += len(points)

    def update_vectors(self, name, points, **kwargs):
        self.received += len(points)

    def delete(self, *args, **kwargs):
        pass


def memory_run(kind: str, points: int) -> None:
    """In a fresh process: the RSS growth of one copy, embedding or catch-up run against the server-like client."""
    client = ServerLikeClient(points, 384)
    model = {"name": "hash", "backend": "tests.plugins.hash_embedder:HashEmbedder", "path": None, "normalize": True,
             "truncate_dim": None, "options": {"size": 384}}
    sys.path.insert(0, str(ROOT))
    get_embedder(model)
    carry = {"dense": Carry("dense")} if kind != "embed" else {}
    embed = {"dense": Embedding(model, "text")} if kind == "embed" else {}
    steps = [create_step("qm", 384), CopyPoints("src", "qm", carry, embed, 128, 2, 1000, "insert_only", points)]
    sampler = RssSampler()
    if kind == "catch_up":  # the copy first, then the catch-up over what it recorded: measured while the catch-up runs
        from qmspec.applying import steps as executors

        catch_up = executors.execute.functions[CatchUp]

        def measured(step, run):
            sampler.before = sampler.current()
            with sampler:
                return catch_up(step, run)

        executors.execute.functions[CatchUp] = measured
        qmspec_steps(client, steps + [CatchUp("src", "qm", carry, embed, 128, 1000)], points)
        before = sampler.before
    else:
        before = sampler.current()
        with sampler:
            qmspec_steps(client, steps, points)
        assert client.received == points, (client.received, points)
    print(json.dumps({"kind": kind, "points": points, "rss_before_mib": round(before, 1),
                      "rss_peak_mib": round(sampler.peak, 1), "qmspec_growth_mib": round(sampler.peak - before, 1)}))


class RssSampler:
    """Current resident memory, sampled every 5 ms while running (ru_maxrss is a lifetime high-water mark, which
    import-time peaks would hide)."""

    def __init__(self):
        self.page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.peak = 0.0
        self.running = False

    def current(self) -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page_mib

    def _watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.current())
            time.sleep(0.005)

    def __enter__(self):
        self.running, self.peak = True, self.current()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.current())


def bench_memory(sizes: tuple[int, int]) -> dict:
    figures = {}
    for kind in ("copy", "embed", "catch_up"):
        runs = []
        for points in sizes:
            output = subprocess.run([sys.executable, __file__, "--memory-run", kind, str(points)], capture_output=True,
                                    text=True, check=True, cwd=ROOT).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), file=sys.stderr)
        small, large = runs
        figures[kind] = {"runs": runs, "peak_ratio": round(large["rss_peak_mib"] / small["rss_peak_mib"], 3),
                         "growth_mib_large_minus_small": round(large["qmspec_growth_mib"] - small["qmspec_growth_mib"], 1)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--model", choices=sorted(MODELS), default="minilm")
    parser.add_argument("--copy-points", type=int, default=20000)
    parser.add_argument("--memory-points", type=int, nargs=2, default=(10_000, 1_000_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--only-memory", action="store_true", help="Measure memory only and keep the other figures of the last run.")
    parser.add_argument("--memory-run", nargs=2, metavar=("KIND", "POINTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.memory_run[0], int(args.memory_run[1]))
        return
    if args.only_memory:
        figures = json.loads(RESULTS.read_text(encoding="utf-8"))
        figures["memory"] = bench_memory(tuple(args.memory_points))
        figures["targets"]["memory_peak_ratio_within"] = 1.2
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(figures["memory"], indent=2))
        return
    figures = {
        "benchmark": "migration_throughput",
        "machine": {"python": platform.python_version(), "cpu": platform.machine(), "cores": os.cpu_count()},
        "embedding": bench_embedding(args.model, args.points),
        "copy_only": bench_copy(args.copy_points),
        "memory": bench_memory(tuple(args.memory_points)),
        "targets": {"embedding_share_of_ceiling": 0.9, "copy_share_of_ceiling": 0.8, "memory_peak_ratio_within": 1.2},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
