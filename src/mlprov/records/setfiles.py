"""How a record set is kept on disk: one Parquet file per root, written as a draft beside
where it will be kept (while the root is still being hashed), then synced and renamed into
place under the folder's save lock.

A file indexes itself (``mlprov.record-set/v3``, ADR 0004), so that a proof or an answer
reads one shard, not the set:

- the set's rows, sorted by digest, come first, then its *subject rows*: the digest and
  subject of every row that names a subject (keys left out), sorted by subject; both are
  cut into row groups of :data:`GROUP_ROWS` rows;
- the footer's ``mlprov.index`` (JSON) gives the number of each, where each record shard
  and each subject shard begins among them, and the 512 top-tree leaves (each shard's
  root and size), which must give the root in the file's name.

A reader checks the leaves against the root and each shard it reads against its leaf
(:mod:`mlprov.records.setfile`). A ``/v2`` file has no index and is read whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov.records.halves import DIGEST_SIZE, sort_order
from mlprov.records.hashing import as_matrix
from mlprov.records.setproofs import SHARDS

__all__ = [
    "EARLIER",
    "FORMAT",
    "GROUP_ROWS",
    "INDEX",
    "SCHEMA",
    "Draft",
    "read_rows",
    "saving",
    "shard_starts",
    "subject_rows",
]

#: The format a set file names in its metadata (``mlprov.format``).
FORMAT = "mlprov.record-set/v3"
#: The same rows without the subject rows and the index: still read, whole.
EARLIER = "mlprov.record-set/v2"
#: The footer metadata key of the index.
INDEX = b"mlprov.index"
#: Rows per row group: a shard of a set of millions is read in a few groups.
GROUP_ROWS = 1 << 16
#: The columns of a set file.
SCHEMA = pa.schema(
    [
        pa.field("digest", pa.binary(DIGEST_SIZE), nullable=False),
        pa.field("key", pa.string()),
        pa.field("subject", pa.binary(DIGEST_SIZE)),
    ]
)
_LOCK_FILE = ".save.lock"
_SYNC_ROWS = 1 << 18  # rows written, then synced and dropped from the page cache at once


@contextmanager
def saving(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s save lock. Deciding that a set file is new and renaming a draft
    into place, or reading the file and replacing it with the merge, is one step: without
    the lock, two saves of the same root could both read the old file and the second
    replace the first's merge, losing its rows. The lock goes with its descriptor, so a
    process that dies holding it releases it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: saves of one root are not serialised
        yield
        return
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Draft:
    """A set's rows written to a temporary file beside where it will be kept: finished
    (the root in its metadata, synced, renamed into place) or discarded.

    The rows go out a row group at a time, each synced and then dropped from the page
    cache: a set file is written once and read rarely, and caching the whole of it would
    take new memory the size of the file."""

    def __init__(self, tmp: str, fd: int, writer: pq.ParquetWriter, index: dict[str, Any]) -> None:
        self.tmp, self._fd, self._writer, self._index = tmp, fd, writer, index

    @classmethod
    def write(cls, directory: Path, table: Any) -> Draft:
        """Write ``table`` (in SCHEMA, sorted by digest) and then its subject rows."""
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".parquet")
        try:
            # By path, Arrow writes from its own threads; through a Python file object every
            # page would pass through the interpreter. Digests and subject hashes are random
            # bytes: compressing them, a dictionary of them or their min and max would only
            # cost time (a third of it, for large sets).
            writer = pq.ParquetWriter(
                tmp,
                SCHEMA.with_metadata({b"mlprov.format": FORMAT.encode()}),
                compression={"digest": "none", "key": "snappy", "subject": "none"},
                use_dictionary=False,
                write_statistics=False,
            )
            try:
                table = table.replace_schema_metadata(writer.schema.metadata)
                pairs = subject_rows(table)
                _write_groups(writer, fd, table)
                _write_groups(writer, fd, pairs)
            except BaseException:
                writer.close()
                raise
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        index = {
            "rows": table.num_rows,
            "subject_rows": pairs.num_rows,
            "records": shard_starts(table.column("digest")),
            "subjects": shard_starts(pairs.column("subject")),
        }
        return cls(tmp, fd, writer, index)

    def finish(self, path: Path, root: bytes, shards: Sequence[tuple[bytes, int]]) -> None:
        """Name the root and the 512 shards (root, size: records, then subjects) in the
        footer, and put the file in place."""
        try:
            index = {**self._index, "shards": [[r.hex(), n] for r, n in shards]}
            self._writer.add_key_value_metadata(
                {b"mlprov.root": root.hex().encode(), INDEX: json.dumps(index).encode()}
            )
            self._writer.close()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.replace(self.tmp, path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        try:
            self._writer.close()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            Path(self.tmp).unlink(missing_ok=True)


def read_rows(path: Path) -> tuple[Any, bytes | None]:
    """A set file's rows (its subject rows left out) and the format its metadata names.

    Raises pyarrow's errors, or OSError, for a file that is not readable Parquet."""
    file = pq.ParquetFile(path)
    meta = file.metadata.metadata or {}  # with what was added when it was finished
    form = meta.get(b"mlprov.format")
    if form != FORMAT.encode() or INDEX not in meta:
        return file.read(), form
    rows = json.loads(meta[INDEX])["rows"]
    if not isinstance(rows, int) or not 0 <= rows <= file.metadata.num_rows:
        raise pa.ArrowInvalid(f"its index counts {rows!r} rows, which it does not hold")
    groups: list[int] = []
    start = 0
    while start < rows:  # the set's rows come first, in groups of their own
        groups.append(len(groups))
        start += file.metadata.row_group(len(groups) - 1).num_rows
    table = file.read_row_groups(groups) if groups else file.schema_arrow.empty_table()
    return table.slice(0, rows), form


def subject_rows(table: Any) -> Any:
    """The digest and subject of each row of ``table`` that names a subject, sorted by
    subject (stably: a subject's rows stay in digest order), keys left out."""
    named = table.filter(pc.is_valid(table.column("subject")))
    named = named.set_column(1, SCHEMA.field("key"), pa.nulls(named.num_rows, pa.string()))
    column = named.column("subject")
    if not named.num_rows:
        return named
    order = sort_order(as_matrix(column.combine_chunks()))
    return named if order is None else named.take(pa.array(order))


def shard_starts(column: Any) -> list[int]:
    """Where each shard's rows begin in a column of 32-byte values sorted by value, and
    the number of rows: 257 row numbers."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    leading = np.ascontiguousarray(as_matrix(column)[:, 0])
    starts = np.searchsorted(leading, np.arange(SHARDS, dtype=np.uint8), side="left")
    return [*(int(o) for o in starts), len(column)]


def _write_groups(writer: pq.ParquetWriter, fd: int, table: Any) -> None:
    for start in range(0, table.num_rows, GROUP_ROWS):
        writer.write_table(table.slice(start, GROUP_ROWS))
        if (start + GROUP_ROWS) % _SYNC_ROWS == 0:
            _sync_and_drop(fd)
    _sync_and_drop(fd)


def _sync_and_drop(fd: int) -> None:
    """Put what was written to ``fd`` on disk, and drop it from the page cache."""
    getattr(os, "fdatasync", os.fsync)(fd)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
