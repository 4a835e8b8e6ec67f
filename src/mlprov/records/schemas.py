"""Column names and schemas: the checks every reader makes before a batch is digested.

A record's columns are unique strings; a source read with a schema has exactly the
schema's columns, cast to its types, or an InputError names the first cell that does not
fit (see ``docs/spec/record-digest.md``, "Readers").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from mlprov.errors import InputError

__all__ = [
    "ARROW_ERRORS",
    "after_row",
    "check_names",
    "conform",
    "first_bad",
    "no_columns",
    "same_columns",
]

# What pyarrow raises for content it cannot read or convert.
ARROW_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, OverflowError)


def after_row(done: int) -> str:
    """Where reading stopped, for an error message: `` after row N`` (or nothing)."""
    return f" after row {done - 1}" if done else ""


def check_names(names: Sequence[str], what: str) -> None:
    """Refuse a column name that is not a string, or that appears twice."""
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise InputError(
                f"{what} has a column named {name!r}, which is not a string",
                "name every column with a string",
            )
        if name in seen:
            raise InputError(
                f"{what} has two columns named {name!r}", "rename one: record columns are unique"
            )
        seen.add(name)


def conform(table: pa.Table, schema: pa.Schema, what: str, first_row: int = 0) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types, or an InputError naming a cell."""
    check_names(schema.names, "the schema")
    same_columns(table.schema.names, schema.names, what)
    table = table.select(schema.names)
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        col = table.column(field.name)
        try:
            columns.append(col.cast(field.type))
        except ARROW_ERRORS as e:
            row = _first_bad_cast(col, field.type)
            at = f"row {first_row + row}: " if row is not None else ""
            raise InputError(
                f"{what}: {at}column {field.name!r} does not fit the schema's type "
                f"{field.type}: {e}",
                "fix the value, or the schema",
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


def same_columns(have_names: Sequence[str], want_names: Sequence[str], what: str) -> None:
    """Refuse a source whose columns are not exactly the schema's (order aside)."""
    have, want = set(have_names), set(want_names)
    if have != want:
        extra, missing = sorted(have - want), sorted(want - have)
        raise InputError(
            f"{what} does not have the schema's columns"
            + (f"; not in the schema: {', '.join(map(repr, extra))}" if extra else "")
            + (f"; missing: {', '.join(map(repr, missing))}" if missing else ""),
            "pass a schema that names exactly the source's columns",
        )


def _first_bad_cast(col: pa.ChunkedArray, to: pa.DataType) -> int | None:
    flat = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    for row in range(len(flat)):
        try:
            flat.slice(row, 1).cast(to)
        except ARROW_ERRORS:
            return row
    return None


def first_bad(values: list[Any], t: pa.DataType | None) -> int | None:
    """The first row at which ``values`` stop converting to one Arrow type (or ``t``)."""

    def fails(n: int) -> bool:
        try:
            pa.array(values[:n], type=t)
        except ARROW_ERRORS:
            return True
        return False

    if not fails(len(values)):
        return None
    lo, hi = 0, len(values)  # the prefix of lo values converts; that of hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fails(mid) else (mid, hi)
    return hi - 1


def no_columns(rows: int) -> pa.Table:
    """A table of ``rows`` rows and no columns (pa.table({}) has no rows)."""
    empty = pa.array([{}] * rows, pa.struct([]))
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(empty)])
