"""Indexed changes files: a step's changes sorted by record, in parts under one root (ADR 0021).

A step's changes (removed, changed and added records, by key and digest: ADR 0008) are
written sorted by the column a question looks them up by — the key when the step matched
records by key, the digest before the step otherwise — shortest value first, then by
bytes (so decimal keys are in numeric order, as a step often gives them already), rows
without a value last; and cut into *parts* of :data:`PART_ROWS` rows, one Parquet row
group each. Rows that name the same value keep the order the step produced them in.

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
    "ascending",
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
    row, each row's length (little-endian int64, 0 when null), then the bytes of the
    values that are not null; a list column gives its lists' lengths, then its items the
    same way."""
    valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), np.uint8)
    yield valid.tobytes()
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        yield np.asarray(lengths.to_numpy(zero_copy_only=False), "<i8").tobytes()
        yield from _column_bytes(column.flatten())
        return
    if pa.types.is_fixed_size_binary(kind):
        width = kind.byte_width
        yield (valid.astype("<i8") * width).tobytes()
        values = column.drop_null() if column.null_count else column
        if len(values):
            start = values.offset * width
            yield values.buffers()[1][start : start + len(values) * width]
        return
    if column.null_count:  # a null is empty, whatever its slot holds
        column = pc.fill_null(column, pa.scalar(b"", pa.binary()).cast(kind))
    wide = pa.types.is_large_binary(kind) or pa.types.is_large_string(kind)
    _, offsets_buffer, body = column.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64 if wide else np.int32)
    offsets = offsets[column.offset : column.offset + len(column) + 1]
    yield np.diff(offsets).astype("<i8").tobytes()
    if body is not None and len(column) and offsets[-1] > offsets[0]:
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


def ascending(values: pa.Array) -> bool:
    """Whether sort values are in the file's order: shortest first, then by their bytes
    (for decimal keys, their numeric order), any without a value last."""
    present = len(values) - values.null_count
    if values.null_count and pc.any(pc.is_null(values.slice(0, present))).as_py():
        return False
    if present < 2:
        return True
    a, b = values.slice(0, present - 1), values.slice(1, present - 1)
    ordered = pc.less_equal(a, b)
    if not pa.types.is_fixed_size_binary(values.type):
        la, lb = pc.binary_length(a), pc.binary_length(b)
        ordered = pc.or_(pc.less(la, lb), pc.and_(pc.equal(la, lb), ordered))
    return bool(pc.all(ordered).as_py())


def _sorted(changes: pa.Table, by: str) -> pa.Table:
    """The rows in the file's order (see :func:`ascending`), rows of one value as they
    came (a stable sort); rows already in order, as a step often gives them, as they are."""
    values = changes.column(by).combine_chunks()
    if ascending(values):
        return changes
    keys = {"value": values}
    if not pa.types.is_fixed_size_binary(values.type):
        keys = {"length": pc.binary_length(values), **keys}
    order = pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys])
    return changes.take(order)  # nulls last


def write(changes: pa.Table, matched_by: str, part_rows: int = PART_ROWS) -> tuple[bytes, Digest]:
    """The indexed file of a step's changes (:data:`FORMAT`), in parts of `part_rows`
    rows, and its root."""
    by = by_column(matched_by)
    ordered = _sorted(changes, by)
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
