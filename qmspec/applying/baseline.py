"""What qmspec wrote into the new collection, point by point: the payload hash of each point it copied. It is what
tells a change in the old collection (the source moved on since qmspec wrote the point: carry it over) from the
application's own write to the new collection (the new collection moved on: never overwrite or delete it).

Kept beside the journal in `.qmspec/baselines/`, appended after every page written, so a resumed copy re-records
the pages it sends again; compacted when a catch-up ends."""
from __future__ import annotations

import json
from pathlib import Path

from .journal import write_atomically
from .transfer import payload_hash

BASELINE_DIR = ".qmspec/baselines"


class Baseline:
    def __init__(self, path: Path):
        self.path = path
        self.known = path.exists()  # an apply begun by an older qmspec recorded nothing: the source wins
        self.hashes: dict = {}
        if self.known:
            for line in path.read_text(encoding="utf-8").splitlines():
                self.hashes.update((point_id, digest) for point_id, digest in json.loads(line))

    @classmethod
    def of(cls, alias: str, plan_hash: str) -> Baseline:
        return cls(Path(BASELINE_DIR) / f"{alias}-{plan_hash}.jsonl")

    def get(self, point_id):
        return self.hashes.get(point_id)

    def record(self, points: list) -> None:
        """After these points were written: their payloads as qmspec wrote them."""
        self.record_hashes([[point.id, payload_hash(point.payload)] for point in points])

    def record_hashes(self, pairs: list) -> None:
        """(id, payload hash) pairs a worker wrote."""
        self.hashes.update((point_id, digest) for point_id, digest in pairs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(pairs) + "\n")
        self.known = True

    def forget(self, point_ids: list) -> None:
        for point_id in point_ids:
            self.hashes.pop(point_id, None)

    def compact(self) -> None:
        write_atomically(self.path, json.dumps([[point_id, digest] for point_id, digest in self.hashes.items()]) + "\n")
        self.known = True
