"""The canonical bytes of whole Arrow batches at once, for the common flat case.

A batch whose columns are all text, integers or booleans, without nulls, is encoded by
Arrow's own kernels: each column becomes its JSON text, and the columns are joined between
their (sorted, escaped) keys in one pass. That is byte for byte the `mlprov-record/1`
encoding of `canonical.record_digest`, which every other batch still goes through; a
property test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.records.hashing import sha256

__all__ = [
    "flat_canonical",
    "flat_canonical_column",
    "flat_digests",
    "needs_escape",
    "object_pieces",
    "text_bytes",
    "text_layout",
]

_MAX_INT = 2**53 - 1
# Characters JSON text must escape: controls, the quote and the backslash.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_SPACE = 0x20
V = TypeVar("V")


def text_layout(col: pa.Array) -> tuple[np.ndarray[Any, np.dtype[np.uint8]], Any]:
    """The UTF-8 bytes of a text column's values, and where each value ends in them (a
    view, without a copy, but for ``string_view``, which is cast first)."""
    if pa.types.is_string_view(col.type):
        col = pc.cast(col, pa.string())
    width = np.int64 if pa.types.is_large_string(col.type) else np.int32
    offsets = np.frombuffer(col.buffers()[1], dtype=width)[col.offset : col.offset + len(col) + 1]
    ends = offsets[1:] - offsets[0]
    data = col.buffers()[2]
    if data is None or not len(col):
        return np.zeros(0, dtype=np.uint8), ends
    return np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]], ends


def text_bytes(col: pa.Array) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The UTF-8 bytes of a text column's values (see :func:`text_layout`)."""
    return text_layout(col)[0]


def needs_escape(col: pa.Array) -> bool:
    """Does any value of a text column hold a character JSON must escape?"""
    # Whole-column passes are many times cheaper than a regex over the values, and text
    # that needs escaping is rare: the least byte finds a control character, and find()
    # a quote or backslash without an array of comparisons.
    data = text_bytes(col)
    if not len(data):
        return False
    if data.min() < _SPACE:
        return True
    text = data.tobytes()
    return text.find(b'"') >= 0 or text.find(b"\\") >= 0


def object_pieces(members: Sequence[tuple[str, V, bool]]) -> list[str | V]:
    """A JSON object as literal text and values in turn, ``[text, value, text, ..., text]``,
    its members in RFC 8785 order (by the UTF-16 code units of their names).

    Each member is ``(name, value, quoted)``; a quoted value is a string's inside, whose
    quotes the literal text carries. The text pieces are at the even positions.
    """
    pieces: list[str | V] = []
    literal = "{"
    for i, (name, value, quoted) in enumerate(
        sorted(members, key=lambda m: m[0].encode("utf-16-be"))
    ):
        literal += ("" if i == 0 else ",") + orjson.dumps(name).decode() + ":"
        pieces += [literal + ('"' if quoted else ""), value]
        literal = '"' if quoted else ""
    pieces.append(literal + "}")
    return pieces


def _json_text(col: pa.Array) -> pa.Array:
    """A text column as the inside of JSON strings (RFC 8785 escaping, via orjson)."""
    if not needs_escape(col):
        return col
    mask = pc.match_substring_regex(col, _NEEDS_ESCAPE)
    idx = pc.indices_nonzero(mask)
    escaped = [orjson.dumps(v).decode()[1:-1] for v in col.take(idx).to_pylist()]
    return pc.replace_with_mask(col, mask, pa.array(escaped, col.type))


def _json_int(col: pa.Array) -> pa.Array:
    """Integers as JSON numbers; beyond ±(2**53 − 1), as decimal strings (the spec's rule)."""
    text = pc.cast(col, pa.string())
    bounds = pc.min_max(col)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low >= -_MAX_INT and high <= _MAX_INT:
        return text
    # Only 64-bit columns get here; compare in the column's own type (uint64 may exceed int64).
    big = pc.greater(col, pa.scalar(_MAX_INT, col.type))
    if low < -_MAX_INT:
        big = pc.or_(big, pc.less(col, pa.scalar(-_MAX_INT, col.type)))
    return pc.if_else(big, pc.binary_join_element_wise('"', text, '"', ""), text)


def _json_column(col: pa.Array) -> tuple[pa.Array, bool] | None:
    """A column's JSON text, and whether it is a string (whose quotes the keys carry)."""
    t = col.type
    if pa.types.is_large_string(t):
        col, t = pc.cast(col, pa.string()), pa.string()
    if pa.types.is_string(t):
        return _json_text(col), True
    if pa.types.is_integer(t):
        return _json_int(col), False
    if pa.types.is_boolean(t):
        return pc.if_else(col, "true", "false"), False
    return None


def flat_canonical_column(batch: pa.RecordBatch) -> pa.Array | None:
    """Each row's canonical bytes as one binary column, or None if the batch is not flat."""
    if batch.num_rows == 0 or batch.num_columns == 0:
        return None
    names = batch.schema.names
    if len(set(names)) != len(names):
        return None
    members: list[tuple[str, pa.Array, bool]] = []
    for name, col in zip(names, batch.columns, strict=True):
        if col.null_count:
            return None
        found = _json_column(col)
        if found is None:
            return None
        members.append((name, *found))
    parts = object_pieces(members)
    joined = pc.binary_join_element_wise(*parts, "")
    return joined.cast(pa.binary())


def flat_canonical(batch: pa.RecordBatch) -> list[bytes] | None:
    """Each row's canonical bytes, or None when the batch is not of the flat kind."""
    column = flat_canonical_column(batch)
    return None if column is None else list(column.to_pylist())


def flat_digests(batch: pa.RecordBatch) -> list[bytes] | None:
    """Each row's raw record digest, or None when the batch is not of the flat kind."""
    column = flat_canonical_column(batch)
    return None if column is None else list(sha256(column).to_pylist())
