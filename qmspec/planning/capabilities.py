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

