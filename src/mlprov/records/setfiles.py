"""How a record set is kept on disk: one Parquet file per root, written as a draft beside
where it will be kept (while the root is still being hashed), then synced and renamed into
place under the folder's save lock.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlprov.records.halves import DIGEST_SIZE

__all__ = ["FORMAT", "SCHEMA", "Draft", "saving"]

#: The format a set file names in its metadata (``mlprov.format``).
FORMAT = "mlprov.record-set/v2"
#: The columns of a set file.
SCHEMA = pa.schema(
    [
        pa.field("digest", pa.binary(DIGEST_SIZE), nullable=False),
        pa.field("key", pa.string()),
        pa.field("subject", pa.binary(DIGEST_SIZE)),
    ]
)
_LOCK_FILE = ".save.lock"
_ROW_GROUP_ROWS = 1 << 18  # rows written, synced and dropped from the page cache at once


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

    def __init__(self, tmp: str, fd: int, writer: pq.ParquetWriter) -> None:
        self.tmp, self._fd, self._writer = tmp, fd, writer

    @classmethod
    def write(cls, directory: Path, table: Any) -> Draft:
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
                for start in range(0, max(table.num_rows, 1), _ROW_GROUP_ROWS):
                    writer.write_table(table.slice(start, _ROW_GROUP_ROWS))
                    _sync_and_drop(fd)
            except BaseException:
                writer.close()
                raise
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        return cls(tmp, fd, writer)

    def finish(self, path: Path, root: bytes) -> None:
        try:
            self._writer.add_key_value_metadata({b"mlprov.root": root.hex().encode()})
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


def _sync_and_drop(fd: int) -> None:
    """Put what was written to ``fd`` on disk, and drop it from the page cache."""
    getattr(os, "fdatasync", os.fsync)(fd)
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
