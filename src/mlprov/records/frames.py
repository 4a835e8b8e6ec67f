"""In-memory sources as record batches: Arrow tables, lists of dicts, pandas, polars and
Hugging Face ``datasets``.

pandas drops its index, and holds NaN and null alike, so NaN reads as null; a list of
dicts takes the union of its rows' keys, a missing key being null
(``docs/spec/record-digest.md``, "Readers").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from mlprov.errors import InputError, MissingExtraError
from mlprov.records.schemas import ARROW_ERRORS, check_names, conform, first_bad, no_columns

__all__ = ["from_datasets", "from_dicts", "from_pandas", "from_polars", "table_batches"]


def table_batches(
    table: pa.Table, schema: pa.Schema | None, batch_size: int, what: str
) -> Iterator[pa.RecordBatch]:
    """The batches of an Arrow table, conformed to ``schema`` when one is given."""
    check_names(table.schema.names, what)
    if schema is not None:
        table = conform(table, schema, what)
    yield from table.to_batches(max_chunksize=batch_size)


def from_dicts(rows: Sequence[Any], schema: pa.Schema | None) -> pa.Table:
    """A table of a list of dicts: its columns are the union of the rows' keys."""
    # pyarrow's from_pylist takes its columns from the first row alone: build columns from
    # the union of keys, in order of first appearance.
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(f"row {i} is a {type(row).__name__}, not a dict of column values")
        for k in row:
            if not isinstance(k, str):
                raise InputError(
                    f"row {i} has a column named {k!r}, which is not a string",
                    "name every column with a string",
                )
            names.setdefault(k)
    if schema is not None:
        for name in schema.names:
            names.setdefault(name)
    columns: dict[str, list[Any]] = {name: [row.get(name) for row in rows] for name in names}
    if not columns:
        return no_columns(len(rows))
    try:
        return pa.table(columns)
    except ARROW_ERRORS as e:
        for name, values in columns.items():
            row = first_bad(values, None)
            if row is not None:
                raise InputError(
                    f"the rows: row {row}: column {name!r} cannot be read: {e}",
                    "each column must hold one type (ints, text, ...) throughout",
                ) from None
        raise InputError(f"the rows cannot be read as a table: {e}") from None


def _require(package: str, extra: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingExtraError(package, extra) from None


def from_pandas(df: Any) -> pa.Table:
    """A pandas DataFrame as Arrow, its index dropped."""
    pd = _require("pandas", "pandas")
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"cannot read records from a pandas {type(df).__name__}", "pass a DataFrame"
        )
    check_names(list(df.columns), "the DataFrame")
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except ARROW_ERRORS as e:
        raise InputError(
            f"the DataFrame cannot be read as Arrow: {e}",
            "each column must hold one type; convert object columns first",
        ) from None


def from_polars(df: Any) -> pa.Table:
    """A polars DataFrame as Arrow (a LazyFrame is refused: it holds no rows yet)."""
    pl = _require("polars", "polars")
    if isinstance(df, pl.LazyFrame):
        raise InputError("a polars LazyFrame holds no rows yet", "call .collect() first")
    if not isinstance(df, pl.DataFrame):
        raise InputError(
            f"cannot read records from a polars {type(df).__name__}", "pass a DataFrame"
        )
    table = df.to_arrow()
    assert isinstance(table, pa.Table)
    return table


def from_datasets(ds: Any, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The batches of one ``datasets.Dataset`` split, honouring its selection."""
    datasets = _require("datasets", "datasets")
    if not isinstance(ds, datasets.Dataset):
        raise InputError(
            f"cannot read records from a datasets.{type(ds).__name__}",
            "pass one split, such as dataset['train'], as a datasets.Dataset",
        )
    check_names(ds.column_names, "the dataset")
    # with_format("arrow").iter honours the dataset's indices (select, shuffle, filter)
    done = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_size):
        if schema is not None:
            table = conform(table, schema, "the dataset", done)
        done += table.num_rows
        yield from table.to_batches(max_chunksize=batch_size)
