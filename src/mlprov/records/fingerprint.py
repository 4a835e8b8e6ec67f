"""Fingerprinting: a data source read once into its record set, keys and subject hashes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError
from mlprov.records.readers import digest_batch, read_batches
from mlprov.records.sets import RecordSet
from mlprov.records.subjects import SubjectHasher

__all__ = ["Fingerprint", "fingerprint"]


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
    digests: list[bytes] = []
    keys: list[str] = []
    subjects: list[bytes | None] = []
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
            digests.extend(digest_batch(batch, first_row=rows))
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}", exc.hint) from None
        if key is not None:
            for i, value in enumerate(batch.column(key).to_pylist()):
                if value is None or value == "":
                    raise InputError(
                        f"{where}: row {rows + i + 1}: the key column {key!r} is empty",
                        "every record needs a key; fill it, or choose another --key column",
                    )
                keys.append(str(value))
        if subject is not None and hasher is not None:
            values = batch.column(subject).to_pylist()
            subjects.extend(
                hasher.hash_many((None if v is None else str(v) for v in values), memo=memo)
            )
        rows += batch.num_rows
        if progress is not None:
            progress(rows)
    if key is not None:
        _refuse_repeated_keys(keys, key, where)
    path = Path(source) if isinstance(source, str | Path) else None
    records = RecordSet.build(digests, keys or None, subjects or None)
    return Fingerprint(records, rows, digest_file(path) if path and path.is_file() else None)


def _refuse_repeated_keys(keys: list[str], column: str, where: str) -> None:
    first: dict[str, int] = {}
    for row, value in enumerate(keys, start=1):
        earlier = first.setdefault(value, row)
        if earlier != row:
            raise InputError(
                f"{where}: rows {earlier} and {row} have the same key {value!r} in {column!r}",
                "a key must name one record; deduplicate first, or choose another --key column",
            )
