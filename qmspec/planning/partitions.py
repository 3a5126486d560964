"""Disjoint, ordered id ranges that split a collection for parallel copying, as Qdrant's migration tool splits its
source: boundaries are taken from a sample of ids, so ranges hold about as many points each whatever the ids look
like. Pure: the sample comes from the applier.

Qdrant scrolls ids in one order: integer ids ascending, then UUIDs ascending. A range [start, end) is scrolled from
`start` until the first id at or past `end`; None is the open start or end. Every id falls in exactly one range.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

AUTO_POINTS_PER_PARTITION = 250_000
MAX_PARTITIONS = 256


def id_order(point_id) -> tuple:
    """The order Qdrant scrolls ids in: integers first, then UUIDs (by their 128-bit value)."""
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(str(point_id)).int)


@dataclass(frozen=True)
class IdRange:
    start: int | str | None  # first id, inclusive; None: from the first point
    end: int | str | None  # first id of the next range, exclusive; None: to the last point

    def holds(self, point_id) -> bool:
        key = id_order(point_id)
        return (self.start is None or key >= id_order(self.start)) and (self.end is None or key < id_order(self.end))

    def past_end(self, point_id) -> bool:
        return self.end is not None and id_order(point_id) >= id_order(self.end)


def partition_count(setting: int | str, points: int) -> int:
    """`migration.partitions`: a number, or auto (one per 250k points, at least 1, at most 256)."""
    if setting == "auto":
        return max(1, min(MAX_PARTITIONS, math.ceil(points / AUTO_POINTS_PER_PARTITION)))
    return max(1, int(setting))


def id_ranges(sample: list, count: int) -> list[IdRange]:
    """`count` ranges (fewer where the sample has fewer distinct ids) cut at evenly spaced ids of the sorted sample."""
    ordered = sorted(set(sample), key=id_order)
    if count <= 1 or len(ordered) < 2:
        return [IdRange(None, None)]
    cuts = []
    for index in range(1, count):
        cut = ordered[index * len(ordered) // count]
        if not cuts or id_order(cut) > id_order(cuts[-1]):
            cuts.append(cut)
    bounds = [None, *cuts, None]
    return [IdRange(start, end) for start, end in zip(bounds, bounds[1:])]
