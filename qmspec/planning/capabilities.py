"""Which Qdrant server versions can do what. Pure: the planner asks, nothing here talks to Qdrant."""
from __future__ import annotations

import re

# feature -> first server version that has it
SINCE = {
    "collection_metadata": (1, 16, 0),
    "update_mode": (1, 17, 0),  # upsert(update_mode=insert_only)
    "create_vector_name": (1, 18, 0),  # add/delete a named vector of an existing collection
    "vector_name_reuse_safe": (1, 19, 0),  # on 1.18, delete + re-create of one name could resurrect old data
}

def parse_version(text: str | None) -> tuple[int, int, int] | None:
    if not text:
        return None
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def supports(server_version: str | None, feature: str) -> bool:
    """Unknown versions are assumed current: refusing everything on a server that hides its version helps nobody,
    and the applier still reports the server's own error if we guessed wrong."""
    version = parse_version(server_version)
    return version is None or version >= SINCE[feature]



# The embedded store (qdrant-client local mode) keeps points, vectors, aliases and metadata, but neither applies nor
# reports these: it builds no HNSW graph, quantizes nothing, has one shard and no payload index. Plans, verify and
# drift say "not applicable on the embedded store" for them instead of planning a step that cannot take effect.
NOT_ON_EMBEDDED = frozenset({
    "hnsw", "optimizers", "quantization", "strict_mode", "wal", "on_disk_payload", "replication_factor",
    "write_consistency_factor", "shard_number", "sharding_method", "shard_keys", "payload_indexes",
})
VECTOR_NOT_ON_EMBEDDED = frozenset({"hnsw", "quantization"})
NOT_APPLICABLE_EMBEDDED = "not applicable on the embedded store"


def applies(setting: str, embedded: bool, vector: bool = False) -> bool:
    """Whether the connected store applies `setting` (a collection setting, or a vector's with vector=True)."""
    return not embedded or setting not in (VECTOR_NOT_ON_EMBEDDED if vector else NOT_ON_EMBEDDED)
