"""The openai backend against a local OpenAI-compatible server whose every answer takes a fixed latency (what an API
or a GPU embedding service looks like from here): texts per second with N requests in flight, against the ideal
concurrency x batch / latency, and against a sequential client (one request at a time, as a plain loop sends them).
The server runs in its own process (tests/embedding_server.py), so it does not share this interpreter's lock.

    .venv/bin/python benchmarks/http_backend.py [--latency 0.2] [--batch 64] [--texts 2560]

Writes benchmarks/results/http_backend.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qmspec.embed.api import OpenAICompatibleEmbedder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "http_backend.json"


def texts_per_second(base_url: str, texts: list[str], batch: int, concurrency: int, encoding: str) -> float:
    embedder = OpenAICompatibleEmbedder({"name": "bench", "backend": "openai", "options": {
        "base_url": base_url, "batch_size": batch, "concurrency": concurrency, "max_batch_tokens": 10**9,
        "encoding_format": encoding}})
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per request")
    parser.add_argument("--batch", type=int, default=64, help="texts per request")
    parser.add_argument("--texts", type=int, default=2560)
    args = parser.parse_args()
    texts = [f"passage {i} about vector search, aliases and quantization" for i in range(args.texts)]
    rows = []
    server = subprocess.Popen([sys.executable, "-m", "tests.embedding_server", "--latency", str(args.latency)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        sequential = texts_per_second(base_url, texts[: args.batch * 5], args.batch, 1, "float")
        for encoding in ("base64", "float"):
            for concurrency in (1, 2, 4, 8):
                measured = texts_per_second(base_url, texts, args.batch, concurrency, encoding)
                ideal = concurrency * args.batch / args.latency
                rows.append({"encoding_format": encoding, "concurrency": concurrency, "texts_per_s": round(measured, 1),
                             "ideal_texts_per_s": round(ideal, 1), "share_of_ideal": round(measured / ideal, 3),
                             "vs_sequential": round(measured / sequential, 2)})
    finally:
        server.kill()
    figures = {"machine": f"{platform.machine()}, {platform.python_version()}", "latency_s": args.latency, "batch": args.batch,
               "texts": args.texts, "sequential_texts_per_s": round(sequential, 1), "runs": rows}
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
