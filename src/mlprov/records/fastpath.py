"""The canonical bytes of whole Arrow batches at once, for the common flat case.

A batch whose columns are all text, integers or booleans, without nulls, is encoded by
Arrow's own kernels: each column becomes its JSON text, and the columns are joined between
their (sorted, escaped) keys. That is byte for byte the `mlprov-record/1` encoding of
`canonical.record_digest`, which every other batch still goes through; a property test
holds the two equal. Only the SHA-256 of each row remains a Python call.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.digest import sha256_raw

__all__ = ["flat_canonical", "flat_digests"]

_MAX_INT = 2**53 - 1
# Characters JSON text must escape: controls, the quote and the backslash.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def _json_text(col: pa.Array) -> pa.Array:
    """A text column as JSON strings (RFC 8785 escaping, via orjson where any is needed)."""
    plain = pc.binary_join_element_wise('"', col, '"', "")
    mask = pc.match_substring_regex(col, _NEEDS_ESCAPE)
    if not pc.any(mask).as_py():
        return plain
    idx = pc.indices_nonzero(mask)
    escaped = [orjson.dumps(v).decode() for v in col.take(idx).to_pylist()]
    return pc.replace_with_mask(plain, mask, pa.array(escaped, pa.string()))


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


def _json_column(col: pa.Array) -> pa.Array | None:
    t = col.type
    if pa.types.is_large_string(t):
        col, t = pc.cast(col, pa.string()), pa.string()
    if pa.types.is_string(t):
        return _json_text(col)
    if pa.types.is_integer(t):
        return _json_int(col)
    if pa.types.is_boolean(t):
        return pc.if_else(col, "true", "false")
    return None


def flat_canonical(batch: pa.RecordBatch) -> list[bytes] | None:
    """Each row's canonical bytes, or None when the batch is not of the flat kind."""
    if batch.num_rows == 0 or batch.num_columns == 0:
        return None
    names = batch.schema.names
    if len(set(names)) != len(names):
        return None
    parts: list[object] = []
    # RFC 8785 sorts members by the UTF-16 code units of their names.
    for i, name in enumerate(sorted(names, key=lambda n: n.encode("utf-16-be"))):
        col = batch.column(names.index(name))
        if col.null_count:
            return None
        text = _json_column(col)
        if text is None:
            return None
        key = orjson.dumps(name).decode()
        parts += [("{" if i == 0 else ",") + key + ":", text]
    parts.append("}")
    joined = pc.binary_join_element_wise(*parts, "")
    return list(joined.cast(pa.binary()).to_pylist())


def flat_digests(batch: pa.RecordBatch) -> list[bytes] | None:
    """Each row's raw record digest, or None when the batch is not of the flat kind."""
    rows = flat_canonical(batch)
    return None if rows is None else [sha256_raw(r) for r in rows]
