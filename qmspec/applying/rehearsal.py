"""A rehearsal's scratch copy of live state (Atlas's dev database, Liquibase's update-testing-rollback): the
collections an apply would touch, with their vector settings and metadata, a sample of their points and the aliases
serving them, copied into an embedded store that nothing else uses. Live state is only read."""
from __future__ import annotations

from qdrant_client import models

from ..logs import logger
from .qdrant_ops import aliases as alias_map
from .search import sample_ids

log = logger(__name__)


def copy_sample(live, scratch, collections: list[str], size: int, wanted_ids: set) -> dict:
    """Each of `collections` that exists live: created in `scratch` as it is (vectors, sparse vectors, metadata) with
    `size` random points and every point of `wanted_ids` it holds (the judged ones: the gates need them), and the
    aliases that serve it. Returns collection -> (points copied, points live)."""
    copied = {}
    for name in collections:
        if not live.collection_exists(name):
            continue
        info = live.get_collection(name)
        params = info.config.params
        scratch.create_collection(name, vectors_config=params.vectors, sparse_vectors_config=params.sparse_vectors,
                                  metadata=getattr(info.config, "metadata", None))
        ids = list(dict.fromkeys(sample_ids(live, name, size) + [pid for pid in wanted_ids if isinstance(pid, (int, str))]))
        points = []
        for start in range(0, len(ids), 1000):
            points += live.retrieve(name, ids[start:start + 1000], with_payload=True, with_vectors=True)
        for start in range(0, len(points), 256):
            scratch.upsert(name, [models.PointStruct(id=point.id, vector=point.vector or {}, payload=point.payload or {})
                                  for point in points[start:start + 256]])
        copied[name] = (len(points), live.count(name, exact=True).count)
        log.info(f"rehearsal: {name}: {len(points):,} of {copied[name][1]:,} points copied to the scratch store")
    operations = [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=alias))
                  for alias, target in alias_map(live).items() if target in copied]
    if operations:
        scratch.update_collection_aliases(change_aliases_operations=operations)
    return copied
