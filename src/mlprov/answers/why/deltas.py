"""Deltas: the rows of a step's changes file that a question is about.

A step recorded with `changes_root` has an indexed changes file (ADR 0021): its index is
checked against that root, and only the parts that can hold the keys and digests asked
after are read, each checked against its digest in the index
(:mod:`mlprov.records.changesreader`). A value no part's range holds has no row and
costs no read.

Otherwise (a ledger recorded before, or a question by a column the file is not sorted
by) the file is trusted as a whole: it is named by the SHA-256 of its bytes (ADR 0008),
so it is hashed as it is read from disk, a buffer at a time, never held whole; its rows
are then decoded a batch at a time and only those about the records asked after are
kept: by key, by digest before the step, or by the key a removed duplicate was a
duplicate of. Both ways give the same rows, in the same order.
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
from mlprov.records.changesreader import open_changes

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

    def __init__(self, directory: Path, digest: Digest, root: Digest | None = None) -> None:
        self.directory, self.digest = directory, Digest(digest)
        self.root = None if root is None else Digest(root)
        self._wanted: dict[str, set[Any]] = {c: set() for c in _LOOKED_UP}
        self._found: dict[tuple[str, Any], list[dict[str, Any]]] = {}

    @property
    def path(self) -> Path:
        return self.directory / f"{self.digest.hex}{_SUFFIX}"

    def rows(self, column: str, value: Any) -> list[dict[str, Any]]:
        """The rows whose `column` (key, before or duplicate_of) equals `value`."""
        if (column, value) not in self._found:
            self.want(column, [value])
            self.read([column])
        return self._found.get((column, value), [])

    def want(self, column: str, values: Iterable[Any]) -> None:
        """Keep the rows with these values too, when the file is next read."""
        self._wanted[column].update(v for v in values if v is not None)

    def read(self, columns: Iterable[str] | None = None) -> None:
        """Check the file (or the parts of it needed) and keep the rows wanted by
        `columns` (all: None); NotFoundError or IntegrityError. From an indexed file, a
        column it is not sorted by is read (whole) only when asked for by name."""
        asked = _LOOKED_UP if columns is None else tuple(columns)
        wanted = {
            c: sorted((v for v in self._wanted[c] if (c, v) not in self._found), key=repr)
            for c in asked
        }
        wanted = {c: values for c, values in wanted.items() if values}
        if not wanted:
            return
        if self.root is not None:
            file = open_changes(self.path, self.root)
            try:
                for column in [c for c in wanted if file.indexed(c)]:
                    for value, rows in file.rows(column, wanted.pop(column)).items():
                        self._found[column, value] = [_completed(r) for r in rows]
            finally:
                file.close()
            if columns is None:
                return  # the rest when asked for
        if wanted:
            self._read_whole(wanted)

    def _read_whole(self, wanted: dict[str, list[Any]]) -> None:
        source = _opened(self.directory, self.digest)
        try:
            # Streamed a buffer at a time: a capture writes row groups of a million rows,
            # which read whole would take several times the memory of the rows kept.
            file = pq.ParquetFile(source, buffer_size=_BUFFER, pre_buffer=False)
            kept = []
            for batch in file.iter_batches(batch_size=_BATCH):
                table = _complete(pa.Table.from_batches([batch]))
                mask = None
                for column, values in wanted.items():
                    kind = CHANGES_SCHEMA.field(column).type
                    hit = pc.is_in(table.column(column), value_set=pa.array(values, kind))
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
        found = pa.concat_tables(kept) if kept else CHANGES_SCHEMA.empty_table()
        for column, values in wanted.items():
            kind = CHANGES_SCHEMA.field(column).type
            column_values = found.column(column)
            for value in values:
                hits = found.filter(pc.equal(column_values, pa.scalar(value, kind)))
                self._found[column, value] = hits.to_pylist()


def _completed(row: dict[str, Any]) -> dict[str, Any]:
    """A row with every column of the schema, in its order."""
    return {name: row.get(name) for name in CHANGES_SCHEMA.names}


def _complete(table: pa.Table) -> pa.Table:
    """A file written before a column existed: that column empty."""
    for field in CHANGES_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(CHANGES_SCHEMA.names)
