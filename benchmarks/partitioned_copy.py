"""A re-embedding copy split into partitions, run by 1, 2, 4 and 8 workers, as local processes and on Ray, against the
embedded store (where the driver reads and writes and the workers embed). The embedder has a fixed latency per batch
of 64 texts (benchmarks/fixed_latency.py): what a GPU service or an API looks like from the driver.

    .venv/bin/python benchmarks/partitioned_copy.py [--points 100000] [--latency 0.02] [--workers 1 2 4 8]

Reports points per second of the copy step (its own progress line) and the speed-up over one worker, next to the
store's ingest ceiling (the same copy with no embedding latency). Writes benchmarks/results/partitioned_copy.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "partitioned_copy.json"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QMSPEC_PLUGINS", "tests.plugins")  # the hash embedder is a plug-in (qmspec/trust.py)

from qdrant_client import QdrantClient, models  # noqa: E402

BACKEND = "benchmarks.fixed_latency:FixedLatencyEmbedder"
SPEC = """version: 1
alias: docs
collection: docs_v2
vectors:
  dense:
    size: 16
    distance: Cosine
    model: {{name: fixed, backend: "{backend}", options: {{size: 16, latency: {latency}, batch: 64}}}}
query: {{using: dense, model: fixed}}
migration: {{batch_size: 256, scroll_page: 1024, partitions: 8}}
verify: {{payloads: {{mode: sample, sample_size: 100}}}}
"""


def build_source(path: Path, points: int) -> None:
    client = QdrantClient(path=str(path))
    settings = {"name": "old", "backend": BACKEND, "options": {"size": 16, "latency": 0}}
    client.create_collection("docs_v1", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)},
                             metadata={"qmspec": {"vectors": {"dense": {"model": "old", "model_settings": settings}}}})
    for start in range(0, points, 5000):
        client.upsert("docs_v1", points=[models.PointStruct(id=i, vector={"dense": [1.0] * 16}, payload={"text": f"passage {i}"})
                                         for i in range(start + 1, min(points, start + 5000) + 1)])
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs"))])
    client.close()


def copy_rate(source: Path, latency: float, engine: str, workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(source, Path(folder) / "store")
        (Path(folder) / "spec.yaml").write_text(SPEC.format(backend=BACKEND, latency=latency))
        result = subprocess.run([sys.executable, "-m", "qmspec", "apply", "spec.yaml", "--path", "store", "--auto-approve", "--no-preflight",
                                 "--workers", str(workers), "--engine", engine], cwd=folder, capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        rates = re.findall(r"copy docs_v1 -> docs_v2: [\d,]+/[\d,]+ points, ([\d,]+) points/s", result.stdout)
        return float(rates[-1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per batch of 64 texts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--engines", nargs="+", default=["local", "ray"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source"
        build_source(source, args.points)
        ceiling = copy_rate(source, 0.0, "local", 1)
        print(f"store ingest ceiling (no embedding latency, one process): {ceiling:,.0f} points/s", flush=True)
        runs = []
        for engine in args.engines:
            for workers in args.workers:
                rate = copy_rate(source, args.latency, engine, workers)
                runs.append({"engine": engine, "workers": workers, "points_per_s": rate})
                one = next(r["points_per_s"] for r in runs if r["engine"] == engine and r["workers"] == args.workers[0])
                print(f"{engine:5} {workers} worker(s): {rate:,.0f} points/s, {rate / one:.2f}x one worker "
                      f"(ideal {workers / args.workers[0]:.0f}x; embedding alone allows {workers * 64 / args.latency:,.0f} points/s)", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"points": args.points, "latency_per_64": args.latency, "ingest_ceiling": ceiling, "runs": runs,
                                   "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, indent=2) + "\n")


if __name__ == "__main__":
    main()
