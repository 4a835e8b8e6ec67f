"""Indexed changes files: a step's changes sorted by record, in parts under one root (ADR 0021).

A step's changes (removed, changed and added records, by key and digest: ADR 0008) are
written sorted by the column a question looks them up by — the key when the step matched
records by key, the digest before the step otherwise (rows without one last) — and cut
into *parts* of :data:`PART_ROWS` rows, one Parquet row group each. Rows that name the
same value keep the order the step produced them in (a sort that is stable).

The footer's index (:data:`INDEX`, JSON) lists each part's first and last value, its
number of rows and the digest of its rows (:func:`part_digest`), and, for the records
removed as duplicates, which record each was a duplicate of and where its row is. Each
part is one leaf of an RFC 9162 tree (:mod:`mlprov.merkle`) and the duplicates list one
more; the tree's root goes into the step's event (`changes_root`) beside the SHA-256 of
the whole file (`changes`). A reader checks the index against that root, then each part
it reads against its digest (:mod:`mlprov.records.changesreader`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov import merkle
from mlprov.digest import Digest

__all__ = [
    "FORMAT",
    "INDEX",
    "PART_ROWS",
    "by_column",
    "duplicates_leaf",
    "index_root",
    "part_digest",
    "part_leaf",
    "write",
]

FORMAT = "mlprov.changes/v2"
INDEX = b"mlprov.changes-index"
PART_ROWS = 8192  # rows per part: one is decoded and hashed in well under a millisecond
_PART_TAG = b"mlprov.changes-part/v1\x00"


def by_column(matched_by: str) -> str:
    """The column a step's changes are sorted by: what `why` looks its rows up by."""
    return "key" if matched_by == "key" else "before"


def _column_bytes(column: pa.Array) -> Iterator[bytes | pa.Buffer]:
    """One column's values as bytes that say exactly what they are: a validity byte per
    row, then per row the length (little-endian int64, 0 when null) and the bytes of each
    value; a list column gives its lists' lengths, then its items the same way."""
    n = len(column)
    yield np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), np.uint8).tobytes()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        yield np.asarray(lengths.to_numpy(zero_copy_only=False), "<i8").tobytes()
        yield from _column_bytes(column.flatten())
        return
    data = pc.fill_null(column.cast(pa.large_binary()), pa.scalar(b"", pa.large_binary()))
    lengths = pc.binary_length(data)
    yield np.asarray(lengths.to_numpy(zero_copy_only=False), "<i8").tobytes()
    if n == 0:
        return
    _, offsets_buffer, body = data.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[data.offset : data.offset + n + 1]
    if body is not None and offsets[-1] > offsets[0]:
        yield body[int(offsets[0]) : int(offsets[-1])]


def part_digest(rows: pa.Table) -> bytes:
    """The SHA-256 of a part's rows, from their values (not their Parquet bytes), so that
    what is checked is what is decoded: a tag, the number of rows and of columns, then
    each column in order (see :func:`_column_bytes`)."""
    sha = hashlib.sha256(_PART_TAG)
    sha.update(np.array([rows.num_rows, rows.num_columns], "<i8").tobytes())
    for column in rows.columns:
        for piece in _column_bytes(column.combine_chunks()):
            sha.update(piece)
    return sha.digest()


def _shown(value: Any) -> str | None:
    """A sort value as the index writes it: text as is, a digest as hex."""
    if value is None or isinstance(value, str):
        return value
    return bytes(value).hex()


def part_leaf(by: str, entry: dict[str, Any]) -> bytes:
    """The leaf of one part: its entry in the index (first and last value, rows, digest)."""
    fields = {k: entry.get(k) for k in ("first", "last", "rows", "digest")}
    return merkle.leaf_hash(orjson.dumps({"by": by, **fields}, option=orjson.OPT_SORT_KEYS))


def duplicates_leaf(duplicates: Sequence[Any]) -> bytes:
    """The leaf of the duplicates list: [duplicate of, part, row in the part] each."""
    return merkle.leaf_hash(orjson.dumps({"duplicates": list(duplicates)}))


def index_root(by: str, parts: Sequence[dict[str, Any]], duplicates: Sequence[Any]) -> Digest:
    """The root over the parts' leaves and the duplicates list's."""
    leaves = [part_leaf(by, p) for p in parts] + [duplicates_leaf(duplicates)]
    return Digest.from_raw(merkle.root_of(leaves))


def _duplicates(ordered: pa.Table, size: int) -> list[list[Any]]:
    """[duplicate of, part, row in the part] for each row naming the record kept in its
    place, by the key it names and then in file order."""
    named = ordered.column("duplicate_of").combine_chunks()
    at = np.flatnonzero(np.asarray(pc.is_valid(named).to_numpy(zero_copy_only=False)))
    if not len(at):
        return []
    found = pa.table({"of": named.take(pa.array(at)), "at": at.astype(np.int64)})
    found = found.sort_by([("of", "ascending"), ("at", "ascending")])
    places = np.asarray(found.column("at").to_numpy(), np.int64)
    return [
        [of, int(p) // size, int(p) % size]
        for of, p in zip(found.column("of").to_pylist(), places, strict=True)
    ]


def write(changes: pa.Table, matched_by: str, part_rows: int = PART_ROWS) -> tuple[bytes, Digest]:
    """The indexed file of a step's changes (:data:`FORMAT`), in parts of `part_rows`
    rows, and its root."""
    by = by_column(matched_by)
    order = pc.sort_indices(changes, sort_keys=[(by, "ascending")])  # nulls last
    ordered = changes.take(order)
    values = ordered.column(by).combine_chunks()
    parts: list[dict[str, Any]] = []
    for start in range(0, ordered.num_rows, part_rows):
        part = ordered.slice(start, part_rows)
        parts.append(
            {
                "first": _shown(values[start].as_py()),
                "last": _shown(values[start + part.num_rows - 1].as_py()),
                "rows": part.num_rows,
                "digest": part_digest(part).hex(),
            }
        )
    duplicates = _duplicates(ordered, part_rows)
    index = {"format": FORMAT, "by": by, "parts": parts, "duplicates": duplicates}
    ordered = ordered.replace_schema_metadata(
        {b"mlprov.format": FORMAT.encode(), INDEX: orjson.dumps(index)}
    )
    sink = pa.BufferOutputStream()  # hashed and written from memory: one pass
    pq.write_table(ordered, sink, row_group_size=part_rows, write_statistics=False)
    return sink.getvalue().to_pybytes(), index_root(by, parts, duplicates)
