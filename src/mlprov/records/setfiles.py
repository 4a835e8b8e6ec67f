"""How a record set is kept on disk: one Parquet file per root, written as a draft beside
where it will be kept (while the root is still being hashed), then synced and renamed into
place under the folder's save lock.

A file indexes itself (``mlprov.record-set/v4``, ADR 0004, 0011 and 0020), so that a proof
or an answer reads one shard, not the set:

- the set's rows, sorted by digest, come first, then its *subject rows*: the digest and
  subject of every row that names a subject (keys left out), sorted by subject; both are
  cut into row groups of :data:`GROUP_ROWS` rows;
- the footer's ``mlprov.index`` (JSON) gives the number of each, where each record shard
  and each subject shard begins among them, and the 512 top-tree leaves (each shard's
  root and size), which must give the root in the file's name; and ``pairs``, the 512
  leaves of the pairs commitment (:mod:`mlprov.records.pairs`) of each set saved there
  (several, when saves of one root with different keys were merged).

A ``/v3`` file is the same without ``pairs``: still read, shard by shard. A reader checks
the leaves against the root and each shard it reads against its leaf
(:mod:`mlprov.records.setreader`). A ``/v2`` file has no index and is read whole.
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

from mlprov.records.halves import DIGEST_SIZE
from mlprov.records.hashing import as_matrix
from mlprov.records.setproofs import SHARDS

__all__ = [
    "EARLIER",
    "FORMAT",
    "GROUP_ROWS",
    "INDEX",
    "INDEXED",
    "SCHEMA",
    "Draft",
    "read_pairs",
    "read_rows",
    "saving",
    "shard_starts",
    "subject_order",
]

#: The format a set file names in its metadata (``mlprov.format``).
FORMAT = "mlprov.record-set/v4"
#: Formats whose files index themselves: v3 lacks the pairs leaves.
INDEXED = (FORMAT, "mlprov.record-set/v3")
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
_NO_BYTES = np.zeros(0, np.uint8)


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
                order = subject_order(table)
                _write_groups(writer, fd, table)
                _write_groups(writer, fd, table, order)
            except BaseException:
                writer.close()
                raise
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        index = {
            "rows": table.num_rows,
            "subject_rows": len(order),
            "records": shard_starts(table.column("digest")),
            "subjects": _starts(_subject_matrix(table)[order, 0] if len(order) else _NO_BYTES),
        }
        return cls(tmp, fd, writer, index)

    def finish(
        self,
        path: Path,
        root: bytes,
        shards: Sequence[tuple[bytes, int]],
        pairs: Sequence[list[list[Any]]] = (),
    ) -> None:
        """Name the root, the 512 shards (root, size: records, then subjects) and the
        pairs leaves of each set saved in the file in the footer, and put it in place."""
        try:
            index = {
                **self._index,
                "shards": [[r.hex(), n] for r, n in shards],
                "pairs": list(pairs),
            }
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
    if form not in {f.encode() for f in INDEXED} or INDEX not in meta:
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


def read_pairs(path: Path) -> list[Any]:
    """The pairs leaves listed in a set file's index, unchecked ([] when it lists none)."""
    try:
        meta = pq.ParquetFile(path).metadata.metadata or {}
        listed = json.loads(meta[INDEX]).get("pairs", []) if INDEX in meta else []
    except (pa.ArrowException, OSError, ValueError, AttributeError):
        return []
    return listed if isinstance(listed, list) else []


def _subject_matrix(table: Any) -> Any:
    column = table.column("subject")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return as_matrix(column)


def subject_order(table: Any) -> Any:
    """The rows of ``table`` (sorted by digest) that name a subject, in the order of their
    subjects (stably: a subject's rows stay in digest order), as row numbers.

    Only the first eight bytes of each subject are sorted, and the rest compared where
    they tie, a million pairs at a time: no copy of the rows is made."""
    column = table.column("subject")
    if column.null_count == len(column):
        return np.zeros(0, np.int64)
    valid = np.flatnonzero(np.asarray(pc.is_valid(column)))
    words = _subject_matrix(table).view(">u8")  # big-endian words order as bytes do
    first = words[valid, 0].astype(np.uint64)
    ranked = valid[np.argsort(first, kind="stable")]
    del first
    step = 1 << 20
    for start in range(0, len(ranked) - 1, step):
        b = words[ranked[start + 1 : start + 1 + step]]
        a = words[ranked[start : start + len(b)]]
        differs = a != b
        col = differs.argmax(axis=1)
        rows = np.arange(len(a))
        if not bool(np.all(~differs.any(axis=1) | (a[rows, col] < b[rows, col]))):
            # Two subjects share their first eight bytes, out of order: sort on all 32.
            keys = [words[valid, k].astype(np.uint64) for k in (3, 2, 1, 0)]
            return valid[np.lexsort(keys)]
    return ranked


def shard_starts(column: Any) -> list[int]:
    """Where each shard's rows begin in a column of 32-byte values sorted by value, and
    the number of rows: 257 row numbers."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return _starts(np.ascontiguousarray(as_matrix(column)[:, 0]))


def _starts(leading: Any) -> list[int]:
    starts = np.searchsorted(leading, np.arange(SHARDS, dtype=np.uint8), side="left")
    return [*(int(o) for o in starts), len(leading)]


def _write_groups(writer: pq.ParquetWriter, fd: int, table: Any, order: Any = None) -> None:
    """Write ``table``'s rows, or (given ``order``) its subject rows in that order."""
    pairs = table.select(["digest", "subject"]) if order is not None else None
    count = table.num_rows if order is None else len(order)
    for start in range(0, count, GROUP_ROWS):
        if pairs is None:
            writer.write_table(table.slice(start, GROUP_ROWS))
        else:
            part = pairs.take(pa.array(order[start : start + GROUP_ROWS]))
            keys = pa.nulls(part.num_rows, pa.string())
            columns = [part.column("digest"), keys, part.column("subject")]
            writer.write_table(pa.Table.from_arrays(columns, schema=writer.schema))
        if (start + GROUP_ROWS) % _SYNC_ROWS == 0:
            _sync_and_drop(fd)
    _sync_and_drop(fd)


def _sync_and_drop(fd: int) -> None:
    """Put what was written to ``fd`` on disk, and drop it from the page cache."""
    getattr(os, "fdatasync", os.fsync)(fd)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
