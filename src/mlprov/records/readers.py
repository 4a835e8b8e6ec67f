"""Read records from files and data frames as Arrow record batches, and digest them.

Every source becomes a stream of ``pyarrow.RecordBatch`` of at most ``batch_size`` rows;
:func:`digest_rows` turns a batch into one raw record digest per row
(``mlprov-record/1``, see :mod:`mlprov.records.canonical`). How each reader maps its
source to Arrow is part of the spec (``docs/spec/record-digest.md``, "Readers"):

* Parquet, Arrow IPC / Feather: read as stored, in batches (Parquet ``iter_batches``).
* CSV (:mod:`~mlprov.records.csvfile`): needs a schema, as CSV has no types.
* JSONL / NDJSON (:mod:`~mlprov.records.jsonl`): strict JSON, line by line.
* pandas, polars, ``datasets.Dataset``, ``pyarrow.Table``/``RecordBatch`` and lists of
  dicts (:mod:`~mlprov.records.frames`).

This module dispatches on the source; :mod:`~mlprov.records.schemas` holds the checks
all readers share.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from mlprov.errors import InputError, NotFoundError
from mlprov.records.csvfile import read_csv
from mlprov.records.digests import digest_batch, digest_rows
from mlprov.records.frames import (
    from_datasets,
    from_dicts,
    from_pandas,
    from_polars,
    table_batches,
)
from mlprov.records.jsonl import read_jsonl
from mlprov.records.schemas import ARROW_ERRORS, after_row, conform

__all__ = ["SUFFIXES", "digest_batch", "digest_rows", "read_batches", "regular_file"]

SUFFIXES = {
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
}


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
        return table_batches(source, schema, batch_size, "the table")
    if isinstance(source, list | tuple):
        return table_batches(from_dicts(source, schema), schema, batch_size, "the rows")
    root = type(source).__module__.partition(".")[0]
    if root == "pandas":
        return table_batches(from_pandas(source), schema, batch_size, "the DataFrame")
    if root == "polars":
        return table_batches(from_polars(source), schema, batch_size, "the DataFrame")
    if root == "datasets":
        return from_datasets(source, schema, batch_size)
    raise InputError(
        f"cannot read records from a {type(source).__module__}.{type(source).__qualname__}",
        "pass a path (.parquet, .jsonl, .ndjson, .csv, .arrow, .feather), a pyarrow Table, "
        "a pandas or polars DataFrame, a datasets.Dataset or a list of dicts",
    )


def regular_file(path: Path) -> Path:
    """`path`, checked at once to be an existing, readable regular file: a FIFO, socket or
    device is refused before anything opens it (a FIFO with no writer would block)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}", "check the path") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a directory, not a file", "name one file")
    if not stat.S_ISREG(mode):
        raise InputError(
            f"{path} is not a regular file (it is a FIFO, socket or device)",
            "name a regular file; copy the data to one first",
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}", "check its permissions")
    return path


def _read_path(path: Path, schema: pa.Schema | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    regular_file(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: cannot tell its format from the suffix {path.suffix!r}",
            f"name a file ending in {', '.join(SUFFIXES)}",
        )
    if kind == "csv" and schema is None:
        raise InputError(
            f"{path}: a CSV file needs a schema, as CSV holds only text",
            "pass schema=pyarrow.schema([...]) naming each column's type",
            cli_hint="pass --schema with each column's Arrow type, e.g. "
            '\'{"id": "int64", "text": "string"}\' (see `mlprov fingerprint --help`)',
        )
    if kind == "parquet":
        return _read_parquet(path, schema, batch_size)
    if kind == "arrow":
        return _read_arrow(path, schema, batch_size)
    if kind == "csv":
        assert schema is not None
        return read_csv(path, schema, batch_size)
    return read_jsonl(path, schema, batch_size)


def _read_parquet(
    path: Path, schema: pa.Schema | None, batch_size: int
) -> Iterator[pa.RecordBatch]:
    done = 0
    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=batch_size):
            if schema is not None:
                batch = conform(pa.Table.from_batches([batch]), schema, str(path), done)
                yield from batch.to_batches(max_chunksize=batch_size)
            else:
                yield batch
            done += batch.num_rows
    except ARROW_ERRORS as e:
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
                    table = conform(table, schema, str(path), done)
                done += table.num_rows
                yield from table.to_batches(max_chunksize=batch_size)
    except ARROW_ERRORS as e:
        raise InputError(
            f"{path}: cannot read it as Arrow IPC (Feather v2){after_row(done)}: {e}",
            "the file may be truncated, corrupt or another format; write it again",
        ) from None
