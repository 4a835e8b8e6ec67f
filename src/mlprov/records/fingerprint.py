"""Fingerprinting: a data source read once into its record set, keys and subject hashes.

A flat Parquet file or Arrow table (text, integers, booleans) is read, encoded and hashed
by one DataFusion query on every core (:mod:`mlprov.records.scan`), which hands its
rows back sorted by digest; the distinct subjects are then found while the keys become
text.

Any other source, and any the scan leaves (errors to name with their rows), takes the
batch pipeline. A reading thread decodes each batch and turns it into Arrow columns
(canonical bytes, key text, normalised subjects) with kernels that release the GIL,
while the calling thread hashes the previous batch's canonical bytes; a third thread
hashes the file's bytes for its byte digest. No stage makes a Python object per row on
the flat path (text, integers, booleans). Subjects are hashed once per distinct value at
the end, and rows sorted by digest one column at a time, so memory holds about one copy
of the 32-byte columns plus a few batches.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError
from mlprov.records.digests import canonical_column
from mlprov.records.halves import DIGEST_SIZE, Matrix, sort_order, take_rows
from mlprov.records.hashing import as_array, decimal_text, sha256
from mlprov.records.readers import read_batches
from mlprov.records.scan import Scanned, scan
from mlprov.records.sets import SCHEMA, RecordSet, distinct_subjects
from mlprov.records.subjectcolumns import normalise_column, subject_text
from mlprov.records.subjects import SubjectHasher

__all__ = ["Fingerprint", "fingerprint"]

_AHEAD = 2  # batches read ahead of hashing: enough to overlap, little memory
_BATCH_ROWS = 1 << 17


@dataclass(frozen=True)
class Fingerprint:
    """What a source holds, without its contents: record digests, keys, subject hashes."""

    records: RecordSet
    rows: int
    byte_digest: Digest | None  # of the file's bytes, when the source is a file


@dataclass(frozen=True)
class _Batch:
    """One batch made ready for hashing: Arrow columns only."""

    rows: int
    canonical: pa.Array
    keys: pa.Array | None
    key_numbers: pa.Array | None  # an integer key column as it is: checked by numpy
    subjects: pa.Array | None


@dataclass
class _Found:
    """Everything read, before sorting: digests as one matrix, keys and subjects as text."""

    digests: Matrix
    keys: pa.ChunkedArray | None
    key_numbers: list[pa.Array] | None
    subjects: pa.ChunkedArray | None
    rows: int


def _label(source: Any) -> str:
    return str(source) if isinstance(source, str | os.PathLike) else type(source).__name__


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
    path = Path(source) if isinstance(source, str | os.PathLike) else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlprov-bytes") as pool:
        byte_digest = _start_byte_digest(pool, path)
        scanned = None
        if schema is None:
            scanned = scan(source, key=key, subject=subject, hasher=hasher, progress=progress)
        if scanned is not None:
            records = _scanned_set(scanned)
            rows = scanned.rows
        else:
            records, rows = _read_set(source, key, subject, hasher, schema, progress, where)
        return Fingerprint(records, rows, _finish_byte_digest(byte_digest, path))


def _read_set(
    source: Any,
    key: str | None,
    subject: str | None,
    hasher: SubjectHasher | None,
    schema: pa.Schema | None,
    progress: Callable[[int], None] | None,
    where: str,
) -> tuple[RecordSet, int]:
    """The batch pipeline: any source, and the errors named with their rows."""
    # A missing file fails here, at once. Batches of 128k rows keep every core busy
    # hashing, with fewer queries than the default 64k.
    batches = read_batches(source, schema=schema, batch_size=_BATCH_ROWS)
    with closing(_ahead(_prepare(batches, key, subject, where))) as prepared:
        found = _hash(prepared, progress)
    if key is not None:
        _refuse_repeated_keys(found, key, where)
    hashed = _subject_hashes(found, hasher)
    return RecordSet(_sorted_table(found, hashed)), found.rows


def _scanned_set(scanned: Scanned) -> RecordSet:
    """The set of a scan (already sorted by digest), made from it column by column; its
    distinct subjects are found while the keys become text."""
    digests = scanned.digests
    assert digests is not None
    scanned.digests = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlprov-subjects") as pool:
        subjects = pool.submit(distinct_subjects, scanned.subjects)
        keys = _text_keys(scanned.keys, scanned.rows)
        scanned.keys = None
        distinct = subjects.result()
    named = scanned.subjects
    scanned.subjects = None
    columns = [
        as_array(digests),
        keys,
        named if named is not None else pa.nulls(scanned.rows, pa.binary(DIGEST_SIZE)),
    ]
    return RecordSet.of_sorted(pa.Table.from_arrays(columns, schema=SCHEMA), digests, distinct)


def _text_keys(keys: pa.Array | None, rows: int) -> pa.Array:
    if keys is None:
        return pa.nulls(rows, pa.string())
    return keys if pa.types.is_string(keys.type) else decimal_text(keys)


def _start_byte_digest(
    pool: ThreadPoolExecutor, path: Path | None
) -> tuple[Future[Digest], os.stat_result] | None:
    """Hash the file's bytes beside the reading (hashlib releases the GIL on big chunks)."""
    if path is None or not path.is_file():
        return None
    before = path.stat()  # first: the hashing thread may finish before this line otherwise
    return pool.submit(digest_file, path), before


def _finish_byte_digest(
    started: tuple[Future[Digest], os.stat_result] | None, path: Path | None
) -> Digest | None:
    if started is None or path is None:
        return None
    future, before = started
    digest = future.result()
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            f"{path} changed while it was being fingerprinted",
            "fingerprint it again once nothing writes to it",
        )
    return digest


def _prepare(
    batches: Iterator[pa.RecordBatch], key: str | None, subject: str | None, where: str
) -> Iterator[_Batch]:
    """Each batch's canonical bytes, key text and normalised subjects (Arrow columns)."""
    done = 0
    for batch in batches:
        for column in (key, subject):
            if column is not None and column not in batch.schema.names:
                raise InputError(
                    f"{where} has no column {column!r}",
                    "its columns are: " + ", ".join(batch.schema.names),
                )
        try:
            canonical = canonical_column(batch, first_row=done)
            subjects = None
            if subject is not None:
                text = _as_text(batch.column(subject))
                subjects = normalise_column(text, "auto", first_row=done)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}", exc.hint, cli_hint=exc.cli_hint) from None
        keys = numbers = None
        if key is not None:
            keys = _keys(batch.column(key), key, where, done)
            numbers = batch.column(key) if pa.types.is_integer(batch.column(key).type) else None
        yield _Batch(batch.num_rows, canonical, keys, numbers, subjects)
        done += batch.num_rows


def _ahead(items: Iterator[_Batch]) -> Generator[_Batch, None, None]:
    """``items``, produced by a thread of their own up to `_AHEAD` items ahead.

    An error in the thread is raised here, in the caller's thread; leaving early stops it.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(("error", exc))
            return
        put(("end", None))

    thread = threading.Thread(target=produce, name="mlprov-read", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _hash(prepared: Iterator[_Batch], progress: Callable[[int], None] | None) -> _Found:
    digests: list[Matrix] = []
    keys: list[pa.Array] = []
    numbers: list[pa.Array] | None = []
    subjects: list[pa.Array] = []
    rows = 0
    for batch in prepared:
        hashed = sha256(batch.canonical)
        digests.append(np.frombuffer(hashed.buffers()[1], np.uint8).reshape(-1, DIGEST_SIZE))
        if batch.keys is not None:
            keys.append(batch.keys)
            if numbers is not None and batch.key_numbers is not None:
                numbers.append(batch.key_numbers)
            else:
                numbers = None
        if batch.subjects is not None:
            subjects.append(batch.subjects)
        rows += batch.rows
        if progress is not None:
            progress(rows)
    matrix = np.concatenate(digests) if digests else np.zeros((0, DIGEST_SIZE), np.uint8)
    digests.clear()
    return _Found(
        matrix,
        pa.chunked_array(keys, pa.string()) if keys else None,
        numbers if keys else None,
        pa.chunked_array(subjects, pa.string()) if subjects else None,
        rows,
    )


def _subject_hashes(found: _Found, hasher: SubjectHasher | None) -> pa.Array | None:
    """Each row's subject hash; the text is dropped as soon as it is hashed."""
    if found.subjects is None or hasher is None:
        return None
    hashed = hasher.hash_normalised(found.subjects)
    found.subjects = None
    return hashed


def _sorted_table(found: _Found, subjects: pa.Array | None) -> pa.Table:
    """The rows sorted by digest, in RecordSet.SCHEMA, one column copied at a time."""
    n = found.rows
    order = sort_order(found.digests)
    digests = found.digests if order is None else take_rows(found.digests, order)
    found.digests = digests
    indices = None if order is None else pa.array(order)

    def ordered(column: Any) -> Any:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        return column if indices is None else column.take(indices)

    keys = ordered(found.keys) if found.keys is not None else pa.nulls(n, pa.string())
    found.keys = None
    named = ordered(subjects) if subjects is not None else pa.nulls(n, pa.binary(DIGEST_SIZE))
    digest_array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(DIGEST_SIZE), n, [None, pa.py_buffer(digests)]
    )
    return pa.Table.from_arrays([digest_array, keys, named], schema=SCHEMA)


def _as_text(column: pa.Array) -> pa.Array:
    """A subject column as text: strings and integers by Arrow, anything else by str()."""
    try:
        return subject_text(column)
    except InputError:
        values = column.to_pylist()
        return pa.array([None if v is None else str(v) for v in values], pa.string())


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


def _distinct_keys(found: _Found) -> bool:
    if found.keys is None:
        return True
    if found.key_numbers:  # integers: a numpy sort, many times faster than hashing text
        numbers = np.sort(np.concatenate([np.asarray(n) for n in found.key_numbers]))
        found.key_numbers = None
        return not bool((numbers[1:] == numbers[:-1]).any())
    return bool(pc.count_distinct(found.keys).as_py() == len(found.keys))


def _refuse_repeated_keys(found: _Found, column: str, where: str) -> None:
    keys = found.keys
    if keys is None or _distinct_keys(found):
        return
    first: dict[str, int] = {}  # only on failure: find the first repeat and its rows
    for row, value in enumerate(keys.to_pylist(), start=1):
        earlier = first.setdefault(value, row)
        if earlier != row:
            raise InputError(
                f"{where}: rows {earlier} and {row} have the same key {value!r} in {column!r}",
                "a key must name one record; deduplicate first, or choose another --key column",
            )
