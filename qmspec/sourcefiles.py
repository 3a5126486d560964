"""Points from JSON Lines source files (`source.files`): counted when planning, checked before anything is written,
read page by page when loading and again when verifying. One record per line, with its id in `source.id_field`.

Input is bounded: a record (one line) of more than `MAX_RECORD_BYTES` (8 MiB: a point that large is a document
to split into chunks, and near Qdrant's request limit) or nested deeper than JSON parsing allows is refused naming
its file and line, as is text that is not UTF-8; no line is read whole before its size is known."""
from __future__ import annotations

import json
import os
import uuid
from typing import Iterator

from .errors import QmspecError

MAX_RECORD_BYTES = int(os.environ.get("QMSPEC_MAX_RECORD_BYTES", 8 << 20))


class SourceFileError(QmspecError):
    pass


def _lines(path: str, start_line: int = 0) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) after `start_line`, each at most MAX_RECORD_BYTES: a longer one is refused before it is
    read whole (a 50 MB record must not cost gigabytes)."""
    with open(path, "rb") as handle:
        number = 0
        while True:
            line = handle.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                raise SourceFileError(f"{path}:{number}: the record is longer than {MAX_RECORD_BYTES >> 20} MiB; split the document "
                                      "into chunks (one point each), or raise QMSPEC_MAX_RECORD_BYTES")
            if number > start_line and line.strip():
                yield number, line


def count_records(path: str) -> int:
    """Records in a JSON Lines file: its non-blank lines. Counted without parsing, so planning stays fast."""
    try:
        return sum(1 for _ in _lines(path))
    except OSError as exc:
        raise QmspecError(f"cannot read source file {path}: {exc.strerror}; check source.files in the spec") from None


def read_records(path: str, id_field: str, start_line: int = 0) -> Iterator[tuple[int, object, dict]]:
    """Yield (line number, point id, payload) from a JSON Lines file, starting after `start_line` lines."""
    for number, line in _lines(path, start_line):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceFileError(f"{path}:{number}: not UTF-8 text (byte {exc.start + 1} of the line); save the file as UTF-8") from None
        yield number, *parse_record(path, number, text, id_field)


def parse_record(path: str, number: int, line: str, id_field: str) -> tuple[object, dict]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceFileError(f"{path}:{number}: not valid JSON ({exc.msg}); fix the record") from None
    except RecursionError:
        raise SourceFileError(f"{path}:{number}: the record is nested too deeply to read; flatten its payload") from None
    if not isinstance(record, dict) or id_field not in record:
        raise SourceFileError(f"{path}:{number}: the record has no {id_field!r} field; add one or set source.id_field")
    return point_id(record.pop(id_field), path, number), record


def point_id(value, path: str, number: int):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise SourceFileError(f"{path}:{number}: id {value!r} is neither an unsigned integer nor a UUID; Qdrant accepts only those")


def check_source_files(paths: tuple[str, ...], id_field: str, text_fields: tuple[str, ...] = ()) -> int:
    """Read every record once before anything is written: a bad line, a duplicate id or a text field that is not text
    fails the apply at its start, not halfway."""
    seen = set()
    for path in paths:
        try:
            for number, pid, payload in read_records(path, id_field):
                if pid in seen:
                    raise SourceFileError(f"{path}:{number}: id {pid!r} appears twice; ids must be unique across the source files")
                for field in text_fields:
                    if not isinstance(payload.get(field), str):
                        raise SourceFileError(f"{path}:{number}: record {pid!r} has no text in {field!r}, which a vector embeds; "
                                              "give it one, or set that vector's text_field")
                seen.add(pid)
        except OSError as exc:
            raise SourceFileError(f"cannot read {path}: {exc.strerror}") from None
    return len(seen)


def sample_texts(paths: tuple[str, ...], id_field: str, field: str, limit: int = 32) -> dict:
    """point id -> the value of `field` for the first records of the source files."""
    sample = {}
    for path in paths:
        for _, pid, payload in read_records(path, id_field):
            sample[pid] = payload.get(field)
            if len(sample) >= limit:
                return sample
    return sample
