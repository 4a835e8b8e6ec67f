"""Frames: the data a pipeline passes around, seen as Arrow, and filtered in its own type.

Capture works on whatever the pipeline already uses — pandas, polars, pyarrow tables,
Hugging Face ``datasets`` and lists of dicts — and hands back the same type. Reading goes
through the record readers, so a row's digest here is the digest `mlprov fingerprint`
gives the same row in a file.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mlprov.errors import InputError
from mlprov.records.readers import read_batches

__all__ = ["Kind", "keep_rows", "kind_of", "to_table"]

Kind = Literal["arrow", "pandas", "polars", "datasets", "records"]
_WHOLE = 1 << 40  # one batch: the readers' slices of a table are zero-copy anyway


def kind_of(data: Any) -> Kind:
    """Which kind of data this is, or InputError naming what is accepted."""
    if isinstance(data, pa.Table):
        return "arrow"
    if isinstance(data, list):
        return "records"
    root = type(data).__module__.partition(".")[0]
    name = type(data).__name__
    if root == "pandas" and name == "DataFrame":
        return "pandas"
    if root == "polars" and name == "DataFrame":
        return "polars"
    if root == "datasets" and name == "Dataset":
        return "datasets"
    raise InputError(
        f"cannot track a {type(data).__module__}.{type(data).__qualname__}",
        "pass a pandas or polars DataFrame, a pyarrow Table, a datasets.Dataset or a list "
        "of dicts (a step must return one of these too)",
    )


def columns(table: pa.Table) -> list[dict[str, str]]:
    """The columns of a table as a payload records them: name and Arrow type."""
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def to_table(data: Any) -> pa.Table:
    """The rows of `data` — a frame, or a file the record readers take — as one Arrow
    table (pandas' index is not part of a record)."""
    kind = None if isinstance(data, str | os.PathLike) else kind_of(data)
    batches = list(read_batches(data, batch_size=_WHOLE))
    if not batches:
        return pa.table({})
    table = pa.Table.from_batches(batches)
    return _owned(table) if kind == "pandas" else table


def _owned(table: pa.Table) -> pa.Table:
    """`table` with its fixed-width columns in memory of their own.

    Arrow reads pandas' numeric columns without a copy, so a frame changed in place later
    would change them too; capture reads the table after the step has returned (ADR 0012),
    so it copies them (a few megabytes; text is Arrow's own already, or copied anyway)."""
    columns = [
        pa.chunked_array([pa.concat_arrays([chunk]) for chunk in column.chunks], column.type)
        if pa.types.is_primitive(column.type)
        else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def keep_rows(data: Any, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> Any:
    """`data` with only the rows where `keep` is true, in the same type and order."""
    kind = kind_of(data)
    if kind == "arrow":
        return data.filter(pa.array(keep))
    if kind == "pandas":
        return data[keep]
    if kind == "polars":
        import polars as pl

        return data.filter(pl.Series(keep))
    if kind == "datasets":
        return data.select(np.flatnonzero(keep).tolist())
    return [row for row, k in zip(data, keep.tolist(), strict=True) if k]
