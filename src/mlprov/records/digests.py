"""Record digests of whole Arrow batches: each row's canonical bytes, hashed in one call.

A flat batch (text, integer and boolean columns without nulls) is encoded by Arrow's
kernels (:mod:`mlprov.records.fastpath`); any other goes row by row through
:func:`mlprov.records.canonical.canonical_record`. Either way the canonical bytes become
one binary column that :func:`mlprov.records.hashing.sha256` hashes at once.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mlprov.errors import InputError
from mlprov.records.canonical import canonical_record, format_time, format_timestamp
from mlprov.records.fastpath import flat_canonical_column
from mlprov.records.hashing import sha256
from mlprov.records.schemas import ARROW_ERRORS, check_names

__all__ = ["canonical_column", "digest_batch", "digest_rows"]

_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def digest_rows(batch: pa.RecordBatch, first_row: int = 0) -> pa.FixedSizeBinaryArray:
    """The raw 32-byte record digest of each row of ``batch``, in row order, as Arrow.

    ``first_row`` is the batch's position in its source, so errors name the source's row.
    """
    return sha256(canonical_column(batch, first_row))


def digest_batch(batch: pa.RecordBatch, first_row: int = 0) -> list[bytes]:
    """The raw 32-byte record digest of each row of ``batch``, in row order.

    ``first_row`` is the batch's position in its source, so errors name the source's row.
    """
    return list(digest_rows(batch, first_row).to_pylist())


def canonical_column(batch: pa.RecordBatch, first_row: int = 0) -> pa.Array:
    """Each row's canonical bytes (``mlprov-record/1``) as a binary column."""
    names = batch.schema.names
    check_names(names, "the batch")
    if not names:  # zip() of no columns yields no rows
        return pa.array([canonical_record({})] * batch.num_rows, pa.binary())
    fast = flat_canonical_column(batch)
    if fast is not None:
        return fast
    columns = [_column_values(batch.column(i), name) for i, name in enumerate(names)]
    rows = []
    for row, values in enumerate(zip(*columns, strict=True)):
        try:
            rows.append(canonical_record(dict(zip(names, values, strict=True))))
        except InputError as e:
            raise InputError(
                f"row {first_row + row}: {e.message}", e.hint, cli_hint=e.cli_hint
            ) from None
    return pa.array(rows, pa.binary())


def _column_values(col: pa.Array, name: str) -> list[Any]:
    """The Python values of a column, with top-level times and timestamps already encoded."""
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_time(t):
        factor = _UNIT_NS[t.unit]
        ints = col.cast(pa.int32() if t.bit_width == 32 else pa.int64()).to_pylist()
        try:
            if pa.types.is_time(t):
                return [None if v is None else format_time(v * factor) for v in ints]
            zoned = t.tz is not None
            return [None if v is None else format_timestamp(v * factor, zoned) for v in ints]
        except InputError as e:
            bad = next(i for i, v in enumerate(ints) if v is not None and _fails(v, factor, t))
            raise InputError(
                f"row {bad}: column {name!r}: {e.message}", e.hint, cli_hint=e.cli_hint
            ) from None
    if _has_nested_time_ns(t):
        raise InputError(
            f"column {name!r} has nanosecond times inside a {t}, which mlprov cannot read yet",
            "cast them to time64('us') or to string",
        )
    try:
        return list(col.to_pylist(maps_as_pydicts="strict"))
    except ARROW_ERRORS as e:
        for row in range(len(col)):
            try:
                col.slice(row, 1).to_pylist(maps_as_pydicts="strict")
            except ARROW_ERRORS as e_row:
                raise InputError(
                    f"row {row}: column {name!r}: cannot read the value: {e_row}",
                    "a map may have a duplicate key, or a date be outside the years 0001-9999",
                ) from None
        raise InputError(f"column {name!r}: cannot read its values: {e}") from None


def _fails(v: int, factor: int, t: pa.DataType) -> bool:
    try:
        if pa.types.is_time(t):
            format_time(v * factor)
        else:
            format_timestamp(v * factor, False)
    except InputError:
        return True
    return False


def _has_nested_time_ns(t: pa.DataType) -> bool:
    if pa.types.is_time64(t):
        return bool(t.unit == "ns")
    return any(_has_nested_time_ns(t.field(i).type) for i in range(t.num_fields))
