"""Read records from files and data frames as Arrow record batches, and digest them.

Every source becomes a stream of ``pyarrow.RecordBatch`` of at most ``batch_size`` rows;
:func:`digest_batch` turns a batch into one raw record digest per row
(``mlprov-record/1``, see :mod:`mlprov.records.canonical`). How each reader maps its
source to Arrow is part of the spec (``docs/spec/record-digest.md``, "Readers"):

* Parquet, Arrow IPC / Feather: read as stored, in batches (Parquet ``iter_batches``).
* CSV: needs a schema (CSV has no types); the header must name exactly its columns. An
  empty unquoted field is null, a quoted ``""`` an empty string; no other text is null.
* JSONL / NDJSON: parsed line by line with the standard library (strict JSON: no NaN,
  no duplicate keys), so text stays text: Arrow's own JSON reader would turn
  ``"2024-01-02"`` into a timestamp. Without a schema a column must keep one JSON kind
  (string, number, bool, array, object) through the file; with one, strings are cast to
  its dates, timestamps and decimals.
* pandas (index dropped; pandas holds NaN and null alike, so NaN reads as null), polars,
  ``datasets.Dataset``, ``pyarrow.Table``/``RecordBatch``, and lists of dicts (a missing
  key is null, which the spec encodes as absent).
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from mlprov.errors import InputError, MissingExtraError, NotFoundError
from mlprov.records.canonical import format_time, format_timestamp, record_digest
from mlprov.records.fastpath import flat_digests

__all__ = ["digest_batch", "read_batches"]

_SUFFIXES = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
}
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_ARROW_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, OverflowError)


def read_batches(
    source: Any, *, schema: pa.Schema | None = None, batch_size: int = 65536
) -> Iterator[pa.RecordBatch]:
    """The records of ``source`` as record batches of at most ``batch_size`` rows.

    ``source`` is a path (``.parquet``, ``.jsonl``/``.ndjson``, ``.csv``, ``.arrow``/
    ``.feather``), a ``pyarrow.Table`` or ``RecordBatch``, a pandas or polars DataFrame,
    a ``datasets.Dataset`` or a list of dicts. ``schema`` is required for CSV; for the
    others it names exactly the expected columns and their types (values are cast).
    A missing file raises NotFoundError at once; bad content raises InputError naming the
    file and, where it can be told, the row (0-based), line and column.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    if schema is not None and not isinstance(schema, pa.Schema):
        raise InputError(f"schema must be a pyarrow.Schema, not {type(schema).__name__}")
    if isinstance(source, str | os.PathLike):
        return _read_path(Path(source), schema, batch_size)
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        return _table_batches(source, schema, batch_size, "the table")
    if isinstance(source, list | tuple):
        return _table_batches(_from_dicts(source, schema), schema, batch_size, "the rows")
    root = type(source).__module__.partition(".")[0]
    if root == "pandas":
        return _table_batches(_from_pandas(source), schema, batch_size, "the DataFrame")
    if root == "polars":
        return _table_batches(_from_polars(source), schema, batch_size, "the DataFrame")
    if root == "datasets":
        return _from_datasets(source, schema, batch_size)
    raise InputError(
        f"cannot read records from a {type(source).__module__}.{type(source).__qualname__}",
        "pass a path (.parquet, .jsonl, .ndjson, .csv, .arrow, .feather), a pyarrow Table, "
        "a pandas or polars DataFrame, a datasets.Dataset or a list of dicts",
    )


def digest_batch(batch: pa.RecordBatch, first_row: int = 0) -> list[bytes]:
    """The raw 32-byte record digest of each row of ``batch``, in row order.

    ``first_row`` is the batch's position in its source, so errors name the source's row.
    """
    names = batch.schema.names
    _check_names(names, "the batch")
    if not names:  # zip() of no columns yields no rows
        return [record_digest({})] * batch.num_rows
    fast = flat_digests(batch)  # flat text, integer and boolean columns: Arrow's kernels
    if fast is not None:
        return fast
    columns = [_column_values(batch.column(i), name) for i, name in enumerate(names)]
    digests = []
    for row, values in enumerate(zip(*columns, strict=True)):
        try:
            digests.append(record_digest(dict(zip(names, values, strict=True))))
        except InputError as e:
            raise InputError(f"row {first_row + row}: {e.message}", e.hint) from None
    return digests


# -- digesting ------------------------------------------------------------------------


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
            raise InputError(f"row {bad}: column {name!r}: {e.message}", e.hint) from None
    if _has_nested_time_ns(t):
        raise InputError(
            f"column {name!r} has nanosecond times inside a {t}, which mlprov cannot read yet",
            "cast them to time64('us') or to string",
        )
    try:
        return list(col.to_pylist(maps_as_pydicts="strict"))
    except _ARROW_ERRORS as e:
        for row in range(len(col)):
            try:
                col.slice(row, 1).to_pylist(maps_as_pydicts="strict")
            except _ARROW_ERRORS as e_row:
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


def _check_names(names: Sequence[str], what: str) -> None:
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


# -- in-memory sources ------------------------------------------------------------------


def _table_batches(
    table: pa.Table, schema: pa.Schema | None, batch_size: int, what: str
) -> Iterator[pa.RecordBatch]:
    _check_names(table.schema.names, what)
    if schema is not None:
        table = _conform(table, schema, what)
    yield from table.to_batches(max_chunksize=batch_size)


def _conform(table: pa.Table, schema: pa.Schema, what: str, first_row: int = 0) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types, or an InputError naming a cell."""
    _check_names(schema.names, "the schema")
    _same_columns(table.schema.names, schema.names, what)
    table = table.select(schema.names)
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        col = table.column(field.name)
        try:
            columns.append(col.cast(field.type))
        except _ARROW_ERRORS as e:
            row = _first_bad_cast(col, field.type)
            at = f"row {first_row + row}: " if row is not None else ""
            raise InputError(
                f"{what}: {at}column {field.name!r} does not fit the schema's type "
                f"{field.type}: {e}",
                "fix the value, or the schema",
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


def _same_columns(have_names: Sequence[str], want_names: Sequence[str], what: str) -> None:
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
        except _ARROW_ERRORS:
            return row
    return None


def _from_dicts(rows: Sequence[Any], schema: pa.Schema | None) -> pa.Table:
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
        return _no_columns(len(rows))
    try:
        return pa.table(columns)
    except _ARROW_ERRORS as e:
        for name, values in columns.items():
            row = _first_bad(values, None)
            if row is not None:
                raise InputError(
                    f"the rows: row {row}: column {name!r} cannot be read: {e}",
                    "each column must hold one type (ints, text, ...) throughout",
                ) from None
        raise InputError(f"the rows cannot be read as a table: {e}") from None


def _no_columns(rows: int) -> pa.Table:
    """A table of ``rows`` rows and no columns (pa.table({}) has no rows)."""
    empty = pa.array([{}] * rows, pa.struct([]))
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(empty)])


def _first_bad(values: list[Any], t: pa.DataType | None) -> int | None:
    """The first row at which ``values`` stop converting to one Arrow type (or ``t``)."""

    def fails(n: int) -> bool:
        try:
            pa.array(values[:n], type=t)
        except _ARROW_ERRORS:
            return True
        return False

    if not fails(len(values)):
        return None
    lo, hi = 0, len(values)  # the prefix of lo values converts; that of hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fails(mid) else (mid, hi)
    return hi - 1


def _require(package: str, extra: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingExtraError(package, extra) from None


def _from_pandas(df: Any) -> pa.Table:
    pd = _require("pandas", "pandas")
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"cannot read records from a pandas {type(df).__name__}", "pass a DataFrame"
        )
    _check_names(list(df.columns), "the DataFrame")
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except _ARROW_ERRORS as e:
        raise InputError(
            f"the DataFrame cannot be read as Arrow: {e}",
            "each column must hold one type; convert object columns first",
        ) from None


def _from_polars(df: Any) -> pa.Table:
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


def _from_datasets(ds: Any, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    datasets = _require("datasets", "datasets")
    if not isinstance(ds, datasets.Dataset):
        raise InputError(
            f"cannot read records from a datasets.{type(ds).__name__}",
            "pass one split, such as dataset['train'], as a datasets.Dataset",
        )
    _check_names(ds.column_names, "the dataset")
    # with_format("arrow").iter honours the dataset's indices (select, shuffle, filter)
    done = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_size):
        if schema is not None:
            table = _conform(table, schema, "the dataset", done)
        done += table.num_rows
        yield from table.to_batches(max_chunksize=batch_size)


# -- files --------------------------------------------------------------------------------


def _read_path(path: Path, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    if not path.exists():
        raise NotFoundError(f"no such file: {path}", "check the path")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file", "name one file")
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell its format from the suffix {path.suffix!r}",
            f"name a file ending in {', '.join(_SUFFIXES)}",
        )
    if kind == "csv" and schema is None:
        raise InputError(
            f"{path}: a CSV file needs a schema, as CSV holds only text",
            "pass schema=pyarrow.schema([...]) naming each column's type",
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}", "check its permissions")
    if kind == "parquet":
        return _read_parquet(path, schema, batch_size)
    if kind == "arrow":
        return _read_arrow(path, schema, batch_size)
    if kind == "csv":
        assert schema is not None
        return _read_csv(path, schema, batch_size)
    return _read_jsonl(path, schema, batch_size)


def _read_parquet(
    path: Path, schema: pa.Schema | None, batch_size: int
) -> Iterator[pa.RecordBatch]:
    done = 0
    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=batch_size):
            if schema is not None:
                batch = _conform(pa.Table.from_batches([batch]), schema, str(path), done)
                yield from batch.to_batches(max_chunksize=batch_size)
            else:
                yield batch
            done += batch.num_rows
    except _ARROW_ERRORS as e:
        at = f" (after row {done - 1})" if done else ""
        raise InputError(
            f"{path}: cannot read it as Parquet{at}: {e}",
            "the file may be truncated, corrupt or not Parquet; write it again",
        ) from None


def _read_arrow(path: Path, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    done = 0
    try:
        with pa.memory_map(str(path)) as source:
            try:
                reader: Any = pa_ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:  # not the file format: try the stream format
                source.seek(0)
                batches = iter(pa_ipc.open_stream(source))
            for batch in batches:
                table = pa.Table.from_batches([batch])
                if schema is not None:
                    table = _conform(table, schema, str(path), done)
                done += table.num_rows
                yield from table.to_batches(max_chunksize=batch_size)
    except _ARROW_ERRORS as e:
        raise InputError(
            f"{path}: cannot read it as Arrow IPC (Feather v2){_after(done)}: {e}",
            "the file may be truncated, corrupt or another format; write it again",
        ) from None


def _after(done: int) -> str:
    return f" after row {done - 1}" if done else ""


# -- CSV ----------------------------------------------------------------------------------

_CSV_COLUMN = re.compile(
    r"In CSV column #(\d+): CSV conversion error to ([^:]+): invalid value '(.*)'"
)


def _read_csv(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
    _check_names(schema.names, "the schema")
    convert = pa_csv.ConvertOptions(
        column_types=schema,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    header: list[str] = []
    done = 0
    try:
        parse = pa_csv.ParseOptions(newlines_in_values=True)  # quoted text may hold newlines
        reader = pa_csv.open_csv(path, parse_options=parse, convert_options=convert)
        header = reader.schema.names
        _check_names(header, f"{path}: the header")
        _same_columns(header, schema.names, f"{path}: the header")
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(schema.names)
            done += table.num_rows
            yield from table.to_batches(max_chunksize=batch_size)
    except InputError:
        raise
    except _ARROW_ERRORS as e:
        raise _csv_error(path, header, str(e), done) from None


def _csv_error(path: Path, header: list[str], message: str, done: int) -> InputError:
    hint = "fix the row, or the schema"
    if not header:  # the reader failed on its first block, before it gave the header
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            header = next(csv.reader(f), [])
    if "invalid UTF8" in message or "UTF-8" in message:
        line = _first_non_utf8_line(path)
        where = f"line {line}" if line else "a line"
        return InputError(f"{path}: {where} is not valid UTF-8", "save the file as UTF-8")
    if m := _CSV_COLUMN.search(message):
        col, to, value = int(m[1]), m[2], m[3]
        name = header[col] if col < len(header) else f"#{col}"
        found = _find_csv_row(path, lambda r: col < len(r) and r[col] == value)
        at = f"row {found[0]} (line {found[1]}): " if found else ""
        return InputError(f"{path}: {at}column {name!r}: {value!r} is not a valid {to}", hint)
    if "Expected" in message and "columns" in message:
        found = _find_csv_row(path, lambda r: len(r) != len(header))
        at = f"row {found[0]} (line {found[1]}): " if found else ""
        return InputError(f"{path}: {at}{message.removeprefix('CSV parse error: ')}", hint)
    return InputError(f"{path}: cannot read it as CSV{_after(done)}: {message}", hint)


def _find_csv_row(path: Path, bad: Any) -> tuple[int, int] | None:
    """The first data row (0-based) and its line (1-based) for which ``bad(fields)`` holds."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        start = reader.line_num + 1
        for row, fields in enumerate(reader):
            if bad(fields):
                return row, start
            start = reader.line_num + 1
    return None


def _first_non_utf8_line(path: Path) -> int | None:
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return line
    return None


# -- JSONL --------------------------------------------------------------------------------

_KIND = {
    bool: "a bool",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def _read_jsonl(path: Path, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    text_schema = None
    if schema is not None:
        _check_names(schema.names, "the schema")
        text_schema = pa.schema([pa.field(f.name, _as_json_type(f.type, f.name)) for f in schema])
    kinds: dict[str, tuple[str, int]] = {}
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    done = 0
    with open(path, "rb") as f:
        for line, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"{path}: line {line} is not valid UTF-8 (byte {e.start} of the line)",
                    "save the file as UTF-8",
                ) from None
            if not text.strip():
                continue
            row = _parse_line(text, path, line)
            if schema is None:
                _check_kinds(row, kinds, path, line)
            else:
                extra = [k for k in row if k not in schema.names]
                if extra:
                    raise InputError(
                        f"{path}: line {line}: column {extra[0]!r} is not in the schema",
                        "add it to the schema, or remove it from the file",
                    )
            rows.append(row)
            lines.append(line)
            if len(rows) == batch_size:
                yield from _jsonl_batch(rows, lines, schema, text_schema, path, done)
                done += len(rows)
                rows, lines = [], []
    if rows:
        yield from _jsonl_batch(rows, lines, schema, text_schema, path, done)


def _parse_line(text: str, path: Path, line: int) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            dup = next(k for i, (k, _) in enumerate(items) if k in dict(items[:i]))
            raise InputError(
                f"{path}: line {line}: the key {dup!r} appears twice",
                "JSON objects must not repeat a key",
            )
        return out

    def constant(name: str) -> Any:
        raise InputError(
            f"{path}: line {line}: {name} is not JSON",
            "write NaN and infinities as the strings 'NaN', 'Infinity'",
        )

    def number(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise InputError(f"{path}: line {line}: the number {text} is too large for a float")
        return value

    try:
        row = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{path}: line {line}, column {e.colno}: not JSON: {e.msg}",
            "each line must be one JSON object",
        ) from None
    if not isinstance(row, dict):
        raise InputError(
            f"{path}: line {line} is {_KIND.get(type(row), 'null')}, not an object",
            "each line must be one JSON object",
        )
    return row


def _check_kinds(
    row: dict[str, Any], kinds: dict[str, tuple[str, int]], path: Path, line: int
) -> None:
    for name, value in row.items():
        if value is None:
            continue
        kind = _KIND[type(value)]
        first = kinds.setdefault(name, (kind, line))
        if first[0] != kind:
            raise InputError(
                f"{path}: line {line}: column {name!r} is {kind} here but {first[0]} on line "
                f"{first[1]}: the schema changes mid-file",
                "make the column one type throughout, or pass a schema",
            )


def _as_json_type(t: pa.DataType, name: str) -> pa.DataType:
    """The Arrow type JSON text holds for ``t``: strings where JSON has no such type."""
    if pa.types.is_temporal(t) and not (pa.types.is_time(t) or pa.types.is_duration(t)):
        return pa.string()  # dates and timestamps: strings, cast below
    if pa.types.is_decimal(t):
        return pa.string()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    ):
        raise InputError(
            f"column {name!r}: a JSONL schema cannot hold the type {t}",
            "declare it as string: JSON text in the spec's form (base64 for bytes, "
            "HH:MM:SS for times) has the same digest",
        )
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _as_json_type(f.type, name)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_as_json_type(t.value_type, name))
    if pa.types.is_large_list(t):
        return pa.large_list(_as_json_type(t.value_type, name))
    if pa.types.is_map(t):
        return pa.map_(t.key_type, _as_json_type(t.item_type, name))
    return t


def _jsonl_batch(
    rows: list[dict[str, Any]],
    lines: list[int],
    schema: pa.Schema | None,
    text_schema: pa.Schema | None,
    path: Path,
    done: int,
) -> Iterator[pa.RecordBatch]:
    names: dict[str, None] = dict.fromkeys(schema.names) if schema is not None else {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name) for row in rows] for name in names}
    if not columns:  # every line is {}
        yield from _no_columns(len(rows)).to_batches()
        return
    try:
        table = pa.table(columns, schema=text_schema)
    except _ARROW_ERRORS as e:
        for name, values in columns.items():
            t = text_schema.field(name).type if text_schema is not None else None
            bad = _first_bad(values, t)
            if bad is not None:
                raise InputError(
                    f"{path}: row {done + bad} (line {lines[bad]}): column {name!r}: {e}",
                    "make the column one type throughout"
                    if schema is None
                    else "fix the value, or the schema",
                ) from None
        raise InputError(f"{path}: lines {lines[0]}-{lines[-1]}: {e}") from None
    if schema is not None:
        try:
            table = _conform(table, schema, str(path), done)
        except InputError as e:
            found = re.search(r"row (\d+)", e.message)
            if found:
                line = lines[int(found[1]) - done]
                raise InputError(f"{e.message} (line {line})", e.hint) from None
            raise
    yield from table.to_batches()
