"""CSV files as record batches: read with a schema, since CSV holds only text.

The header must name exactly the schema's columns. An empty unquoted field is null, a
quoted ``""`` an empty string; no other text is null. A bad cell is reported with its
row (0-based) and line, found by re-reading the file with the standard library only
once Arrow has failed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from mlprov.errors import InputError
from mlprov.records.schemas import ARROW_ERRORS, after_row, check_names, same_columns

__all__ = ["read_csv"]

_CSV_COLUMN = re.compile(
    r"In CSV column #(\d+): CSV conversion error to ([^:]+): invalid value '(.*)'"
)


def read_csv(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The rows of a CSV file, typed by ``schema``, in batches of at most ``batch_size``."""
    check_names(schema.names, "the schema")
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
        check_names(header, f"{path}: the header")
        same_columns(header, schema.names, f"{path}: the header")
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(schema.names)
            done += table.num_rows
            yield from table.to_batches(max_chunksize=batch_size)
    except InputError:
        raise
    except ARROW_ERRORS as e:
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
    return InputError(f"{path}: cannot read it as CSV{after_row(done)}: {message}", hint)


def _find_csv_row(path: Path, bad: Callable[[list[str]], bool]) -> tuple[int, int] | None:
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
