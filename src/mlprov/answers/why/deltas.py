"""Deltas: the rows of a step's changes file that a question is about.

A changes file is named by the SHA-256 of its bytes (ADR 0008), so trusting any row of it
means hashing all of it: the file is hashed as it is read from disk, a buffer at a time,
never held whole. Its rows are then decoded a batch at a time and only those about the
records asked after are kept: by key, by digest before the step, or by the key a
removed duplicate was a duplicate of. A question about another record reads the file
again, for it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov.capture.lineage import CHANGES_SCHEMA
from mlprov.digest import Digest
from mlprov.errors import IntegrityError, NotFoundError

__all__ = ["Deltas"]

_SUFFIX = ".changes.parquet"
_BATCH = 1 << 14  # rows decoded at a time
_BUFFER = 1 << 20  # bytes read at a time while decoding
_CHUNK = 1 << 22  # bytes hashed at a time
_LOOKED_UP = ("key", "before", "duplicate_of")


def _opened(directory: Path, digest: Digest) -> Any:
    """The changes file, open, once its bytes are checked against its digest: it is read
    through the descriptor it was hashed through, so a file put in its place after the
    check is not the one read."""
    path = directory / f"{digest.hex}{_SUFFIX}"
    try:
        source = pa.OSFile(str(path))
    except FileNotFoundError:
        raise NotFoundError(
            f"the changes file {path.name} is not in {directory}",
            "it is written beside the record sets by the run that recorded the step",
        ) from None
    sha = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        sha.update(chunk)
    if sha.hexdigest() != digest.hex:
        source.close()
        raise IntegrityError(
            f"{path.name} does not match its digest",
            "the file was altered; restore it from a trusted copy",
        )
    source.seek(0)
    return source


class Deltas:
    """One step's changes, read for the keys and digests asked after (see the module doc)."""

    def __init__(self, directory: Path, digest: Digest) -> None:
        self.directory, self.digest = directory, Digest(digest)
        self._wanted: dict[str, set[Any]] = {c: set() for c in _LOOKED_UP}
        self._rows: pa.Table | None = None

    def rows(self, column: str, value: Any) -> list[dict[str, Any]]:
        """The rows whose `column` (key, before or duplicate_of) equals `value`."""
        if self._rows is None or value not in self._wanted[column]:
            self.want(column, [value])
            self.read()
        assert self._rows is not None
        kind = CHANGES_SCHEMA.field(column).type
        found = self._rows.filter(pc.equal(self._rows.column(column), pa.scalar(value, kind)))
        return found.to_pylist()  # type: ignore[no-any-return]

    def want(self, column: str, values: Iterable[Any]) -> None:
        """Keep the rows with these values too, when the file is next read."""
        self._wanted[column].update(v for v in values if v is not None)

    def read(self) -> None:
        """Check the file and keep the rows wanted; NotFoundError or IntegrityError."""
        source = _opened(self.directory, self.digest)
        try:
            # Streamed a buffer at a time: a capture writes row groups of a million rows,
            # which read whole would take several times the memory of the rows kept.
            file = pq.ParquetFile(source, buffer_size=_BUFFER, pre_buffer=False)
            kept = []
            for batch in file.iter_batches(batch_size=_BATCH):
                table = _complete(pa.Table.from_batches([batch]))
                mask = None
                for column, values in self._wanted.items():
                    if not values:
                        continue
                    kind = CHANGES_SCHEMA.field(column).type
                    hit = pc.is_in(table.column(column), value_set=pa.array(list(values), kind))
                    mask = hit if mask is None else pc.or_(mask, hit)
                if mask is not None:
                    kept.append(table.filter(mask))
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(
                f"the changes file {self.digest.hex}{_SUFFIX} matches its digest but cannot "
                f"be read: {exc}",
                "it was written by another program; restore it from a trusted copy",
            ) from None
        finally:
            source.close()
        self._rows = pa.concat_tables(kept) if kept else CHANGES_SCHEMA.empty_table()


def _complete(table: pa.Table) -> pa.Table:
    """A file written before a column existed: that column empty."""
    for field in CHANGES_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(CHANGES_SCHEMA.names)
