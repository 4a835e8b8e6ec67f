"""The flat scan: a flat source's record digests, keys and subject HMACs in one query.

For a Parquet file or Arrow table whose columns are all text, integers or booleans (the
flat case of :mod:`mlprov.records.fastpath`), Apache DataFusion reads the rows, spells each
row's ``mlprov-record/1`` bytes with one ``concat`` and hashes them with SHA-256, and
computes each row's subject HMAC (RFC 2104 over the ``mlprov-subject/1`` text), all in
Rust on every core. The query assumes the common case: no nulls, no text that JSON must
escape, no integer beyond ±(2**53 − 1), subjects of printable ASCII. It also hands back
the columns it read, and each batch is checked against those assumptions (by numpy over
the bytes, while the query computes the next batches). The rows that break one have
their digests made again by :func:`mlprov.records.digests.canonical_column`, the
reference encoding, and a subject that is not printable ASCII is hashed by
:class:`~mlprov.records.subjects.SubjectHasher`, which normalises it. Each batch's rows
then go to their place by leading byte (:mod:`mlprov.records.buckets`), so that the
rows come out sorted by digest without a copy of every column.

Whatever the query cannot answer returns None, and the caller takes the batch pipeline,
which names the row of any error: another column type, a repeated column name, a missing,
empty or repeated key, an empty subject, or a file DataFusion cannot read. A property test
holds the two paths equal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlprov.records.buckets import Buckets
from mlprov.records.digests import canonical_column
from mlprov.records.fastpath import needs_escape, object_pieces, text_bytes, text_layout
from mlprov.records.halves import DIGEST_SIZE, Matrix
from mlprov.records.hashing import as_array, as_matrix, sha256
from mlprov.records.subjects import SubjectHasher

__all__ = ["Scanned", "scan"]

_BATCH_ROWS = 1 << 14  # DataFusion's batches: small enough that its allocator keeps reusing them
_MAX_INT = 2**53 - 1
_TABLE = "records"
_OUT = ("__mlprov_digest", "__mlprov_key", "__mlprov_subject", "__mlprov_empty")
_NOT_PLAIN = r"[^\x20-\x7e]"
_SPACE = 0x20


@dataclass
class Scanned:
    """Every row's digest, key and subject hash, sorted by digest. Whoever takes a column
    may set it to None, so that its memory goes as soon as it is used."""

    rows: int
    digests: Matrix | None  # (rows, 32)
    keys: pa.Array | None  # integers or text, as the key column holds them
    subjects: pa.FixedSizeBinaryArray | None  # null where a row names no subject


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _value(column: pa.Field) -> tuple[str, bool] | None:
    """SQL for a column's JSON value, and whether it is a string (quoted around it)."""
    ref, t = _name(column.name), column.type
    if _is_text(t):
        return ref, True
    if pa.types.is_integer(t):
        return f"CAST({ref} AS VARCHAR)", False
    if pa.types.is_boolean(t):
        return f"CASE WHEN {ref} THEN 'true' ELSE 'false' END", False
    return None


def _canonical(schema: pa.Schema) -> str | None:
    """SQL for a row's canonical bytes when the row is of the common case (see above)."""
    names = schema.names
    # SQL names a column by its text, which cannot hold NUL.
    if not names or len(set(names)) != len(names) or any("\x00" in n for n in names):
        return None
    members: list[tuple[str, str, bool]] = []
    for name in names:
        found = _value(schema.field(name))
        if found is None:
            return None
        members.append((name, *found))
    pieces = object_pieces(members)
    parts = [_literal(p) if i % 2 == 0 else p for i, p in enumerate(pieces)]
    return "concat(" + ", ".join(parts) + ")"


def _subject_sql(text: str, pads: tuple[bytes, bytes]) -> tuple[str, str]:
    """SQL for the HMAC of a printable-ASCII subject's normal form, and for whether that
    form is empty."""
    trimmed = (
        f"CASE WHEN strpos({text}, ' ') > 0 "
        f"THEN regexp_replace(btrim({text}, ' '), ' {{2,}}', ' ', 'g') ELSE {text} END"
    )
    email = (
        f"length({trimmed}) - length(replace({trimmed}, '@', '')) = 1 "
        f"AND strpos({trimmed}, ' ') = 0"
    )
    normal = f"CASE WHEN {email} THEN lower({trimmed}) ELSE {trimmed} END"
    ipad, opad = (pad.hex() for pad in pads)
    inner = f"sha256(X'{ipad}' || arrow_cast({normal}, 'Binary'))"
    return f"arrow_cast(sha256(X'{opad}' || {inner}), 'FixedSizeBinary(32)')", f"{trimmed} = ''"


def _query(
    schema: pa.Schema, key: str | None, subject: str | None, hasher: SubjectHasher | None
) -> str | None:
    canonical = _canonical(schema)
    if canonical is None or set(_OUT) & set(schema.names):
        return None
    digest, key_out, subject_out, empty_out = _OUT
    outputs = [f"arrow_cast(sha256({canonical}), 'FixedSizeBinary(32)') AS {digest}"]
    if key is not None:
        if key not in schema.names:
            return None
        t = schema.field(key).type
        if not (_is_text(t) or pa.types.is_integer(t)):
            return None
        outputs.append(f"{_name(key)} AS {key_out}")
    if subject is not None:
        if hasher is None or subject not in schema.names:
            return None
        t = schema.field(subject).type
        if _is_text(t):
            text = _name(subject)
        elif pa.types.is_integer(t):
            text = f"CAST({_name(subject)} AS VARCHAR)"  # the digits of str()
        else:
            return None
        hmac, empty = _subject_sql(text, hasher.pads())
        outputs += [f"{hmac} AS {subject_out}", f"{empty} AS {empty_out}"]
    outputs += [_name(n) for n in schema.names]  # handed back for the checks
    return "SELECT " + ", ".join(outputs) + f" FROM {_TABLE}"


def _schema_of(source: Any) -> pa.Schema | None:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.suffix.lower() != ".parquet" or not path.is_file():
            return None
        try:
            return pq.read_schema(path)
        except (pa.ArrowException, OSError):
            return None  # the batch pipeline says what is wrong with it
    if isinstance(source, pa.Table | pa.RecordBatch):
        return source.schema
    return None


def _context(source: Any) -> Any:
    from datafusion import SessionConfig, SessionContext

    cores = os.cpu_count() or 1
    config = (
        SessionConfig()
        .with_target_partitions(cores)
        .with_batch_size(_BATCH_ROWS)
        .with_repartition_file_scans(True)
        # Text as plain strings: their bytes are then one buffer, checked in one pass.
        .set("datafusion.execution.parquet.schema_force_view_types", "false")
    )
    context = SessionContext(config)
    if isinstance(source, str | os.PathLike):
        context.register_parquet(_TABLE, str(source))
    else:
        table = pa.Table.from_batches([source]) if isinstance(source, pa.RecordBatch) else source
        # A table's partitions are its pieces: one per core, so that every core takes some.
        step = max(1, -(-table.num_rows // cores))
        pieces = [[b] for b in table.to_batches(max_chunksize=step) if b.num_rows]
        context.register_record_batches(_TABLE, pieces or [table.to_batches()])
    return context


def scan(
    source: Any,
    *,
    key: str | None = None,
    subject: str | None = None,
    hasher: SubjectHasher | None = None,
    progress: Callable[[int], None] | None = None,
) -> Scanned | None:
    """Digests, keys and subject hashes of a flat Parquet file or Arrow table, sorted by
    digest, or None when the batch pipeline must read it (see the module docstring)."""
    schema = _schema_of(source)
    query = None if schema is None else _query(schema, key, subject, hasher)
    if query is None or schema is None:
        return None
    total = _row_count(source)
    if not total:
        return None  # nothing to gain, and the batch pipeline handles the empty case
    keys = None if key is None else _Keys(schema.field(key).type)
    buckets = Buckets(total, subjects=subject is not None, keys=None if keys is None else keys.kind)
    try:
        stream = _context(source).sql(query).execute_stream()
        for item in stream:
            # The batch's columns are copied into the buckets, and the batch let go: an
            # exported batch's columns share one release, so keeping any column would keep
            # all the text alive.
            batch = item.to_pyarrow()
            n = batch.num_rows
            if not n:
                continue
            if buckets.rows + n > total:
                return None
            data = pa.RecordBatch.from_arrays(
                batch.columns[batch.num_columns - len(schema) :], names=schema.names
            )
            digests = _digests(batch.column(_OUT[0]), data)
            numbers = None
            if keys is not None:
                numbers = keys.add(batch.column(_OUT[1]), buckets.rows)
                if numbers is None:
                    return None
            hashes = named = None
            if subject is not None:
                found = _subjects(batch, data.column(subject), hasher)
                if found is None:
                    return None
                hashes, named = as_matrix(found), np.asarray(found.is_valid(), dtype=bool)
            buckets.add(digests, hashes, named, numbers)
            del batch, data, digests, hashes
            if progress is not None:
                progress(buckets.rows)
    except Exception:  # noqa: BLE001 - DataFusion raises plain exceptions; the batch
        return None  # pipeline reads the source again and names what is wrong
    if buckets.rows != total:
        return None
    ordered = buckets.ordered()
    key_column = None
    if keys is not None:
        assert ordered.keys is not None
        key_column = keys.column(ordered.keys)
        if key_column is None:
            return None
    subject_column = None
    if ordered.subjects is not None and ordered.named is not None:
        named = ordered.named
        validity = None if named.all() else pa.array(named).buffers()[1]
        subject_column = as_array(ordered.subjects, validity)
    return Scanned(total, ordered.digests, key_column, subject_column)


class _Keys:
    """A key column as the scan reads it: integers go to the buckets as they are; text
    stays here, in batches, and the buckets carry each row's number instead."""

    def __init__(self, kind: pa.DataType) -> None:
        self.numeric = pa.types.is_integer(kind)
        self.kind = np.dtype(kind.to_pandas_dtype()) if self.numeric else np.dtype(np.int64)
        # Each batch's integers, when they rise strictly, as (first, last): if no two of
        # these ranges overlap, no key repeats, and no sort of all the keys is needed.
        self._runs: list[tuple[int, int]] | None = []
        self._text: list[pa.Array] = []

    def add(self, column: pa.Array, first_row: int) -> Any:
        """What the buckets carry for these rows, or None when a key is missing."""
        if column.null_count:
            return None
        if not self.numeric:
            self._text.append(pa.concat_arrays([column]))  # a copy: see the loop
            return np.arange(first_row, first_row + len(column), dtype=np.int64)
        values = column.to_numpy()
        if self._runs is not None:
            if bool((values[1:] > values[:-1]).all()):
                self._runs.append((int(values[0]), int(values[-1])))
            else:
                self._runs = None
        return values

    def _repeat(self, carried: Any) -> bool:
        if self._runs is not None:
            runs = sorted(self._runs)
            if all(later[0] > earlier[1] for earlier, later in pairwise(runs)):
                return False
        ordered = np.sort(carried)
        return bool((ordered[1:] == ordered[:-1]).any())

    def column(self, carried: Any) -> pa.Array | None:
        """The key column in digest order, or None when a key is empty or repeated."""
        if self.numeric:
            return None if self._repeat(carried) else pa.array(carried)
        if not self._text:
            return None
        keys = pc.cast(pa.chunked_array(self._text), pa.string())
        self._text = []
        if pc.any(pc.equal(keys, "")).as_py():
            return None
        if pc.count_distinct(keys).as_py() != len(keys):
            return None
        return keys.take(pa.array(carried)).combine_chunks()


def _row_count(source: Any) -> int:
    if isinstance(source, pa.Table | pa.RecordBatch):
        return int(source.num_rows)
    return int(pq.ParquetFile(source).metadata.num_rows)


def _uncommon(column: pa.Array) -> Any:
    """The rows (a bool mask) whose value the query's concat does not spell as JSON: a
    null, text to escape, an integer beyond ±(2**53 − 1); None when there are none."""
    bad = None
    if column.null_count:
        bad = np.asarray(column.is_null())
    t = column.type
    if _is_text(t) and needs_escape(column):  # a whole-column pass first: escapes are rare
        data, ends = text_layout(column)
        found = np.flatnonzero((data < _SPACE) | (data == ord('"')) | (data == ord("\\")))
        rows = np.zeros(len(column), dtype=bool)
        rows[np.searchsorted(ends, found, side="right")] = True
        bad = rows if bad is None else bad | rows
    elif pa.types.is_integer(t) and t.bit_width == 64:
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and (low < -_MAX_INT or high > _MAX_INT):
            wide = pc.greater(column, pa.scalar(_MAX_INT, t))
            if pa.types.is_signed_integer(t):
                wide = pc.or_(wide, pc.less(column, pa.scalar(-_MAX_INT, t)))
            rows = np.asarray(pc.fill_null(wide, False))
            bad = rows if bad is None else bad | rows
    return bad


def _digests(computed: pa.Array, data: pa.RecordBatch) -> Matrix:
    """A batch's digests: the query's, and the reference encoding's for the rows it does
    not spell right."""
    bad = None
    for column in data.columns:
        rows = _uncommon(column)
        if rows is not None:
            bad = rows if bad is None else bad | rows
    if bad is None:
        return as_matrix(computed)
    digests = np.array(as_matrix(computed))
    redo = np.flatnonzero(bad)
    digests[redo] = as_matrix(sha256(canonical_column(data.take(pa.array(redo)))))
    return digests


def _subjects(
    batch: pa.RecordBatch, text: pa.Array, hasher: SubjectHasher | None
) -> pa.Array | None:
    """A batch's subject hashes; those not of printable ASCII hashed by ``hasher``; None
    when a subject is empty (the batch pipeline reports it with its row)."""
    if pc.any(batch.column(_OUT[3])).as_py():
        return None
    hashes = batch.column(_OUT[2])
    if not _is_text(text.type):
        return hashes  # an integer's digits are printable ASCII
    data = text_bytes(text)
    if not len(data) or (data.min() >= _SPACE and data.max() <= 0x7E):
        return hashes
    assert hasher is not None
    odd = pc.fill_null(pc.match_substring_regex(text, _NOT_PLAIN), False)
    rows = pc.indices_nonzero(odd)
    done = [hasher.hash(v) for v in text.take(rows).to_pylist()]  # InputError: empty
    return pc.replace_with_mask(hashes, odd, pa.array(done, pa.binary(DIGEST_SIZE)))
