"""A vector added to a live collection and filled while the application keeps writing: the current guide's in-place
path (Qdrant 1.18+ with named vectors). Nothing here may leave a point without the new vector, with a vector of a text
it no longer has, or bring back a point the application deleted.

Each write is conditional on the text the vector was embedded from: `update_vectors` with an `update_filter` that
matches each point of the batch by its id and that text. Qdrant checks the condition where the write lands, so a
point whose text changed after it was read keeps what it had. Why the text itself rather than a content hash or a
re-check: a hash would have to live in the application's payloads and be kept current by the application; a re-check
(write, then read the text back) still leaves the moment between the read and the write. Where strict mode refuses
filtered updates on unindexed fields (`unindexed_filtering_update: false`) the condition cannot be sent: there the
writes go unconditionally, and the texts are read back and compared, which the ledger then closes (said in the log).

The ledger (`Records.ledger`) holds, per point, the hash of the text its new vector was embedded from, recorded after
each write, where the journal is (a file, or the state collection so that every CI runner shares it). A catch-up
streams the collection's texts a page at a time against it and embeds the points whose text moved on (edited with
set_payload), then the points Qdrant says lack the vector (`has_vector`): inserted by the application with only the
old vectors, re-written by an upsert that carried only those, or a named-vector write Qdrant dropped (qdrant#9521).
`update_vectors` changes only points that exist, so a point deleted meanwhile stays deleted: a batch naming one is
sent again without it.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from qdrant_client import models

from ..embed import get_embedder
from ..errors import QdrantAccessError
from ..logs import logger
from ..planning.livestate import METADATA_KEY, query_vectors
from .points import embed_points
from .records import TextHash, short
from .transfer import batches

log = logger(__name__)

CATCH_UP_ROUNDS = 3  # passes over the points lacking the vector: the application may insert while one runs
STRICT_REFUSAL = "Index required but not found"  # Qdrant's answer to a filter on an unindexed field under strict mode


def text_hash(text: str) -> TextHash:
    return TextHash(short(hashlib.sha256(text.encode("utf-8")).hexdigest()))


@dataclass(frozen=True)
class FilledPage:
    """New vectors for a page of points, and the text each was embedded from: what the write is conditional on."""

    rows: list  # PointVectors
    texts: list  # str, one per row

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class VectorFill:
    """How one vector of a live collection is filled: embedded from a payload field, written conditionally in batches.
    Picklable, so a worker process or a Ray task fills its partition exactly as the driver would."""

    collection: str
    vector: str
    model: dict
    text_field: str
    sparse: bool
    batch_size: int
    conditional: bool = True  # False where strict mode refuses filtered updates on unindexed fields
    max_conditions: int | None = None  # strict mode's filter_max_conditions

    @property
    def selector(self) -> models.PayloadSelectorInclude:
        return models.PayloadSelectorInclude(include=[self.text_field])

    def __call__(self, page: list) -> FilledPage:
        """Records with their text -> the vectors embedded from it (MissingText where a point has none)."""
        rows = embed_points(get_embedder(self.model), page, self.vector, self.text_field, self.sparse)
        return FilledPage(rows, [point.payload[self.text_field] for point in page])

    def write(self, client, filled: FilledPage, ledger) -> None:
        """Write the new vectors, each only where the point still has the text it was embedded from, then record those
        texts in the ledger (after the write: a crash in between leaves points the next catch-up embeds again)."""
        size = self.batch_size if not self.max_conditions else max(1, min(self.batch_size, self.max_conditions // 2))
        fill = self
        for chunk in batches(list(zip(filled.rows, filled.texts)), size):
            try:
                fill._send(client, chunk)
            except QdrantAccessError as refused:
                if not (fill.conditional and STRICT_REFUSAL in str(refused)):
                    raise
                log.info(f"      strict mode of {self.collection} refuses the condition on {self.text_field!r} ({refused}): writing "
                         "unconditionally and reading the texts back instead")
                fill = dataclasses.replace(fill, conditional=False)
                fill._send(client, chunk)
        embedded_from = dict(zip((row.id for row in filled.rows), filled.texts))
        if not fill.conditional:
            embedded_from |= fill._recheck(client, filled)
        ledger.record([(point_id, text_hash(text)) for point_id, text in embedded_from.items()])

    def _send(self, client, chunk: list) -> None:
        condition = models.Filter(should=[models.Filter(must=[
            models.HasIdCondition(has_id=[row.id]),
            models.FieldCondition(key=self.text_field, match=models.MatchValue(value=text))]) for row, text in chunk]) if self.conditional else None
        rows = [row for row, _ in chunk]
        try:
            client.update_vectors(self.collection, points=rows, update_filter=condition, wait=True)
        except (KeyError, QdrantAccessError):  # the embedded store raises KeyError for a missing id, a server answers 404
            existing = {point.id for point in client.retrieve(self.collection, [row.id for row in rows], with_payload=False)}
            if len(existing) == len(rows):
                raise
            kept = [(row, text) for row, text in chunk if row.id in existing]
            log.debug(f"      {len(rows) - len(kept)} point(s) were deleted meanwhile: written without them")
            if kept:
                self._send(client, kept)

    def _recheck(self, client, filled: FilledPage) -> dict:
        """Without the condition: read back the texts just written over and embed again any that changed meanwhile;
        returns the texts those were embedded from at last (a text still moving is left to the ledger's next catch-up)."""
        embedded_from = {}
        for _ in range(CATCH_UP_ROUNDS):
            now = {point.id: (point.payload or {}).get(self.text_field)
                   for point in client.retrieve(self.collection, [row.id for row in filled.rows], with_payload=self.selector)}
            moved = [models.Record(id=row.id, payload={self.text_field: now[row.id]}) for row, text in zip(filled.rows, filled.texts)
                     if row.id in now and now[row.id] != text]
            if not moved:
                break
            filled = self(moved)
            for chunk in batches(filled.rows, self.batch_size):
                client.update_vectors(self.collection, points=chunk, wait=True)
            embedded_from |= dict(zip((row.id for row in filled.rows), filled.texts))
        return embedded_from


def fill_for(client, collection: str, vector: str, model: dict, text_field: str, sparse: bool, batch_size: int) -> VectorFill:
    """The fill of `vector`, conditional unless the collection's strict mode refuses filtered updates on an unindexed
    text field."""
    info = client.get_collection(collection)
    strict = getattr(info.config, "strict_mode_config", None)
    index = (info.payload_schema or {}).get(text_field)
    keyword = index is not None and getattr(index.data_type, "value", index.data_type) == "keyword"  # what serves an exact match
    conditional = not (strict and strict.enabled and strict.unindexed_filtering_update is False and not keyword)
    if not conditional:
        log.info(f"      strict mode of {collection} refuses filtered updates on the unindexed field {text_field!r}: writing "
                 "unconditionally and reading the texts back instead")
    limit = getattr(strict, "filter_max_conditions", None) if strict and strict.enabled else None
    return VectorFill(collection, vector, model, text_field, sparse, batch_size, conditional, limit)


@dataclass
class VectorCatchUp:
    """What one catch-up did: points re-embedded because their text moved on, points that lacked the vector, passes."""

    stale: int = 0
    missing: int = 0
    rounds: int = 0

    def as_dict(self) -> dict:
        return {"stale": self.stale, "missing": self.missing, "rounds": self.rounds}


def catch_up_vector(client, fill: VectorFill, ledger, page_size: int) -> VectorCatchUp:
    """Embed, conditionally, the points whose text changed since their vector was embedded (ledger) and those lacking
    the vector (has_vector), streamed a page at a time."""
    done = VectorCatchUp()
    if not ledger.exists:
        log.info(f"      no ledger of {fill.vector} in {getattr(ledger, 'path', 'the state collection')}: every point's "
                 "vector is embedded again, so that none is left of an old text (--state qdrant shares the ledger between runners)")
    offset, having = None, models.Filter(must=[models.HasVectorCondition(has_vector=fill.vector)])
    while True:
        page, offset = client.scroll(fill.collection, scroll_filter=having, limit=page_size, offset=offset, with_payload=fill.selector,
                                     with_vectors=False)
        known = ledger.lookup([point.id for point in page])
        moved = [point for point in page if known.get(point.id) != text_hash(_text(point, fill.text_field))]
        if moved:
            fill.write(client, fill(moved), ledger)
            done.stale += len(moved)
        if offset is None or not page:
            break
    lacking = models.Filter(must_not=[models.HasVectorCondition(has_vector=fill.vector)])
    for _ in range(CATCH_UP_ROUNDS):
        done.rounds += 1
        found, offset = 0, None
        while True:
            page, offset = client.scroll(fill.collection, scroll_filter=lacking, limit=page_size, offset=offset, with_payload=fill.selector,
                                         with_vectors=False)
            if page:
                fill.write(client, fill(page), ledger)
                found += len(page)
            if offset is None or not page:
                break
        done.missing += found
        if not found:
            break
    return done


def _text(point, field: str) -> str:
    value = (point.payload or {}).get(field)
    return value if isinstance(value, str) else ""  # a point without text is embedded, and MissingText names it


def lacking(client, collection: str, vector: str) -> int:
    return client.count(collection, count_filter=models.Filter(must_not=[models.HasVectorCondition(has_vector=vector)]), exact=True).count


def stale(client, collection: str, vector: str, text_field: str, ledger, page_size: int) -> tuple[int, int, list]:
    """(points compared, points whose vector was embedded from another text than the one they hold, a few of their
    ids), streamed against the ledger: verify's freshness check."""
    compared, moved, shown, offset = 0, 0, [], None
    selector = models.PayloadSelectorInclude(include=[text_field])
    having = models.Filter(must=[models.HasVectorCondition(has_vector=vector)])
    while True:
        page, offset = client.scroll(collection, scroll_filter=having, limit=page_size, offset=offset, with_payload=selector, with_vectors=False)
        known = ledger.lookup([point.id for point in page])
        for point in page:
            compared += 1
            if known.get(point.id) != text_hash(_text(point, text_field)):
                moved += 1
                if len(shown) < 5:
                    shown.append(point.id)
        if offset is None or not page:
            return compared, moved, shown


# ---------------------------------------------------------------- what the collection's metadata records


def switched(record: dict, query: dict, model: str | None, at: str) -> dict:
    """qmspec's metadata record once the application runs `query`: the vectors the query before used and this one does
    not are released at `at` (their observation window starts), those it starts using are no longer backfilled."""
    before, after = query_vectors(record.get("query")), query_vectors(query)
    released = {name: since for name, since in (record.get("released") or {}).items() if name not in after}
    released |= {name: at for name in before - after}
    backfill = {name: how for name, how in (record.get("backfill") or {}).items() if name not in after}
    changed = {key: value for key, value in record.items() if key not in ("query_model", "released", "backfill")}
    return changed | {"query": query, "query_since": at} | ({"query_model": model} if model else {}) | (
        {"released": released} if released else {}) | ({"backfill": backfill} if backfill else {})


def dropped(record: dict, vector: str, at: str) -> dict:
    """qmspec's metadata record once `vector` is deleted in place: forgotten, and remembered as deleted (Qdrant 1.18
    must not re-create the name, qdrant#9317)."""
    kept = {key: value for key, value in record.items() if key not in ("vectors", "released", "backfill", "deleted")}
    for key in ("vectors", "released", "backfill"):
        rest = {name: value for name, value in (record.get(key) or {}).items() if name != vector}
        if rest:
            kept[key] = rest
    return kept | {"deleted": (record.get("deleted") or {}) | {vector: at}}


def qmspec_record(client, collection: str) -> dict:
    return dict((client.get_collection(collection).config.metadata or {}).get(METADATA_KEY) or {})
