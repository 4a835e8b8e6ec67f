"""Lineage: what one step did to each record, found by key, without re-hashing what it kept.

A :class:`Snapshot` is what capture knows of one data object: each row's record digest,
key and subject hash, in row order, and — until a step consumes it — its content as Arrow.
:func:`follow` compares a step's output with its input: output rows are matched to input
rows by key; a matched row whose values all compare equal keeps its digest without being
hashed again (a filter or a sort hashes nothing), and only the rest are hashed. A row keeps
the subject of the input row it came from, so redacting a subject column does not lose
whom a record concerns. Without a key column, rows are matched by digest: a changed record
then shows as one removed and one added.

The result is a :class:`Changes` table — removed, changed and added records as keys and
digests with a reason, never contents — saved content-addressed beside the record sets. A
changed record names the columns whose values the step changed (unknown, and left empty,
when a column holds nested values Arrow cannot compare); a record removed as a duplicate
names the key of the record kept in its place (`duplicate_of`), when the step says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.records import changesfiles
from mlprov.records.hashing import as_array, as_matrix
from mlprov.records.readers import digest_rows
from mlprov.records.sets import RecordSet
from mlprov.records.subjects import SubjectHasher
from mlprov.store import blobs

__all__ = [
    "CHANGES_SCHEMA",
    "Changes",
    "Snapshot",
    "exclude",
    "first",
    "follow",
    "hash_rows",
    "load_changes",
]

Matrix = np.ndarray[Any, np.dtype[np.uint8]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]
_BATCH = 1 << 18  # rows per hashing call: fewer calls, still bounded memory
_SUBJECT = pa.binary(32)
CHANGES_SCHEMA = pa.schema(
    [
        pa.field("change", pa.string(), nullable=False),  # removed | changed | added
        pa.field("key", pa.string()),
        pa.field("before", pa.binary(32)),
        pa.field("after", pa.binary(32)),
        pa.field("reason", pa.string()),
        pa.field("columns", pa.list_(pa.string())),  # changed: the columns whose values changed
        pa.field("duplicate_of", pa.string()),  # removed: the key of the record kept instead
    ]
)
_MAX_COLUMNS = 64  # per-record column names are tracked as bits of one uint64


def hash_rows(table: pa.Table, where: str) -> Matrix:
    """Each row's record digest, as an (n, 32) matrix in row order."""
    parts: list[Matrix] = []
    done = 0
    for batch in table.to_batches(max_chunksize=_BATCH):
        try:
            digests = digest_rows(batch, first_row=done)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}", exc.hint) from None
        parts.append(as_matrix(digests))
        done += batch.num_rows
    if not parts:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.concatenate(parts)


def _keys(table: pa.Table, column: str, where: str) -> pa.Array:
    """The key column, unique and never empty: integers as they are (cheaper to match),
    anything else as text."""
    if column not in table.column_names:
        raise InputError(
            f"{where} has no key column {column!r}",
            "keep the key column through every step: mlprov follows each record by it",
        )
    values = table.column(column).combine_chunks()
    kind = values.type
    if pa.types.is_integer(kind):
        keys = values
        empty = pc.is_null(keys)
    else:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            keys = pc.cast(values, pa.string())
        else:
            text = [None if v is None else str(v) for v in values.to_pylist()]
            keys = pa.array(text, pa.string())
        empty = pc.fill_null(pc.equal(keys, ""), True)
    if pc.any(empty).as_py():
        row = pc.index(empty, True).as_py()
        raise InputError(
            f"{where}: row {row}: the key column {column!r} is empty",
            "every record needs a key",
        )
    if pc.count_distinct(keys).as_py() != len(keys):
        counts = pc.value_counts(keys)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise InputError(
            f"{where}: the key {repeated!r} names more than one row in {column!r}",
            "a key must name one record; a step that adds rows must give them new keys",
        )
    return keys


def _text(keys: pa.Array) -> pa.Array:
    """Keys as they are written into record sets and changes files: text (an integer's
    decimal digits)."""
    return keys if pa.types.is_string(keys.type) else pc.cast(keys, pa.string())


def _kept_keys(table: pa.Table, before: Snapshot) -> pa.Array | None:
    """The input's keys, when the step left its key column as it was (a map): they need
    neither checking nor matching again."""
    column = before.key_column
    if before.keys is None or column is None or column not in table.column_names:
        return None
    values = table.column(column)
    if values.type != before.keys.type or len(values) != len(before.keys):
        return None
    return before.keys if values.combine_chunks().equals(before.keys) else None


def _found_keys(table: pa.Table, before: Snapshot) -> tuple[pa.Array, np.ndarray[Any, Any]] | None:
    """The output's keys and where each is among the input's, when every one of them is an
    input key named once (a filter, a sort, a sample): being the input's, they are present
    and unique without checking them again. None otherwise (then they are checked)."""
    column = before.key_column
    if before.keys is None or column is None or column not in table.column_names:
        return None
    values = table.column(column).combine_chunks()
    if values.type != before.keys.type:
        return None
    found = pc.index_in(values, value_set=before.keys)
    if found.null_count:
        return None
    pos = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
    named = np.zeros(len(before.keys), dtype=bool)
    named[pos] = True
    if int(np.count_nonzero(named)) != len(pos):  # an input key named twice
        return None
    return values, pos


def _equal_rows(a: Matrix, b: Matrix) -> Mask:
    """Which rows of two (n, 32) matrices hold the same bytes (compared as 64-bit words)."""
    words_a = np.ascontiguousarray(a).view(np.uint64)
    words_b = np.ascontiguousarray(b).view(np.uint64)
    return np.asarray((words_a == words_b).all(axis=1), dtype=bool)


def _positions(keys: pa.Array, earlier: pa.Array) -> np.ndarray[Any, Any]:
    """Where each key is among the earlier keys (-1: not there)."""
    if keys.type != earlier.type:  # a step retyped the key column: compare the text
        keys, earlier = _text(keys), _text(earlier)
    found = pc.index_in(keys, value_set=earlier)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _subjects(
    table: pa.Table, column: str | None, hasher: SubjectHasher | None, where: str
) -> pa.Array:
    if column is None or hasher is None:
        return pa.nulls(table.num_rows, _SUBJECT)
    if column not in table.column_names:
        raise InputError(
            f"{where} has no subject column {column!r}",
            "its columns are: " + ", ".join(table.column_names),
        )
    try:
        return hasher.hash_array(table.column(column).combine_chunks())
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}", exc.hint) from None


@dataclass(frozen=True)
class Snapshot:
    """Row-ordered digests, keys and subject hashes of one data object."""

    digests: Matrix
    keys: pa.Array | None  # integers or text; None when records are followed by digest
    subjects: pa.Array
    key_column: str | None
    subject_column: str | None
    table: pa.Table | None  # the content, until a step consumes it

    @property
    def rows(self) -> int:
        return len(self.digests)

    def released(self) -> Snapshot:
        """This snapshot without its content (a later step then hashes what it gets)."""
        return replace(self, table=None)

    def filtered(self, keep: Mask) -> Snapshot:
        mask = pa.array(keep)
        return Snapshot(
            self.digests[keep],
            None if self.keys is None else self.keys.filter(mask),
            self.subjects.filter(mask),
            self.key_column,
            self.subject_column,
            None if self.table is None else self.table.filter(mask),
        )

    def record_set(self) -> RecordSet:
        keys = _text(self.keys) if self.keys is not None else pa.nulls(self.rows, pa.string())
        return RecordSet.from_table(
            pa.table({"digest": as_array(self.digests), "key": keys, "subject": self.subjects})
        )


def first(
    table: pa.Table,
    *,
    key: str | None,
    subject: str | None,
    hasher: SubjectHasher | None,
    where: str,
) -> Snapshot:
    """The snapshot of a source: every row hashed, keys checked, subjects keyed-hashed."""
    keys = _keys(table, key, where) if key is not None else None
    subjects = _subjects(table, subject, hasher, where)
    return Snapshot(hash_rows(table, where), keys, subjects, key, subject, table)


@dataclass(frozen=True)
class Changes:
    """What a step did, record by record: removed, changed and added, by key and digest."""

    table: pa.Table  # CHANGES_SCHEMA
    kept: int
    matched_by: str  # "key" or "digest"

    def counts(self, rows_in: int, rows_out: int) -> dict[str, int]:
        kinds = self.table.column("change")
        count = {k: pc.sum(pc.equal(kinds, k)).as_py() or 0 for k in ("removed", "changed")}
        return {
            "in": rows_in,
            "out": rows_out,
            "kept": self.kept,
            "changed": count["changed"],
            "removed": count["removed"],
            "added": rows_out - self.kept - count["changed"],
        }

    def save(self, directory: Path) -> Digest | None:
        """Write the changes (see :meth:`saved`); the SHA-256 of the file, None if none."""
        return self.saved(directory)["changes"]

    def saved(self, directory: Path) -> dict[str, Digest | None]:
        """Write the changes as an indexed Parquet file named by the SHA-256 of its bytes
        (ADR 0021), sorted and indexed in the same pass that writes it: that digest as
        `changes` and the root of its parts as `changes_root` (the step event's fields),
        both None when the step changed nothing."""
        if self.table.num_rows == 0:
            return {"changes": None, "changes_root": None}
        data, root = changesfiles.write(self.table, self.matched_by)
        return {"changes": blobs.put(directory, data, ".changes.parquet"), "changes_root": root}


def load_changes(directory: Path, digest: Digest) -> pa.Table:
    """A step's saved changes, checked against the digest its event recorded."""
    data = blobs.get(
        directory,
        digest,
        ".changes.parquet",
        "the changes file",
        "it is written beside the record sets by the run that recorded the step",
    )
    table = pq.read_table(pa.BufferReader(data))
    for field in CHANGES_SCHEMA:  # a file written before a column existed: that column empty
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(CHANGES_SCHEMA.names)


@dataclass(frozen=True)
class _Part:
    change: str
    keys: pa.Array
    before: pa.Array
    after: pa.Array
    reason: str | None = None
    columns: pa.Array | None = None
    duplicate_of: pa.Array | None = None


def _changes(parts: list[_Part]) -> pa.Table:
    tables = []
    for part in parts:
        n = len(part.keys)
        if n == 0:
            continue
        columns = part.columns if part.columns is not None else pa.nulls(n, pa.list_(pa.string()))
        dupes = part.duplicate_of if part.duplicate_of is not None else pa.nulls(n, pa.string())
        tables.append(
            pa.table(
                {
                    "change": pa.array([part.change] * n, pa.string()),
                    "key": part.keys,
                    "before": part.before,
                    "after": part.after,
                    "reason": pa.array([part.reason] * n, pa.string()),
                    "columns": columns,
                    "duplicate_of": dupes,
                },
                schema=CHANGES_SCHEMA,
            )
        )
    return pa.concat_tables(tables) if tables else CHANGES_SCHEMA.empty_table()


@dataclass(frozen=True)
class _Compared:
    """Which output rows hold exactly their input row's values, and for the others which
    columns differ: bit i of `bits` is column `names[i]` (None: not known)."""

    same: Mask
    names: tuple[str, ...] | None = None
    bits: np.ndarray[Any, np.dtype[np.uint64]] | None = None

    def columns(self, rows: Mask) -> pa.Array | None:
        """The changed columns of the rows in `rows`, as lists of names."""
        if self.names is None or self.bits is None:
            return None
        picked = self.bits[rows]
        values, index = np.unique(picked, return_inverse=True)
        lists = [[n for i, n in enumerate(self.names) if int(v) >> i & 1] or None for v in values]
        return pa.array(lists, pa.list_(pa.string())).take(pa.array(index.reshape(-1)))


def _compare(before: pa.Table | None, pos: np.ndarray[Any, Any], after: pa.Table) -> _Compared:
    """Compare each output row with the input row at `pos` (-1: none), column by column."""
    matched = pos >= 0
    none = np.zeros(len(pos), dtype=bool)
    if before is None or not matched.any():
        return _Compared(none)
    was = {f.name: f.type for f in before.schema}
    now = {f.name: f.type for f in after.schema}
    names = tuple(dict.fromkeys([*was, *now]))
    if len(names) > _MAX_COLUMNS:
        return _Compared(none)
    bits = np.zeros(len(pos), dtype=np.uint64)
    # A map keeps the rows in place: compare columns as they are, and skip equal ones whole.
    in_place = len(pos) == before.num_rows and bool(np.array_equal(pos, np.arange(len(pos))))
    at = None if in_place else pa.array(np.where(matched, pos, 0))
    for i, name in enumerate(names):
        bit = np.uint64(1 << i)
        if was.get(name) != now.get(name):  # added, dropped or retyped: every row differs
            bits |= bit
            continue
        a = after.column(name)
        if at is None:
            b = before.column(name)
            if a.equals(b):
                continue
        else:
            b = before.column(name).take(at)
        try:
            eq = pc.fill_null(pc.equal(a, b), False)
        except pa.ArrowNotImplementedError:  # nested values: let their digests decide
            return _Compared(none)
        both = pc.and_(pc.is_null(a), pc.is_null(b))
        if pa.types.is_floating(now[name]):
            both = pc.or_(both, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
        differs = ~np.asarray(pc.or_(eq, both).to_numpy(zero_copy_only=False), dtype=bool)
        bits[differs] |= bit
    return _Compared(matched & (bits == 0), names, bits)


def follow(
    before: Snapshot, after: pa.Table, hasher: SubjectHasher | None, where: str, reason: str
) -> tuple[Snapshot, Changes]:
    """The output's snapshot and what the step changed, matching rows by key (or digest);
    a removed row carries `reason` (the step's name)."""
    n = after.num_rows
    if before.keys is not None and before.key_column is not None:
        keys: pa.Array | None = _kept_keys(after, before)
        if keys is not None:  # a map: every row where it was, its key checked already
            pos = np.arange(n, dtype=np.int64)
        else:
            found = _found_keys(after, before)
            if found is None:
                keys = _keys(after, before.key_column, where)
                pos = _positions(keys, before.keys)
            else:
                keys, pos = found
        compared = _compare(before.table, pos, after)
        same = compared.same
        digests = np.empty((n, 32), dtype=np.uint8)
        digests[same] = before.digests[pos[same]]
        if not same.all():
            digests[~same] = hash_rows(after.filter(pa.array(~same)), where)
        matched_by = "key"
    else:
        keys = None
        digests = hash_rows(after, where)
        found = pc.index_in(as_array(digests), value_set=as_array(before.digests))
        pos = found.fill_null(-1).to_numpy()
        compared = _Compared(np.zeros(n, dtype=bool))
        matched_by = "digest"
    matched = pos >= 0
    origin = before.digests[np.where(matched, pos, 0)]
    kept = matched & _equal_rows(digests, origin)
    changed = matched & ~kept
    present = np.zeros(before.rows, dtype=bool)
    present[pos[matched]] = True
    subjects = _inherit(before, pos, matched, after, hasher, where)
    snapshot = Snapshot(digests, keys, subjects, before.key_column, before.subject_column, after)
    return snapshot, Changes(
        _report(
            before, snapshot, ~present, changed, ~matched, origin, reason, compared.columns(changed)
        ),
        int(kept.sum()),
        matched_by,
    )


def _inherit(
    before: Snapshot,
    pos: np.ndarray[Any, Any],
    matched: Mask,
    after: pa.Table,
    hasher: SubjectHasher | None,
    where: str,
) -> pa.Array:
    """Each output row's subject: its input row's; for a new row, from its subject column."""
    subjects = before.subjects.take(pa.array(np.where(matched, pos, 0)))
    if matched.all():
        return subjects
    column = before.subject_column
    fresh = (
        _subjects(after, column, hasher, where)
        if column is not None and column in after.column_names
        else pa.nulls(after.num_rows, _SUBJECT)
    )
    return pc.if_else(pa.array(matched), subjects, fresh)


def _report(
    before: Snapshot,
    after: Snapshot,
    removed: Mask,
    changed: Mask,
    added: Mask,
    origin: Matrix,
    reason: str | None,
    columns: pa.Array | None = None,
    duplicate_of: pa.Array | None = None,
) -> pa.Table:
    none = pa.nulls(0, pa.binary(32))

    def keys(snap: Snapshot, mask: Mask) -> pa.Array:
        if snap.keys is None:
            return pa.nulls(int(mask.sum()), pa.string())
        return _text(snap.keys.filter(pa.array(mask)))

    def pad(mask: Mask) -> pa.Array:
        return pa.nulls(int(mask.sum()), pa.binary(32)) if mask.any() else none

    return _changes(
        [
            _Part(
                "removed",
                keys(before, removed),
                as_array(before.digests[removed]),
                pad(removed),
                reason,
                duplicate_of=duplicate_of,
            ),
            _Part(
                "changed",
                keys(after, changed),
                as_array(origin[changed]),
                as_array(after.digests[changed]),
                columns=columns,
            ),
            _Part("added", keys(after, added), pad(added), as_array(after.digests[added])),
        ]
    )


def exclude(
    before: Snapshot, remove: Mask, reason: str, duplicate_of: pa.Array | None = None
) -> tuple[Snapshot, Changes]:
    """Drop the rows in `remove`: nothing is hashed, and each removal carries `reason` (and,
    from `duplicate_of` — text keys, one per input row — the record kept in its place)."""
    keep = ~remove
    after = before.filtered(keep)
    nothing = np.zeros(after.rows, dtype=bool)
    dupes = None if duplicate_of is None else duplicate_of.filter(pa.array(remove))
    table = _report(before, after, remove, nothing, nothing, after.digests, reason, None, dupes)
    return after, Changes(table, after.rows, "key" if before.keys is not None else "digest")
