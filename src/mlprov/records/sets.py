"""Record sets: a Merkle commitment to the records and subjects of a source, output or dataset.

A :class:`RecordSet` holds rows of ``(digest, key, subject)`` sorted by digest; its members
are the unique digests, its subjects the unique non-null subject hashes. Its root is fixed
by ADR 0004 (docs/adr/0004-record-sets.md): the members and the subjects are each cut into
256 shards by leading byte, each shard an RFC 9162 tree over its sorted values, under a
perfect top tree of 512 leaves (height 9) whose leaves commit to each shard's root and
size: record shards first, then subject shards. So both "record d is (not) in S" and
"subject h is (not) in S" can be proven. Keys, duplicate rows and which record belongs to
which subject are an index carried beside the commitment, not inside it.

Building sorts with numpy and hashes each shard on its own; the root needs every shard's
root, but a proof builds (and caches) only its own shard's tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov import merkle
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.records import hashing
from mlprov.records.halves import DIGEST_SIZE, Half, Matrix, is_sorted, sort_order, take_rows
from mlprov.records.hashing import as_matrix
from mlprov.records.pairs import Pairs
from mlprov.records.setfiles import (
    EARLIER,
    FORMAT,
    INDEXED,
    SCHEMA,
    Draft,
    read_pairs,
    read_rows,
    saving,
)
from mlprov.records.setproofs import Kind
from mlprov.records.setviews import SetView, lookup

__all__ = ["FORMAT", "SCHEMA", "RecordSet", "SetDiff", "diff", "distinct_subjects"]

_RETIRED_FORMAT = b"mlprov.record-set/v1"  # its root committed to the record digests only
NAME = re.compile(r"[0-9a-f]{64}\.parquet")


def _column(values: Any, kind: Any, what: str) -> Any:
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowException, TypeError, ValueError) as exc:  # wrong length or type
        hint = (
            "pass raw 32-byte SHA-256 digests (bytes), not hex text"
            if kind != pa.string()
            else "pass str or None"
        )
        raise InputError(f"the {what} column is malformed: {exc}", hint) from None


def distinct_subjects(column: Any) -> Matrix:
    """The distinct non-null values of a subject column, sorted, as an (n, 32) matrix."""
    if column is None or column.null_count == len(column):
        return np.zeros((0, DIGEST_SIZE), dtype=np.uint8)
    # A subject names many rows: sorting only the distinct hashes is the cheaper way.
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    matrix = hashing.distinct_rows(column)
    order = sort_order(matrix)
    return matrix if order is None else take_rows(matrix, order)


@dataclass(frozen=True, eq=False)
class RecordSet(SetView):
    """An immutable set of record digests and subject hashes, with each row's optional key.

    Make one with :meth:`build`, :meth:`from_table` or :meth:`load`; the constructor
    refuses a table that is not in :data:`SCHEMA` or not sorted by digest.
    """

    table: Any  # a pyarrow.Table in SCHEMA, sorted by digest
    _records: Half = field(init=False, repr=False)  # the unique digests
    _subjects: Half = field(init=False, repr=False)  # the unique non-null subject hashes

    def __post_init__(self) -> None:
        table = self.table
        if not isinstance(table, pa.Table) or not table.schema.equals(SCHEMA):
            raise InputError(
                "a record set needs a table in RecordSet.SCHEMA", "use RecordSet.from_table"
            )
        table = table.combine_chunks()
        column = table.column("digest")
        digests = column.chunk(0) if column.num_chunks else pa.array([], pa.binary(DIGEST_SIZE))
        if digests.null_count:
            raise InputError("the digest column has nulls", "every row needs its record digest")
        matrix = as_matrix(digests)
        if not is_sorted(matrix):
            raise InputError("the table is not sorted by digest", "use RecordSet.from_table")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "_records", Half(matrix))
        object.__setattr__(self, "_subjects", Half(distinct_subjects(table.column("subject"))))

    # -- making ---------------------------------------------------------------------------

    @classmethod
    def of_sorted(cls, table: Any, digests: Matrix, subjects: Matrix) -> RecordSet:
        """A set from parts already made, as fingerprinting makes them: ``table`` in
        SCHEMA sorted by digest, ``digests`` its digest column as a matrix, ``subjects``
        its distinct subject hashes sorted (:func:`distinct_subjects`). Nothing is
        checked again: the caller has sorted them."""
        made = object.__new__(cls)
        object.__setattr__(made, "table", table)
        object.__setattr__(made, "_records", Half(digests))
        object.__setattr__(made, "_subjects", Half(subjects))
        return made

    @classmethod
    def build(
        cls,
        digests: Sequence[bytes],
        keys: Sequence[str | None] | None = None,
        subjects: Sequence[bytes | None] | None = None,
    ) -> RecordSet:
        """Make a set from raw 32-byte digests and, row by row, optional keys and subjects."""
        n = len(digests)
        for what, values in (("keys", keys), ("subjects", subjects)):
            if values is not None and len(values) != n:
                msg = f"{len(values)} {what} were given for {n} digests"
                raise InputError(msg, f"pass one entry (or None) per digest in {what}")
        table = pa.table(
            {
                "digest": _column(digests, pa.binary(DIGEST_SIZE), "digest"),
                "key": _column(keys if keys is not None else [None] * n, pa.string(), "key"),
                "subject": _column(
                    subjects if subjects is not None else [None] * n,
                    pa.binary(DIGEST_SIZE),
                    "subject",
                ),
            },
            schema=SCHEMA,
        )
        return cls.from_table(table)

    @classmethod
    def from_table(cls, table: Any) -> RecordSet:
        """Make a set from a table with a `digest` column and optional `key`, `subject`.

        Binary columns of any width are accepted and checked for 32-byte values; rows are
        sorted by digest (stably: equal digests keep their order).
        """
        if not isinstance(table, pa.Table):
            raise InputError(
                f"expected a pyarrow.Table, got {type(table).__name__}", "pass a table"
            )
        if "digest" not in table.column_names:
            raise InputError(
                "the table has no `digest` column", "name the record digest column `digest`"
            )
        extra = set(table.column_names) - set(SCHEMA.names)
        if extra:
            msg = f"the table has unknown columns {sorted(extra)}"
            raise InputError(msg, "a record set holds only digest, key and subject")
        n = table.num_rows
        columns = {}
        for f in SCHEMA:
            if f.name not in table.column_names:
                columns[f.name] = pa.nulls(n, f.type)
                continue
            column = table.column(f.name)
            try:
                columns[f.name] = column.cast(f.type)
            except (pa.ArrowException, ValueError) as exc:
                msg = f"the {f.name} column of type {column.type} cannot be read as {f.type}: {exc}"
                raise InputError(msg, "digests and subjects are raw 32-byte hashes") from None
        if columns["digest"].null_count:
            raise InputError("the digest column has nulls", "every row needs its record digest")
        table = pa.table(columns, schema=SCHEMA).combine_chunks()
        digests = table.column("digest")
        matrix = as_matrix(digests.chunk(0)) if digests.num_chunks else as_matrix(digests)
        order = sort_order(matrix)
        if order is not None:
            table = table.take(pa.array(order))
        return cls(table)

    # -- the set --------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of members (unique digests)."""
        return len(self._records)

    @property
    def subject_count(self) -> int:
        """Number of subjects (unique subject hashes)."""
        return len(self._subjects)

    @property
    def rows(self) -> int:
        """Number of rows, duplicates included."""
        return int(self.table.num_rows)

    def __iter__(self) -> Iterator[bytes]:
        """The members in ascending order."""
        return iter(self._records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordSet):
            return NotImplemented
        return bool(self.table.equals(other.table))

    def __hash__(self) -> int:
        return hash((self._records.packed(), self._subjects.packed()))

    def __repr__(self) -> str:
        return f"RecordSet(size={self.size}, rows={self.rows}, root={self.root.hex()})"

    # -- the commitment -------------------------------------------------------------------

    @cached_property
    def _top(self) -> merkle.MemoryTree:
        return merkle.MemoryTree(self._records.top_leaves() + self._subjects.top_leaves())

    def _shard(self, kind: Kind, shard: int) -> tuple[bytes, int]:
        self._shard_number(shard)
        half = self._half(kind)
        return half.roots[shard], half.size(shard)

    def _half(self, kind: Kind) -> Half:
        return self._subjects if kind == "subject" else self._records

    def _shard_half(self, kind: Kind, shard: int) -> Half:
        return self._half(kind)

    @cached_property
    def pairs(self) -> Pairs:
        """The companion commitment to each row's key and subject (ADR 0020)."""
        return Pairs.of_table(self.table)

    def _pairs_for(self, pairs_root: bytes) -> list[Pairs]:
        return [self.pairs] if self.pairs.root == pairs_root else []

    def _record_rows(self, shard: int) -> Any:
        self._shard_number(shard)
        lo, hi = self._records.offsets[shard], self._records.offsets[shard + 1]
        if lo == hi:
            return self.table.slice(0, 0)
        column = self.table.column("digest")
        first = self._records.item(lo)
        # Rows, not unique values: a digest's repeats lie between its first row and the
        # next shard's.
        start = pc.index(column, pa.scalar(first, column.type)).as_py()
        end = self.rows
        if hi < len(self._records):
            end = pc.index(column, pa.scalar(self._records.item(hi), column.type)).as_py()
        return self.table.slice(start, end - start)

    def shards(self) -> list[tuple[bytes, int]]:
        """The 512 top-tree leaves' data: each record shard's root and size, then each
        subject shard's."""
        return [self._shard(kind, s) for kind in ("record", "subject") for s in range(256)]

    # -- algebra --------------------------------------------------------------------------

    def _digest_array(self) -> Any:
        return pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(DIGEST_SIZE), self.size, [None, pa.py_buffer(self._records.values)]
        )

    def _keep(self, other: RecordSet, inside: bool) -> RecordSet:
        mask = pc.is_in(self.table.column("digest"), value_set=other._digest_array())
        rows = self.table.filter(mask if inside else pc.invert(mask))
        return RecordSet(rows)  # a filter keeps the order

    def difference(self, other: RecordSet) -> RecordSet:
        """The rows of this set whose digest is not a member of ``other``."""
        return self._keep(other, inside=False)

    def intersection(self, other: RecordSet) -> RecordSet:
        """The rows of this set whose digest is a member of ``other``."""
        return self._keep(other, inside=True)

    def where(self, column: str, value: Any) -> pa.Table:
        """The rows (in digest order) whose ``column`` (digest, key or subject) equals
        ``value``."""
        scalar = lookup(column, value)
        return self.table.filter(pc.equal(self.table.column(column), scalar))

    def where_any(self, column: str, values: Iterable[Any]) -> pa.Table:
        """The rows (in digest order) whose ``column`` equals one of ``values``."""
        wanted = pa.array([lookup(column, v) for v in values], SCHEMA.field(column).type)
        return self.table.filter(pc.is_in(self.table.column(column), value_set=wanted))

    def keys_of(self, digest: bytes) -> list[str]:
        """The keys (sorted, unique, nulls left out) of the rows with this digest."""
        column = self.table.column("digest")
        rows = self.table.filter(pc.equal(column, pa.scalar(bytes(digest), column.type)))
        return sorted({k for k in rows.column("key").to_pylist() if k is not None})

    def subjects(self) -> set[bytes]:
        """Every subject hash named by a row."""
        return set(self._subjects)

    def subjects_in(self, subject_hashes: Iterable[bytes]) -> set[bytes]:
        """Which of these subject hashes have a row in this set (e.g. from an opt-out list)."""
        wanted = list({bytes(h) for h in subject_hashes})
        if not wanted:
            return set()
        values = _column(wanted, pa.binary(DIGEST_SIZE), "subject")
        column = self.table.column("subject")
        found = pc.unique(column.filter(pc.is_in(column, value_set=values)))
        return {s for s in found.to_pylist() if s is not None}

    # -- files ----------------------------------------------------------------------------

    def save(self, directory: Path) -> Path:
        """Write the set as Parquet named ``<root hex>.parquet``, atomically; return the path.

        The name is content-addressed by the members and subject hashes, which is all the
        root commits to: another set with the same root may differ in its rows, keys and
        pairing of records to subjects (the index beside the commitment). Saving it where
        the first is kept merges the two: the file keeps every row it has and gains the
        rows it lacks, so no key ever recorded under a root is lost (ADR 0004), even when
        several processes save sets of the same root at once: they take turns (a lock
        on ``<directory>/.save.lock``, POSIX systems). A file there that does not verify
        is left alone, and IntegrityError raised.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        draft = None
        if "_top" not in self.__dict__:  # the root is not known yet: write beside it
            draft = self._draft_while_hashing(directory)
        root = self.root
        path = directory / f"{root.hex()}.parquet"
        mine = self.pairs.to_index()
        try:
            with saving(directory):
                if not path.exists():
                    found = draft or Draft.write(directory, self.table)
                    found.finish(path, root, self.shards(), [mine])
                    return path
                if draft is not None:
                    draft.discard()
                table = self._merged_with(path)
                listed = read_pairs(path)
                if table is None and mine in listed:
                    return path  # the file holds every row already, and its index
                if mine not in listed:
                    listed.append(mine)  # each save's pairs stay provable (ADR 0020)
                rows = self.table if table is None else table
                Draft.write(directory, rows).finish(path, root, self.shards(), listed)
                return path
        except BaseException:
            if draft is not None:
                draft.discard()  # no draft left behind (discarding twice is harmless)
            raise

    def _draft_while_hashing(self, directory: Path) -> Draft:
        """The rows written to a draft file while the root (it names the file) and the pairs
        are computed; the pairs beside the root, whose numpy steps between queries would
        otherwise leave the cores idle."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mlprov-save") as pool:
            written = pool.submit(Draft.write, directory, self.table)
            pairs = pool.submit(lambda: self.pairs) if "pairs" not in self.__dict__ else None
            try:
                self.root  # noqa: B018 - computed once, and kept
                if pairs is not None:
                    pairs.result()
            except BaseException:
                if written.exception() is None:  # waits for it; a failed write removed its file
                    written.result().discard()
                raise
            return written.result()

    def _merged_with(self, path: Path) -> Any:
        """The rows of the set file at ``path`` and then this set's rows it lacks, sorted;
        None when it lacks none and has its index (a file of an earlier format is
        written again, with one)."""
        indexed = False
        try:  # the same rows already there: nothing to write, nothing to trust
            rows, form = read_rows(path)
            indexed = form in {f.encode() for f in INDEXED}
            if indexed and rows.replace_schema_metadata(None).equals(self.table):
                return None
        except (pa.ArrowException, OSError, ValueError):
            pass  # loading it below says what is wrong
        try:
            earlier = RecordSet.load(path)
        except InputError as exc:
            raise IntegrityError(
                f"{path} exists but is not a valid record set: {exc.message}",
                "move it aside (it may be evidence of tampering), then save again",
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(
                f"cannot add rows to {path}: {exc.message}",
                "move it aside (it may be evidence of tampering), then save again",
            ) from None
        known = _row_keys(earlier.table)
        extra = self.table.filter(pc.invert(pc.is_in(_row_keys(self.table), value_set=known)))
        if not extra.num_rows:
            return None if indexed else earlier.table
        # The same members and subjects, so the same root; a stable sort keeps the file's
        # rows first among equal digests.
        return RecordSet.from_table(pa.concat_tables([earlier.table, extra])).table

    @classmethod
    def load(cls, path: Path) -> RecordSet:
        """Read a saved set; IntegrityError if its contents do not give the root in its name.

        The root covers the digest and subject columns (as sets), so an edit to either is
        refused; keys are not covered.
        """
        path = Path(path)
        if not NAME.fullmatch(path.name):
            hint = "record-set files are named <64 hex digits of the root>.parquet"
            raise InputError(f"{path.name} is not the name of a record-set file", hint)
        if not path.is_file():
            raise NotFoundError(f"no record-set file at {path}", "check the path")
        try:
            table, form = read_rows(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(
                f"{path} is not a readable Parquet file: {exc}", "save it again"
            ) from None
        if form == _RETIRED_FORMAT:
            raise InputError(
                f"{path} was saved by an earlier mlprov, whose record-set root did not commit "
                "to subject hashes",
                "fingerprint the source again to record it under today's root",
            )
        if form not in {f.encode() for f in (*INDEXED, EARLIER)}:
            raise InputError(f"{path} is not an {FORMAT} file", "save it with RecordSet.save")
        loaded = cls.from_table(table.replace_schema_metadata(None))
        want = path.name.removesuffix(".parquet")
        if loaded.root.hex() != want:
            raise IntegrityError(
                f"the record digests and subject hashes in {path.name} give root "
                f"{loaded.root.hex()}, "
                "not the root in its name",
                "the file was altered or renamed; restore it from a trusted copy",
            )
        return loaded


_ABSENT, _PRESENT = pa.scalar(b"\x00", pa.binary()), pa.scalar(b"\x01", pa.binary())


def _row_keys(table: Any) -> Any:
    """One binary value per row that tells rows apart: digest, subject and key, with a
    marker byte before each nullable part so that no two different rows share one."""

    def part(column: Any) -> Any:
        text = column.cast(pa.binary())
        present = pc.binary_join_element_wise(_PRESENT, text, pa.scalar(b"", pa.binary()))
        return pc.if_else(pc.is_null(column), _ABSENT, present)

    digest = table.column("digest").cast(pa.binary())
    return pc.binary_join_element_wise(
        digest, part(table.column("subject")), part(table.column("key")), b""
    )


@dataclass(frozen=True)
class SetDiff:
    """What changed from set ``a`` to set ``b``: members and subject hashes."""

    added: tuple[bytes, ...]  # members of b not in a, ascending
    removed: tuple[bytes, ...]  # members of a not in b, ascending
    subjects_added: int
    subjects_removed: int

    @property
    def added_count(self) -> int:
        """Number of members added."""
        return len(self.added)

    @property
    def removed_count(self) -> int:
        """Number of members removed."""
        return len(self.removed)


def diff(a: RecordSet, b: RecordSet) -> SetDiff:
    """Compare two record sets by member digest and by subject hash."""
    sa, sb = a.subjects(), b.subjects()
    return SetDiff(
        added=tuple(b.difference(a)),
        removed=tuple(a.difference(b)),
        subjects_added=len(sb - sa),
        subjects_removed=len(sa - sb),
    )
