"""Buckets: rows put in place by their digest's leading byte as they are read.

A record set's rows are sorted by digest, and its commitment cuts them into 256 shards
by leading byte (ADR 0004). Sorting millions of rows at the end means a sort of them all
and then a copy of every column in the new order: a second matrix of digests and one of
subject hashes, each as large as the first. Here each batch's rows go straight to the
region of their leading byte as they arrive, so at the end only each region (a shard,
about 1/256 of the rows) is sorted, in small pieces that stay in the cache, and moved
down to close the gaps between regions. Nothing the size of a column is made twice.

SHA-256 spreads digests evenly, so each region holds its expected share plus eight
standard deviations (and 64 rows): the chance that any region overflows is below 1e-12.
Rows that do not fit (the same record repeated thousands of times) are kept aside, and
then the columns are put in order by one sort of them all, as before.
"""

from __future__ import annotations

import math
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlprov.records.halves import DIGEST_SIZE, Matrix, sort_order, take_rows
from mlprov.records.setproofs import SHARDS

__all__ = ["Buckets", "Ordered"]

_SLACK_DEVIATIONS = 8
_SLACK_ROWS = 64

Vector = np.ndarray[Any, Any]


@dataclass
class Ordered:
    """Columns sorted by digest, as views of the first ``rows`` rows of their buffers."""

    rows: int
    digests: Matrix  # (rows, 32)
    subjects: Matrix | None  # (rows, 32), zero where a row names no subject
    named: Vector | None  # bool: does the row name a subject?
    keys: Vector | None  # a key (an integer) or a row number, per row


def _unfilled(shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
    """An array whose memory is taken page by page as rows are written to it.

    numpy asks the kernel for huge pages (2 MiB) for large arrays: the first batch, which
    writes a few rows in every region, would then take the memory of the whole array at
    once, before the scan can go on. Pages of an anonymous map come one at a time, as
    each region fills, and a region's unused end never takes any."""
    count = math.prod(shape)
    private = getattr(mmap, "MAP_PRIVATE", None)  # POSIX
    if private is None:
        return np.empty(shape, dtype=dtype)
    memory = mmap.mmap(-1, max(1, count * dtype.itemsize), flags=private)
    return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)


def _as_void(matrix: Matrix) -> Vector:
    """An (n, 32) byte matrix as n 32-byte items, which numpy moves whole."""
    return np.ascontiguousarray(matrix).view(np.dtype((np.void, DIGEST_SIZE))).reshape(-1)


def _take(column: Vector, order: Vector) -> Vector:
    return take_rows(column, order) if column.ndim == 2 else np.take(column, order)


Columns = tuple[Matrix, Matrix | None, Vector | None, Vector | None]  # as Ordered's fields


class Buckets:
    """Rows placed by leading byte as batches arrive, then sorted region by region."""

    def __init__(self, rows: int, *, subjects: bool, keys: np.dtype[Any] | None) -> None:
        share = rows / SHARDS
        spread = math.sqrt(share * (1 - 1 / SHARDS))
        self.capacity = int(share + _SLACK_DEVIATIONS * spread) + _SLACK_ROWS
        size = self.capacity * SHARDS
        self.starts = np.arange(SHARDS, dtype=np.int64) * self.capacity
        self.fill = np.zeros(SHARDS, dtype=np.int64)
        self.rows = 0
        matrix = (size, DIGEST_SIZE)
        self._columns: Columns = (
            _unfilled(matrix, np.dtype(np.uint8)),
            _unfilled(matrix, np.dtype(np.uint8)) if subjects else None,
            _unfilled((size,), np.dtype(bool)) if subjects else None,
            _unfilled((size,), keys) if keys is not None else None,
        )
        self._aside: list[Columns] = []

    def add(
        self,
        digests: Matrix,
        subjects: Matrix | None = None,
        named: Vector | None = None,
        keys: Vector | None = None,
    ) -> None:
        """Place a batch's rows (each column in the same row order)."""
        n = len(digests)
        if not n:
            return
        lead = digests[:, 0]
        order = np.argsort(lead, kind="stable")  # a radix sort, for bytes
        counts = np.bincount(lead, minlength=SHARDS)
        first = np.cumsum(counts) - counts  # where each byte's rows begin in `order`
        sorted_lead = lead[order]
        rank = np.arange(n) - first[sorted_lead]  # each row's place among its byte's rows
        room = self.capacity - self.fill
        fits = rank < room[sorted_lead]
        target = np.empty(n, dtype=np.int64)
        target[order] = (self.starts + self.fill)[sorted_lead] + rank
        batch: Columns = (digests, subjects, named, keys)
        if not bool(fits.all()):
            kept = np.zeros(n, dtype=bool)
            kept[order[fits]] = True
            self._aside.append(_rows(batch, ~kept))
            batch, target = _rows(batch, kept), target[kept]
        for column, part in zip(self._columns, batch, strict=True):
            if column is None or part is None:
                continue
            if column.ndim == 2:
                np.put(_as_void(column), target, _as_void(part))
            else:
                np.put(column, target, part)
        self.fill += np.minimum(counts, room)
        self.rows += n

    def ordered(self) -> Ordered:
        """Every row, sorted by digest (rows of equal digests keep their arrival order).
        The buckets are used up: the rows are sorted and moved within their buffers."""
        present = [c for c in self._columns if c is not None]
        if not self._aside:  # else one sort of everything follows
            with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="mlprov-sort") as pool:
                list(pool.map(self._sort_region, range(SHARDS)))
        done = 0
        for shard in range(SHARDS):  # down over regions already moved: in shard order
            lo, count = int(self.starts[shard]), int(self.fill[shard])
            if lo != done:
                for column in present:
                    column[done : done + count] = column[lo : lo + count]
            done += count
        for aside in self._aside:  # after the rest: they arrived after their region filled
            n = len(aside[0])
            for into, part in zip(self._columns, aside, strict=True):
                if into is not None and part is not None:
                    into[done : done + n] = part
            done += n
        columns = _rows(self._columns, slice(0, done))
        if self._aside:
            self._aside = []
            order = sort_order(columns[0])  # stable: equal digests keep their order
            if order is not None:
                columns = _rows(columns, order)
        return Ordered(done, *columns)

    def _sort_region(self, shard: int) -> None:
        """Sort one region's rows where they lie (a region is small: this stays in cache)."""
        lo, count = int(self.starts[shard]), int(self.fill[shard])
        order = sort_order(self._columns[0][lo : lo + count])
        if order is None:
            return
        for column in self._columns:
            if column is not None:
                part = column[lo : lo + count]
                part[...] = _take(part, order)


def _rows(columns: Columns, rows: Any) -> Columns:
    """The same rows of every column: a mask or an order (copies), or a slice (views)."""

    def pick(column: Vector | None) -> Vector | None:
        if column is None:
            return None
        if isinstance(rows, slice) or rows.dtype == bool:
            picked: Vector = column[rows]
            return picked
        return _take(column, rows)

    digests = pick(columns[0])
    assert digests is not None
    return (digests, pick(columns[1]), pick(columns[2]), pick(columns[3]))
