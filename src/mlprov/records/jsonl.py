"""JSONL / NDJSON files as record batches, parsed line by line with the standard library.

Strict JSON (no NaN, no duplicate keys), so text stays text: Arrow's own JSON reader would
turn ``"2024-01-02"`` into a timestamp. Without a schema a column must keep one JSON kind
(string, number, bool, array, object) through the file; with one, strings are cast to its
dates, timestamps and decimals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlprov.errors import InputError
from mlprov.records.schemas import ARROW_ERRORS, check_names, conform, first_bad, no_columns

__all__ = ["read_jsonl"]

_KIND = {
    bool: "a bool",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def read_jsonl(path: Path, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The rows of a JSONL file, in batches of at most ``batch_size``."""
    text_schema = None
    if schema is not None:
        check_names(schema.names, "the schema")
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
        yield from no_columns(len(rows)).to_batches()
        return
    try:
        table = pa.table(columns, schema=text_schema)
    except ARROW_ERRORS as e:
        for name, values in columns.items():
            t = text_schema.field(name).type if text_schema is not None else None
            bad = first_bad(values, t)
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
            table = conform(table, schema, str(path), done)
        except InputError as e:
            found = re.search(r"row (\d+)", e.message)
            if found:
                line = lines[int(found[1]) - done]
                raise InputError(
                    f"{e.message} (line {line})", e.hint, cli_hint=e.cli_hint
                ) from None
            raise
    yield from table.to_batches()
