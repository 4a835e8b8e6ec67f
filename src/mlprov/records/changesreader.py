"""An indexed changes file read a part at a time, each part checked against the step's root.

:func:`open_changes` reads the footer of a file of :data:`~mlprov.records.changesfiles.FORMAT`
and trusts none of its index until its leaves give the root the step's event recorded
(`changes_root`): the parts' first and last values, sizes and digests, and the list of
records removed as duplicates. A part is read only when a question needs it; its rows
must hash to its digest, count to its size, be in order and begin and end with the
values the index gives, or the file is refused. Rows of one value are then all in the
parts whose range holds it, so reading those answers as reading the whole file would
(ADR 0021). A value outside every part's range has no row, and costs no read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov.digest import Digest
from mlprov.errors import IntegrityError, NotFoundError
from mlprov.records.changesfiles import FORMAT, INDEX, ascending, index_root, part_digest

__all__ = ["ChangesFile", "open_changes"]

_RESTORE = "the file was altered; restore it from a trusted copy"
_Key = tuple[int, int, str]  # a value: shortest first, then by its bytes; none last


def _sort_key(value: str | None) -> _Key:
    return (1, 0, "") if value is None else (0, len(value.encode()), value)


def _check_index(index: Any) -> tuple[str, list[dict[str, Any]], list[list[Any]]]:
    """The index's parts and duplicates, when they have the shape written; ValueError."""
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"it is not a {FORMAT} index")
    by, parts, duplicates = index.get("by"), index.get("parts"), index.get("duplicates")
    if by not in ("key", "before") or not isinstance(parts, list):
        raise ValueError("its sort column or its parts are missing")
    for part in parts:
        if (
            not isinstance(part, dict)
            or not isinstance(part.get("rows"), int)
            or part["rows"] < 1
            or not all(isinstance(part.get(k), str | None) for k in ("first", "last"))
            or not isinstance(part.get("digest"), str)
        ):
            raise ValueError("a part's entry is not first, last, rows and digest")
    if not isinstance(duplicates, list) or not all(
        isinstance(d, list)
        and len(d) == 3
        and isinstance(d[0], str)
        and all(isinstance(x, int) for x in d[1:])
        for d in duplicates
    ):
        raise ValueError("its duplicates are not [key, part, row] each")
    if any(a[0] > b[0] for a, b in pairwise(duplicates)):
        raise ValueError("its duplicates are not in order")
    return by, parts, duplicates


class ChangesFile:
    """One indexed changes file, its index checked against a root (see the module doc)."""

    def __init__(self, path: Path, root: Digest) -> None:
        self.path = path
        name = path.name
        if not path.is_file():
            raise NotFoundError(
                f"the changes file {name} is not in {path.parent}",
                "it is written beside the record sets by the run that recorded the step",
            )
        try:
            self._file = pq.ParquetFile(path, pre_buffer=False)
            meta = self._file.metadata.metadata or {}
            if INDEX not in meta:
                raise IntegrityError(
                    f"the changes file {name} has no index, but its step recorded one",
                    _RESTORE,
                )
            self.by, self._parts, self._duplicates = _check_index(orjson.loads(meta[INDEX]))
        except (pa.ArrowException, OSError, ValueError, orjson.JSONDecodeError) as exc:
            raise IntegrityError(
                f"the changes file {name} cannot be read: {exc}", _RESTORE
            ) from None
        if index_root(self.by, self._parts, self._duplicates) != Digest(root):
            raise IntegrityError(
                f"the index of the changes file {name} does not give the root its step recorded",
                _RESTORE,
            )
        meta = self._file.metadata
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        bounds = [(_sort_key(p["first"]), _sort_key(p["last"])) for p in self._parts]
        if (
            groups != [p["rows"] for p in self._parts]
            or any(first > last for first, last in bounds)
            or any(a[1] > b[0] for a, b in pairwise(bounds))
        ):
            raise IntegrityError(
                f"the changes file {name}: its parts are not the row groups its index lists, "
                "in order",
                _RESTORE,
            )
        self._firsts = [b[0] for b in bounds]
        self._lasts = [b[1] for b in bounds]
        self._read: dict[int, pa.Table] = {}

    def close(self) -> None:
        self._file.close()

    def indexed(self, column: str) -> bool:
        """Whether rows by `column` can be found a part at a time."""
        return column in (self.by, "duplicate_of")

    def parts_of(self, value: str) -> list[int]:
        """The parts whose range holds `value` of the sort column (none: it has no row)."""
        at = _sort_key(value)
        # parts from the first whose last value is not below it to the last whose first
        # value is not above it
        return list(range(bisect_left(self._lasts, at), bisect_right(self._firsts, at)))

    def part(self, number: int) -> pa.Table:
        """The rows of one part, checked (IntegrityError if they are not the index's)."""
        if number in self._read:
            return self._read[number]
        entry = self._parts[number]
        where = f"part {number + 1} of the changes file {self.path.name}"
        try:
            rows = self._file.read_row_group(number, use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"{where} cannot be read: {exc}", _RESTORE) from None
        if rows.num_rows != entry["rows"] or part_digest(rows) != bytes.fromhex(entry["digest"]):
            raise IntegrityError(f"{where} does not match the digest its index gives", _RESTORE)
        if not _in_order(rows.column(self.by).combine_chunks(), entry):
            raise IntegrityError(f"{where} is not in order within its range", _RESTORE)
        self._read[number] = rows
        return rows

    def rows(self, column: str, values: Iterable[Any]) -> dict[Any, list[dict[str, Any]]]:
        """The rows naming each value of `column` (the sort column or duplicate_of), in
        the order of the file."""
        if column == "duplicate_of":
            return {v: self._duplicates_of(v) for v in values}
        found: dict[Any, list[dict[str, Any]]] = {}
        for value in values:
            shown = value if self.by == "key" else bytes(value).hex()
            hits: list[dict[str, Any]] = []
            for number in self.parts_of(shown):
                rows = self.part(number)
                kind = rows.schema.field(self.by).type
                mask = pc.equal(rows.column(self.by), pa.scalar(value, kind))
                hits += rows.filter(pc.fill_null(mask, False)).to_pylist()
            found[value] = hits
        return found

    def _duplicates_of(self, key: str) -> list[dict[str, Any]]:
        found = _between(self._duplicates, key)
        rows = []
        for _, number, row in found:
            part = self.part(number)
            if not 0 <= row < part.num_rows:
                raise IntegrityError(
                    f"the index of the changes file {self.path.name} names a row that is not "
                    f"in part {number + 1}",
                    _RESTORE,
                )
            [found_row] = part.slice(row, 1).to_pylist()
            if found_row["duplicate_of"] != key:
                raise IntegrityError(
                    f"the index of the changes file {self.path.name} names a row of part "
                    f"{number + 1} that is not a duplicate of key {key}",
                    _RESTORE,
                )
            rows.append(found_row)
        return rows


def _shown(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else bytes(value).hex()


def _in_order(values: pa.Array, entry: dict[str, Any]) -> bool:
    """Whether a part's sort values are in the file's order, from the first value its
    index entry gives to the last."""
    n = len(values)
    if n == 0 or not ascending(values):
        return False
    ends = (_shown(values[0].as_py()), _shown(values[n - 1].as_py()))
    return ends == (entry["first"], entry["last"])


def _between(duplicates: Sequence[list[Any]], key: str) -> Sequence[list[Any]]:
    names = [d[0] for d in duplicates]
    return duplicates[bisect_left(names, key) : bisect_right(names, key)]


def open_changes(path: Path, root: Digest) -> ChangesFile:
    """The indexed changes file at `path`, its index checked against `root`."""
    return ChangesFile(path, root)
