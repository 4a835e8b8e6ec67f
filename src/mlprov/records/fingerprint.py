"""Fingerprinting: a data source read once into its record set, keys and subject hashes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError
from mlprov.records.readers import digest_batch, read_batches
from mlprov.records.sets import RecordSet
from mlprov.records.subjects import SubjectHasher

__all__ = ["Fingerprint", "fingerprint"]

_MEMO_MAX = 200_000


@dataclass(frozen=True)
class Fingerprint:
    """What a source holds, without its contents: record digests, keys, subject hashes."""

    records: RecordSet
    rows: int
    byte_digest: Digest | None  # of the file's bytes, when the source is a file


def _label(source: Any) -> str:
    return str(source) if isinstance(source, str | Path) else type(source).__name__


def fingerprint(
    source: Any,
    *,
    key: str | None = None,
    subject: str | None = None,
    hasher: SubjectHasher | None = None,
    schema: pa.Schema | None = None,
    progress: Callable[[int], None] | None = None,
) -> Fingerprint:
    """Read `source` (a path or an in-memory table; see `read_batches`) into a Fingerprint.

    `key` names a column of stable record keys (no empty or repeated values); `subject`
    a column naming whom each record concerns, kept only as HMAC under `hasher`.
    """
    where = _label(source)
    if subject is not None and hasher is None:
        raise InputError("a subject column needs the ledger's subject secret")
    # Columns are kept as Arrow chunks, one per batch: a few bytes a record, not a Python
    # object per value (which would triple the memory of a five-million-row source).
    digests: list[pa.Array] = []
    keys: list[pa.Array] = []
    subjects: list[pa.Array] = []
    rows = 0
    memo: dict[str, bytes] = {}  # subject text -> hash, across batches
    for batch in read_batches(source, schema=schema):
        for column in (key, subject):
            if column is not None and column not in batch.schema.names:
                raise InputError(
                    f"{where} has no column {column!r}",
                    "its columns are: " + ", ".join(batch.schema.names),
                )
        try:
            digests.append(pa.array(digest_batch(batch, first_row=rows), pa.binary(32)))
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}", exc.hint) from None
        if key is not None:
            keys.append(_keys(batch.column(key), key, where, rows))
        if subject is not None and hasher is not None:
            if len(memo) > _MEMO_MAX:  # bounded: repeats are mostly near each other
                memo.clear()
            values = batch.column(subject).to_pylist()
            hashed = hasher.hash_many((None if v is None else str(v) for v in values), memo=memo)
            subjects.append(pa.array(hashed, pa.binary(32)))
        rows += batch.num_rows
        if progress is not None:
            progress(rows)
    n = rows
    table = pa.table(
        {
            "digest": pa.chunked_array(digests, pa.binary(32)),
            "key": pa.chunked_array(keys, pa.string()) if keys else pa.nulls(n, pa.string()),
            "subject": (
                pa.chunked_array(subjects, pa.binary(32))
                if subjects
                else pa.nulls(n, pa.binary(32))
            ),
        }
    )
    if key is not None:
        _refuse_repeated_keys(table.column("key"), key, where)
    path = Path(source) if isinstance(source, str | Path) else None
    records = RecordSet.from_table(table)
    return Fingerprint(records, rows, digest_file(path) if path and path.is_file() else None)


def _keys(column: pa.Array, name: str, where: str, first_row: int) -> pa.Array:
    """A key column as text, refusing empty keys with the row that has one."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        text = pc.cast(column, pa.string())
    elif pa.types.is_integer(column.type):
        text = pc.cast(column, pa.string())  # the same digits as str()
    else:
        text = pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
    empty = pc.or_kleene(pc.is_null(text), pc.equal(text, ""))
    if pc.any(empty).as_py():
        row = first_row + pc.index(empty, True).as_py()
        raise InputError(
            f"{where}: row {row + 1}: the key column {name!r} is empty",
            "every record needs a key; fill it, or choose another --key column",
        )
    return text


def _refuse_repeated_keys(keys: pa.ChunkedArray, column: str, where: str) -> None:
    if pc.count_distinct(keys).as_py() == len(keys):
        return
    first: dict[str, int] = {}  # only on failure: find the first repeat and its rows
    for row, value in enumerate(keys.to_pylist(), start=1):
        earlier = first.setdefault(value, row)
        if earlier != row:
            raise InputError(
                f"{where}: rows {earlier} and {row} have the same key {value!r} in {column!r}",
                "a key must name one record; deduplicate first, or choose another --key column",
            )
