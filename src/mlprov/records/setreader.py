"""A saved record set read a shard at a time, each shard checked against the root.

:func:`open_set` opens a set file without reading its rows. The footer's index
(:mod:`mlprov.records.setfiles`) gives the 512 top-tree leaves, which must give the root
in the file's name, and where each shard's rows lie. A shard is read when a question
needs it (its row groups only), and its unique values must hash to its leaf's root and
count to its size, with the rows on either side of it in other shards: then its rows are
those of the whole file, which a whole load would have checked the same way. So a proof,
or the rows of one digest or subject, costs one or two shards, whatever the set's size.

Looking rows up by subject reads the subject's shard of the *subject rows* (digest and
subject, sorted by subject) for its digests, then their record shards for the rows
themselves. Looking up by key reads the key column (keys are not sorted or committed),
then the record shards of the digests found. A file of the earlier format, without the
index, is loaded whole (:meth:`~mlprov.records.sets.RecordSet.load`).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov import merkle
from mlprov.errors import IntegrityError
from mlprov.records.halves import DIGEST_SIZE, Half, unique_rows
from mlprov.records.hashing import as_matrix
from mlprov.records.pairs import Pairs
from mlprov.records.setfiles import INDEX, INDEXED, SCHEMA
from mlprov.records.setproofs import SHARDS, Kind, shard_leaf
from mlprov.records.sets import NAME, RecordSet
from mlprov.records.setviews import SetView, lookup

__all__ = ["SetFile", "open_set"]

_RESTORE = "the file was altered; restore it from a trusted copy"


def open_set(path: Path) -> SetView:
    """The set saved at ``path``: read a shard at a time when the file has its index,
    loaded whole otherwise. InputError, NotFoundError or IntegrityError as for
    :meth:`RecordSet.load`."""
    path = Path(path)
    if not NAME.fullmatch(path.name) or not path.is_file():
        return RecordSet.load(path)  # which says what is wrong
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowException, OSError):
        return RecordSet.load(path)
    meta = file.metadata.metadata or {}
    if meta.get(b"mlprov.format") not in {f.encode() for f in INDEXED} or INDEX not in meta:
        return RecordSet.load(path)
    return SetFile(path, file, meta[INDEX])


def _offsets(index: dict[str, Any], name: str, rows: int) -> list[int]:
    found = index.get(name)
    if (
        not isinstance(found, list)
        or len(found) != SHARDS + 1
        or not all(isinstance(o, int) for o in found)
        or found[0] != 0
        or found[-1] != rows
        or any(b < a for a, b in pairwise(found))
    ):
        raise ValueError(f"its `{name}` are not {SHARDS + 1} ascending row numbers")
    return found


def _shards(index: dict[str, Any]) -> list[tuple[bytes, int]]:
    found = index.get("shards")
    if not isinstance(found, list) or len(found) != 2 * SHARDS:
        raise ValueError(f"it does not list {2 * SHARDS} shards")
    shards = []
    for item in found:
        root, size = item
        if not isinstance(size, int) or not 0 <= size < 2**64:
            raise ValueError(f"a shard size {size!r} is not a count")
        raw = bytes.fromhex(root)
        if len(raw) != merkle.HASH_SIZE:
            raise ValueError(f"a shard root {root!r} is not 32 bytes")
        shards.append((raw, size))
    return shards


class SetFile(SetView):
    """A set file with its index, read a shard at a time (see the module doc)."""

    def __init__(self, path: Path, file: pq.ParquetFile, index: bytes) -> None:
        self.path, self._file = path, file
        try:
            parsed = json.loads(index)
            self.rows = int(parsed["rows"])
            named = int(parsed["subject_rows"])
            if self.rows + named != file.metadata.num_rows or min(self.rows, named) < 0:
                raise ValueError(f"it counts {self.rows} and {named} rows, which the file lacks")
            self._starts = {
                "record": _offsets(parsed, "records", self.rows),
                "subject": [self.rows + o for o in _offsets(parsed, "subjects", named)],
            }
            self._leaves = _shards(parsed)
            listed = parsed.get("pairs", [])  # none in a /v3 file
            if not isinstance(listed, list):
                raise ValueError("its `pairs` are not a list")
            self._pairs = [Pairs.from_index(p) for p in listed]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"the index in {path.name} is malformed: {exc}", _RESTORE
            ) from None
        groups = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
        self._group_starts = [0, *np.cumsum(groups).tolist()]
        self._read: dict[tuple[Kind, int], tuple[pa.Table, Half]] = {}
        want = path.name.removesuffix(".parquet")
        if self.root.hex() != want:
            raise IntegrityError(
                f"the shard roots and sizes in the index of {path.name} give root "
                f"{self.root.hex()}, not the root in its name",
                "the file was altered or renamed; restore it from a trusted copy",
            )

    def __repr__(self) -> str:
        return f"SetFile(size={self.size}, rows={self.rows}, root={self.root.hex()})"

    # -- the commitment, from the index ---------------------------------------------------

    @cached_property
    def _top(self) -> merkle.MemoryTree:
        return merkle.MemoryTree([merkle.leaf_hash(shard_leaf(r, n)) for r, n in self._leaves])

    def _shard(self, kind: Kind, shard: int) -> tuple[bytes, int]:
        self._shard_number(shard)
        return self._leaves[shard + (SHARDS if kind == "subject" else 0)]

    @property
    def size(self) -> int:
        return sum(n for _, n in self._leaves[:SHARDS])

    @property
    def subject_count(self) -> int:
        return sum(n for _, n in self._leaves[SHARDS:])

    # -- shards, read and checked ---------------------------------------------------------

    def _rows(self, lo: int, hi: int, columns: list[str] | None = None) -> pa.Table:
        """Rows [lo, hi) of the file, from the row groups that hold them."""
        if hi <= lo:
            return SCHEMA.empty_table().select(columns or SCHEMA.names)
        first = bisect_right(self._group_starts, lo) - 1
        last = bisect_right(self._group_starts, hi - 1) - 1
        try:
            table = self._file.read_row_groups(range(first, last + 1), columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise IntegrityError(f"{self.path.name} cannot be read: {exc}", _RESTORE) from None
        return table.slice(lo - self._group_starts[first], hi - lo)

    def _part(self, kind: Kind, shard: int) -> tuple[pa.Table, Half]:
        """A shard's rows and its values, checked against its top-tree leaf."""
        self._shard_number(shard)
        found = self._read.get((kind, shard))
        if found is not None:
            return found
        starts = self._starts[kind]
        lo, hi = starts[shard], starts[shard + 1]
        edge = (starts[0], starts[-1])  # the rows of this half
        # One row either side: it must not belong to this shard, or rows were left out.
        wide = self._rows(max(lo - 1, edge[0]), min(hi + 1, edge[1]))
        column = "subject" if kind == "subject" else "digest"
        values = wide.column(column)
        if values.null_count:
            self._refuse(kind, shard, f"a row has no {column}")
        leading = as_matrix(values.combine_chunks())[:, 0]
        inside = leading == shard
        before = 1 if lo > edge[0] else 0
        rows = wide.slice(before, hi - lo)
        if int(inside.sum()) != hi - lo or not bool(inside[before : before + hi - lo].all()):
            self._refuse(kind, shard, "its rows are not where the index says")
        matrix = as_matrix(rows.column(column).combine_chunks())
        unique = np.ascontiguousarray(unique_rows(np.ascontiguousarray(matrix)))
        root, size = self._shard(kind, shard)
        # A shard is a few thousand values: hashlib beats a query per tree level, and the
        # tree is the one its proofs need.
        data = unique.tobytes()
        tree = merkle.MemoryTree(
            [merkle.leaf_hash(data[i : i + DIGEST_SIZE]) for i in range(0, len(data), DIGEST_SIZE)]
        )
        if len(unique) != size or tree.root() != root:
            self._refuse(kind, shard, f"its {len(unique)} values do not give its root and size")
        half = Half(unique)  # out of order, they would not have given the root
        half.keep_tree(shard, tree)
        self._read[(kind, shard)] = (rows, half)
        return rows, half

    def _pairs_for(self, pairs_root: bytes) -> list[Pairs]:
        return [p for p in self._pairs if p.root == pairs_root]

    def _record_rows(self, shard: int) -> Any:
        return self._part("record", shard)[0]

    def _refuse(self, kind: Kind, shard: int, what: str) -> None:
        raise IntegrityError(
            f"{kind} shard {shard} of {self.path.name} does not match its index: {what}",
            _RESTORE,
        )

    def _shard_half(self, kind: Kind, shard: int) -> Half:
        return self._part(kind, shard)[1]

    # -- rows -----------------------------------------------------------------------------

    def where(self, column: str, value: Any) -> pa.Table:
        return self.where_any(column, [value])

    def where_any(self, column: str, values: Iterable[Any]) -> pa.Table:
        wanted = pa.array([lookup(column, v) for v in values], SCHEMA.field(column).type)
        if column == "digest":
            return self._in_records(wanted.to_pylist(), column, wanted)
        if column == "subject":
            digests = []
            for shard in sorted({h[0] for h in wanted.to_pylist()}):
                named, _ = self._part("subject", shard)
                hits = named.filter(pc.is_in(named.column("subject"), value_set=wanted))
                digests += hits.column("digest").to_pylist()
            return self._in_records(digests, column, wanted)
        found = []  # keys: a scan of the key column, a row group at a time
        groups = bisect_right(self._group_starts, self.rows - 1) if self.rows else 0
        for g in range(groups):
            keys = self._file.read_row_group(g, columns=["key"]).column("key")
            hits = pc.indices_nonzero(pc.is_in(keys, value_set=wanted))
            if len(hits):
                digests = self._file.read_row_group(g, columns=["digest"]).column("digest")
                found += digests.take(hits).to_pylist()
        return self._in_records(found, column, wanted)

    def _in_records(self, digests: list[bytes], column: str, wanted: pa.Array) -> pa.Table:
        """The rows of these digests' record shards whose ``column`` is one of ``wanted``,
        in digest order."""
        parts = []
        for shard in sorted({d[0] for d in digests}):
            rows, _ = self._part("record", shard)
            parts.append(rows.filter(pc.is_in(rows.column(column), value_set=wanted)))
        if not parts:
            return SCHEMA.empty_table()
        return pa.concat_tables(parts).replace_schema_metadata(None)

    def subjects_in(self, subject_hashes: Iterable[bytes]) -> set[bytes]:
        by_shard: dict[int, list[bytes]] = {}
        for h in {self._checked(bytes(h), "subject") for h in subject_hashes}:
            by_shard.setdefault(h[0], []).append(h)
        found: set[bytes] = set()
        for shard, wanted in sorted(by_shard.items()):
            rows, _ = self._part("subject", shard)
            column = rows.column("subject")
            values = pa.array(wanted, pa.binary(DIGEST_SIZE))
            found.update(pc.unique(column.filter(pc.is_in(column, value_set=values))).to_pylist())
        return found
