"""Vectorised SHA-256 over Arrow binary columns (ADR 0006).

A Python ``hashlib`` call costs about a quarter of a microsecond of interpreter time
whatever it hashes, and holds the GIL throughout for values under 2 KiB: for millions of
record digests, leaf and node hashes, that overhead is the whole cost. So whole Arrow
columns are hashed by an engine outside the GIL:

- **Apache DataFusion** (``sha256()``, the Rust ``sha2`` crate, which uses the CPU's SHA
  instructions where it has them) returns raw 32-byte digests. A column is cut into
  pieces that threads hash on every core, each piece as one single-partition query (so
  the digests come back in row order), registered for that query only.
- **DuckDB** (``sha256()``, portable C++, lowercase hex that numpy turns back into bytes)
  hashes in a process forked after DataFusion ran in its parent, whose worker threads do
  not survive a ``fork``. DuckDB also gives the 64-bit ``hash64`` used for grouping.

Everything here is plain SHA-256 over exactly the bytes given; what the bytes are (a
record's canonical JSON, ``0x00 || digest``, ``K ^ ipad || subject``) is the caller's
business, except for the RFC 9162 tree and RFC 2104 HMAC helpers at the end, which build
their messages with numpy and hash each whole level or pass at once.

Each engine is private to the process and made on first use; each thread queries through
its own DataFusion context or DuckDB cursor.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DIGEST_SIZE",
    "as_array",
    "as_matrix",
    "forest_roots",
    "hash64",
    "hmac_sha256",
    "leaf_hashes",
    "sha256",
    "sha256_rows",
    "tree_root",
]

DIGEST_SIZE = 32
_BLOCK = 64  # SHA-256's block: the size of HMAC's padded key
_EMPTY_ROOT = np.frombuffer(
    bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    dtype=np.uint8,
)
# Rows per query: bounds the 64-byte hex answer held at once, and is plenty to keep
# every core busy.
_QUERY_ROWS = 1 << 20
# DuckDB scans an Arrow table one record batch per thread: a batch is cut into pieces so
# that all cores share it, but not into pieces so small that per-piece overhead shows.
_MIN_PIECE_ROWS = 4096

Matrix = np.ndarray[Any, np.dtype[np.uint8]]


class _Engine:
    """The process's DuckDB connection, and a cursor for each thread that hashes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._local = threading.local()
        self.threads = os.cpu_count() or 1
        # What a forked child inherits is kept, never closed: closing it would wait for
        # worker threads that exist only in the parent.
        self._inherited: list[duckdb.DuckDBPyConnection] = []
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork

    def cursor(self) -> duckdb.DuckDBPyConnection:
        pid = os.getpid()
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is not None and getattr(self._local, "pid", None) == pid:
            return cursor
        if cursor is not None:
            self._inherited.append(cursor)
        with self._lock:
            if self._connection is not None and self._pid != pid:
                self._inherited.append(self._connection)
                self._connection = None
            if self._connection is None:
                config: dict[str, str | bool | int | float | list[str]] = {
                    "threads": self.threads,
                    "preserve_insertion_order": True,  # digests come back in row order
                }
                self._connection = duckdb.connect(":memory:", config=config)
                self._pid = pid
            cursor = self._connection.cursor()
        self._local.cursor, self._local.pid = cursor, pid
        return cursor


_ENGINE = _Engine()


def _pieces(values: pa.Array) -> list[pa.Array]:
    n = len(values)
    step = max(_MIN_PIECE_ROWS, -(-n // (4 * _ENGINE.threads)))
    return [values.slice(i, step) for i in range(0, n, step)] or [values]


def _hex_to_raw(hex_column: pa.ChunkedArray, out: Matrix) -> None:
    """Decode DuckDB's lowercase hex digests into the rows of ``out`` (n, 32)."""
    row = 0
    for chunk in hex_column.chunks:
        n = len(chunk)
        if n == 0:
            continue
        if chunk.null_count or not (
            pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)
        ):
            raise RuntimeError(f"DuckDB's sha256 gave {chunk.type} with nulls or of another type")
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset :]
        start, end = int(offsets[0]), int(offsets[n])
        if end - start != 2 * DIGEST_SIZE * n:
            raise RuntimeError("DuckDB's sha256 gave a digest that is not 64 hex digits")
        text = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[start:end]
        out[row : row + n] = _unhex(text).reshape(n, DIGEST_SIZE)
        row += n


def _unhex(text: Matrix) -> Matrix:
    """Lowercase hex digits to bytes, eight digits at a time in 64-bit words."""
    words = text.view("<u8")
    # '0'-'9' are 0x30-0x39 and 'a'-'f' 0x61-0x66: the low nibble, plus 9 for a letter.
    nibbles = (words & 0x0F0F0F0F0F0F0F0F) + 9 * ((words >> 6) & 0x0101010101010101)
    # Byte 2k becomes (nibble 2k << 4) | nibble 2k+1; the odd bytes are dropped.
    paired = (nibbles << 4) | (nibbles >> 8)
    return paired.view(np.uint8)[::2].copy()


class _Fusion:
    """DataFusion contexts (one per thread), and the threads that hash pieces of a column."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.used_by = -1  # the process that started DataFusion's threads

    def usable(self) -> bool:
        """False in a child forked after DataFusion ran in its parent."""
        return self.used_by in (-1, os.getpid())

    def _context(self) -> Any:
        context = getattr(self._local, "context", None)
        if context is None:
            from datafusion import SessionConfig, SessionContext

            config = SessionConfig().with_target_partitions(1)  # one partition: row order
            context = self._local.context = SessionContext(config)
        return context

    def _hash_piece(self, piece: pa.Array, out: Matrix) -> None:
        from datafusion import col
        from datafusion import functions as f

        context = self._context()
        batch = pa.RecordBatch.from_arrays([piece], names=["v"])
        frame = context.create_dataframe([[batch]], name="piece")
        try:  # a registered table lives as long as its context: drop it after the query
            batches = frame.select(f.sha256(col("v"))).collect()
        finally:
            context.deregister_table("piece")
        row = 0
        for done in batches:
            row += _raw_into(done.column(0), out[row:])
        if row != len(piece):
            raise RuntimeError(f"DataFusion hashed {row} of {len(piece)} values")

    def hash_into(self, values: pa.Array, out: Matrix) -> None:
        self.used_by = os.getpid()
        pieces = _pieces(values)
        if len(pieces) == 1:
            self._hash_piece(values, out)
            return
        starts = np.cumsum([0] + [len(p) for p in pieces])
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_ENGINE.threads, thread_name_prefix="sha256")
            pool = self._pool
        # The calling thread hashes one piece itself: a busy pool only slows it down.
        futures = [
            pool.submit(self._hash_piece, piece, out[starts[i] : starts[i + 1]])
            for i, piece in enumerate(pieces[1:], start=1)
        ]
        self._hash_piece(pieces[0], out[: starts[1]])
        for future in futures:
            future.result()


def _raw_into(digests: pa.Array, out: Matrix) -> int:
    """Copy a binary column of 32-byte values (DataFusion's answer) into the first rows
    of ``out``."""
    n = len(digests)
    if n == 0:
        return 0
    t = digests.type
    if digests.null_count or not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        raise RuntimeError(f"DataFusion gave {t}, or nulls, where digests were expected")
    offset_type = np.int32 if pa.types.is_binary(t) else np.int64
    offsets = np.frombuffer(digests.buffers()[1], dtype=offset_type)[digests.offset :]
    start, end = int(offsets[0]), int(offsets[n])
    if end - start != DIGEST_SIZE * n:
        raise RuntimeError("DataFusion gave a value that is not 32 bytes, not a digest")
    data = np.frombuffer(digests.buffers()[2], dtype=np.uint8)[start:end]
    out[:n] = data.reshape(n, DIGEST_SIZE)
    return n


_FUSION = _Fusion()


def distinct_rows(values: pa.FixedSizeBinaryArray) -> Matrix:
    """The distinct non-null values of a column of 32-byte values, as a matrix, in no
    particular order.

    DataFusion groups them on every core, reading the same bytes as a binary column (it
    groups those faster than fixed-size ones, and the view copies nothing). A child
    forked after DataFusion ran in its parent uses Arrow's ``unique``, on one.
    """
    if not _FUSION.usable() or len(values) < _MIN_PIECE_ROWS:
        return np.array(as_matrix(pc.unique(values).drop_null()))
    from datafusion import SessionConfig, SessionContext

    _FUSION.used_by = os.getpid()
    # Where most values of a piece are new (subjects mostly are), grouping each piece
    # first and then the groups again only copies the values twice: skip that step.
    config = (
        SessionConfig()
        .with_target_partitions(_ENGINE.threads)
        .set("datafusion.execution.skip_partial_aggregation_probe_ratio_threshold", "0.5")
    )
    context = SessionContext(config)
    pieces = _pieces(_binary_view(values))
    _register(context, pieces)
    batches = context.sql("SELECT DISTINCT v FROM v WHERE v IS NOT NULL").collect()
    out = np.empty((sum(b.num_rows for b in batches), DIGEST_SIZE), dtype=np.uint8)
    row = 0
    for done in batches:
        row += _raw_into(done.column(0), out[row:])
    return out


def decimal_text(values: pa.Array) -> pa.ChunkedArray:
    """An integer column as the decimal digits of each value (as ``str()`` spells them),
    in order.

    DataFusion casts it on every core, and into memory its allocator already holds once a
    scan has run; Arrow's cast would take new memory the size of a few columns. A child
    forked after DataFusion ran in its parent uses Arrow's cast.
    """
    if not _FUSION.usable() or len(values) < _MIN_PIECE_ROWS:
        return pa.chunked_array([pc.cast(values, pa.string())], pa.string())
    from datafusion import SessionConfig, SessionContext

    _FUSION.used_by = os.getpid()
    pieces = _pieces(values)
    context = SessionContext(SessionConfig().with_target_partitions(len(pieces)))
    _register(context, pieces)
    # A projection keeps each partition's rows in order, and partitions are given back
    # in order: the digits line up with the values.
    parts = context.sql("SELECT arrow_cast(v, 'Utf8') FROM v").collect_partitioned()
    columns = [batch.column(0) for part in parts for batch in part]
    if [sum(len(b) for b in part) for part in parts] != [len(p) for p in pieces]:
        raise RuntimeError("DataFusion's cast did not give back one value per row")
    return pa.chunked_array(columns, pa.string())


def _register(context: Any, pieces: list[pa.Array]) -> None:
    """Register ``pieces`` as table ``v`` of column ``v``, one partition each."""
    context.register_record_batches(
        "v", [[pa.RecordBatch.from_arrays([piece], names=["v"])] for piece in pieces]
    )


def _binary_view(values: pa.FixedSizeBinaryArray) -> pa.Array:
    """A fixed-size binary column as a binary one over the same buffers."""
    width, end = values.type.byte_width, values.offset + len(values)
    kind, offset_type = (
        (pa.binary(), np.int32) if end * width < 2**31 else (pa.large_binary(), np.int64)
    )
    offsets = np.arange(0, (end + 1) * width, width, dtype=offset_type)
    validity, data = values.buffers()
    return pa.Array.from_buffers(
        kind, len(values), [validity, pa.py_buffer(offsets), data], offset=values.offset
    )


def _query(values: pa.Array, out: Matrix) -> None:
    if _FUSION.usable():
        _FUSION.hash_into(values, out)
        return
    table = pa.Table.from_batches(
        [pa.RecordBatch.from_arrays([piece], names=["v"]) for piece in _pieces(values)]
    )
    hexes = _ENGINE.cursor().from_arrow(table).project("sha256(v) AS h").to_arrow_table()
    _hex_to_raw(hexes.column(0), out)


def hash64(values: pa.Array) -> pa.Array:
    """DuckDB's 64-bit ``hash()`` of each value (uint64): fast, not cryptographic, and
    not stable across DuckDB versions, so for grouping equal values within one run only."""
    table = pa.Table.from_batches(
        [pa.RecordBatch.from_arrays([piece], names=["v"]) for piece in _pieces(values)]
    )
    out = _ENGINE.cursor().from_arrow(table).project("hash(v) AS h").to_arrow_table()
    return out.column(0).combine_chunks()


def _as_binary(values: pa.Array) -> pa.Array:
    # DuckDB hashes a BLOB faster than a VARCHAR (no UTF-8 check); the cast is zero-copy.
    t = values.type
    if pa.types.is_string(t):
        return values.cast(pa.binary())
    if pa.types.is_large_string(t):
        return values.cast(pa.large_binary())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return values
    if pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        return values.cast(pa.binary())
    if pa.types.is_string_view(t):
        return values.cast(pa.string()).cast(pa.binary())
    raise TypeError(f"cannot hash a column of {t}: pass binary or string values")


def _digest_matrix(values: pa.Array) -> Matrix:
    """SHA-256 of each value of a binary array without nulls, as an (n, 32) matrix."""
    out = np.empty((len(values), DIGEST_SIZE), dtype=np.uint8)
    for start in range(0, len(values), _QUERY_ROWS):
        part = values.slice(start, _QUERY_ROWS)
        _query(part, out[start : start + len(part)])
    return out


def as_array(matrix: Matrix, validity: pa.Buffer | None = None) -> pa.FixedSizeBinaryArray:
    """An (n, 32) matrix as a fixed-size binary array, sharing its memory."""
    matrix = np.ascontiguousarray(matrix)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(DIGEST_SIZE), len(matrix), [validity, pa.py_buffer(matrix)]
    )


def sha256(values: pa.Array | pa.ChunkedArray) -> pa.FixedSizeBinaryArray:
    """The raw SHA-256 of each value of a binary or string column; a null stays null."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            values = values.chunk(0)
        else:
            parts = [sha256(chunk) for chunk in values.chunks]
            return pa.concat_arrays(parts) if parts else as_array(_no_rows())
    values = _as_binary(values)
    if not values.null_count:
        return as_array(_digest_matrix(values))
    valid = values.is_valid()
    out = np.zeros((len(values), DIGEST_SIZE), dtype=np.uint8)
    out[np.asarray(valid, dtype=bool)] = _digest_matrix(values.drop_null())
    return as_array(out, valid.buffers()[1])


def _no_rows() -> Matrix:
    return np.empty((0, DIGEST_SIZE), dtype=np.uint8)


def sha256_rows(messages: Matrix) -> Matrix:
    """The SHA-256 of each row of an (n, width) byte matrix, as an (n, 32) matrix."""
    n, width = messages.shape
    if n == 0:
        return _no_rows()
    flat = np.ascontiguousarray(messages).reshape(-1)
    kind, offset_type = (
        (pa.binary(), np.int32) if flat.size < 2**31 else (pa.large_binary(), np.int64)
    )
    offsets = np.arange(0, (n + 1) * width, width, dtype=offset_type)
    values = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(flat)])
    return _digest_matrix(values)


def _prefixed(prefix: bytes, matrix: Matrix) -> Matrix:
    out = np.empty((len(matrix), len(prefix) + matrix.shape[1]), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    out[:, len(prefix) :] = matrix
    return out


def leaf_hashes(values: Matrix) -> Matrix:
    """RFC 9162 leaf hashes ``SHA-256(0x00 || v)`` of the rows of an (n, 32) matrix."""
    return sha256_rows(_prefixed(b"\x00", values))


def forest_roots(leaves: Matrix, sizes: Sequence[int] | np.ndarray[Any, Any]) -> Matrix:
    """The RFC 9162 roots of consecutive trees over already-hashed leaves.

    ``leaves`` is an (n, 32) matrix holding tree 0's leaves, then tree 1's, and so on;
    ``sizes`` gives each tree's leaf count (they sum to n). An empty tree's root is
    SHA-256 of nothing. Every tree climbs one level per query, all trees together.
    """
    counts = np.asarray(sizes, dtype=np.int64)
    if int(counts.sum()) != len(leaves):
        raise ValueError(f"the tree sizes sum to {int(counts.sum())}, not {len(leaves)} leaves")
    level = np.ascontiguousarray(leaves, dtype=np.uint8)
    while (counts > 1).any():
        level, counts = _next_level(level, counts)
    roots = np.empty((len(counts), DIGEST_SIZE), dtype=np.uint8)
    roots[:] = _EMPTY_ROOT
    present = counts == 1
    roots[present] = level  # each remaining tree holds its root alone, in tree order
    return roots


def _next_level(level: Matrix, counts: np.ndarray[Any, Any]) -> tuple[Matrix, Any]:
    """One level up in every tree: pair neighbours, and carry a lone last node unchanged.

    Carrying the odd node up yields exactly RFC 9162's split at the largest power of two
    below the size (the same rule as ``mlprov.merkle.root_of``). A tree's pairs lie side
    by side, so once the lone last nodes are taken out, the level read 64 bytes a row is
    every message's two halves; no row is gathered one by one.
    """
    ends = np.cumsum(counts)
    pairs = counts // 2
    odd = np.flatnonzero(counts & 1)
    lone = ends[odd] - 1  # each odd tree's last node, carried up
    paired = level
    if len(odd):
        keep = np.ones(len(level), dtype=bool)
        keep[lone] = False
        words = np.compress(keep, np.ascontiguousarray(level).view(np.uint64), axis=0)
        paired = words.view(np.uint8)
    messages = np.empty((int(pairs.sum()), 1 + 2 * DIGEST_SIZE), dtype=np.uint8)
    messages[:, 0] = 1
    messages[:, 1:] = paired.reshape(-1, 2 * DIGEST_SIZE)
    hashed = sha256_rows(messages)
    new_counts = pairs + (counts & 1)
    if not len(odd):
        return hashed, new_counts
    out = np.empty((int(new_counts.sum()), DIGEST_SIZE), dtype=np.uint8)
    carried = np.cumsum(new_counts)[odd] - 1  # a carried node ends its tree's new level
    is_hash = np.ones(len(out), dtype=bool)
    is_hash[carried] = False
    out.view(np.uint64)[is_hash] = hashed.view(np.uint64)
    out[carried] = level[lone]
    return out, new_counts


def tree_root(leaves: Matrix) -> bytes:
    """The RFC 9162 root over the rows of an (n, 32) matrix of leaf hashes."""
    return bytes(forest_roots(leaves, [len(leaves)])[0])


def hmac_sha256(key: bytes, values: pa.Array) -> pa.FixedSizeBinaryArray:
    """RFC 2104 HMAC-SHA256 under ``key`` of each value of a binary or string column.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)): two vectorised passes. A null
    value stays null.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()  # RFC 2104: a long key is hashed first
    block = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in block)
    opad = bytes(b ^ 0x5C for b in block)
    values = _as_binary(values)
    prefix = pa.scalar(ipad, values.type)
    inner = pc.binary_join_element_wise(prefix, values, pa.scalar(b"", values.type))
    digests = sha256(inner)
    valid = digests.buffers()[0]
    outer = sha256_rows(_prefixed(opad, as_matrix(digests)))
    return as_array(outer, valid)


def as_matrix(digests: pa.FixedSizeBinaryArray) -> Matrix:
    """A fixed-size binary array of digests (one chunk) as an (n, 32) matrix, no copy."""
    buffer = digests.buffers()[1]
    if buffer is None or len(digests) == 0:
        return _no_rows()
    data = np.frombuffer(buffer, dtype=np.uint8)
    start = digests.offset * DIGEST_SIZE
    return data[start : start + len(digests) * DIGEST_SIZE].reshape(-1, DIGEST_SIZE)
