"""The two halves of a record set's commitment: sorted unique 32-byte values in 256 shards.

ADR 0004 fixes the shape: a half's values (record digests, or subject hashes) are sorted,
deduplicated and cut into 256 shards by leading byte, each shard an RFC 9162 tree. Here
the values are an (n, 32) numpy matrix of bytes; sorting uses their first eight bytes as
one integer, which almost always decides the order of SHA-256 outputs, and all 256 shard
trees are hashed level by level together (:func:`mlprov.records.hashing.forest_roots`).
A shard's full tree, for proofs, is built only when a proof asks for it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np

from mlprov import merkle
from mlprov.records.hashing import forest_roots, leaf_hashes
from mlprov.records.setproofs import SHARDS, shard_leaf

__all__ = [
    "DIGEST_SIZE",
    "Half",
    "Matrix",
    "is_sorted",
    "sort_order",
    "take_rows",
    "unique_rows",
]

DIGEST_SIZE = 32
# Leaves hashed per group of shards: bounds the memory of one level's messages.
_GROUP_LEAVES = 1 << 20
_HEAD = 1024  # rows looked at before the whole matrix, when asking if it is sorted

Matrix = np.ndarray[Any, np.dtype[np.uint8]]
Words = np.ndarray[Any, np.dtype[np.uint64]]


def _first_words(matrix: Matrix) -> Words:
    """Each row's first eight bytes as a native integer, which orders as the bytes do."""
    return matrix.view(">u8")[:, 0].astype(np.uint64)


def _rows_in_order(matrix: Matrix, first: Any) -> bool:
    """Are the rows ``first[i]`` and ``first[i] + 1`` in order, for each i (all 32 bytes)?"""
    words = matrix.view(">u8")  # numpy compares big-endian words by value
    a, b = words[first], words[first + 1]
    differs = a != b
    col = differs.argmax(axis=1)  # first differing word of each pair
    rows = np.arange(len(first))
    return bool(np.all(~differs.any(axis=1) | (a[rows, col] < b[rows, col])))


def is_sorted(matrix: Matrix) -> bool:
    """Are the rows of an (n, 32) matrix in ascending byte order (repeats allowed)?"""
    if len(matrix) < 2:
        return True
    head = _first_words(matrix[:_HEAD])
    if bool((head[1:] < head[:-1]).any()):
        return False  # unsorted rows, such as fresh digests, mostly show it at once
    first = _first_words(matrix)
    if bool((first[1:] < first[:-1]).any()):
        return False
    ties = np.flatnonzero(first[1:] == first[:-1])  # only these need the other 24 bytes
    return _rows_in_order(matrix, ties)


def sort_order(matrix: Matrix) -> Any:
    """The stable order that sorts the rows, or None if they are sorted already."""
    if is_sorted(matrix):
        return None
    first = _first_words(matrix)
    order = np.argsort(first)  # not stable, but with no tie every sort is the stable one
    ordered = np.take(first, order)
    if not bool((ordered[1:] == ordered[:-1]).any()):
        return order
    order = np.argsort(first, kind="stable")  # ties: repeated rows, mostly, keep their order
    if is_sorted(take_rows(matrix, order)):
        return order
    return np.lexsort(matrix.view(">u8").T[::-1])  # the last key is the primary one; stable


def take_rows(matrix: Matrix, order: Any) -> Matrix:
    """The rows of an (n, 32) matrix in the given order (a copy)."""
    # Taking four 64-bit words a row is several times faster than 32 single bytes.
    words = np.ascontiguousarray(matrix).view(np.uint64)
    taken: Matrix = np.take(words, order, axis=0).view(np.uint8)
    return taken


def unique_rows(matrix: Matrix) -> Matrix:
    """The distinct rows of a sorted matrix (the matrix itself when there are no repeats)."""
    if len(matrix) < 2:
        return matrix
    words = np.ascontiguousarray(matrix).view(np.uint64)  # equality needs no byte order
    # Only rows whose first word repeats the one before can be repeats: compare the rest
    # of those alone, without a table of every word of every row.
    first = words[:, 0]
    ties = np.flatnonzero(first[1:] == first[:-1])
    if not len(ties):
        return matrix
    repeat = np.zeros(len(matrix) - 1, dtype=bool)
    repeat[ties] = (words[ties + 1] == words[ties]).all(axis=1)
    if not bool(repeat.any()):
        return matrix
    keep = np.concatenate(([True], ~repeat))
    kept: Matrix = np.compress(keep, words, axis=0).view(np.uint8)
    return kept


class Half:
    """One half of a set's commitment: sorted unique 32-byte values, cut into 256 shards
    by leading byte, with each shard's RFC 9162 tree built on demand."""

    def __init__(self, matrix: Matrix) -> None:
        """Take an (n, 32) matrix of bytes whose rows are sorted (repeats allowed)."""
        self.values = np.ascontiguousarray(unique_rows(matrix))
        leading = np.ascontiguousarray(self.values[:, 0])
        # Bytes against bytes: numpy would otherwise widen the whole column to compare it.
        starts = np.searchsorted(leading, np.arange(SHARDS, dtype=np.uint8), side="left")
        # shard s: values [o[s], o[s+1])
        self.offsets = (*(int(o) for o in starts), len(self.values))
        self._trees: dict[int, merkle.MemoryTree] = {}

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[bytes]:
        return (row.tobytes() for row in self.values)

    def packed(self) -> bytes:
        """Every value, concatenated in order."""
        return self.values.tobytes()

    def item(self, i: int) -> bytes:
        return bytes(self.values[i])

    def position(self, value: bytes) -> int:
        """Index of the first value >= ``value`` (32 bytes), by binary search in its shard."""
        lo, hi = self.offsets[value[0]], self.offsets[value[0] + 1]
        return bisect_left(range(lo, hi), value, key=self.item) + lo

    def holds(self, value: bytes) -> bool:
        i = self.position(value)
        return i < len(self) and self.item(i) == value

    def size(self, shard: int) -> int:
        return self.offsets[shard + 1] - self.offsets[shard]

    def leaves(self, shard: int) -> list[bytes]:
        lo, hi = self.offsets[shard], self.offsets[shard + 1]
        return [merkle.leaf_hash(self.item(i)) for i in range(lo, hi)]

    @cached_property
    def roots(self) -> tuple[bytes, ...]:
        """Every shard's root, in shard order; shards are hashed in groups of about a
        million leaves, each group one level per query."""
        sizes = np.diff(np.asarray(self.offsets))
        roots: list[bytes] = []
        first = 0
        while first < SHARDS:
            last = first + 1  # a group: shards [first, last)
            while last < SHARDS and self.offsets[last + 1] - self.offsets[first] <= _GROUP_LEAVES:
                last += 1
            lo, hi = self.offsets[first], self.offsets[last]
            group = forest_roots(leaf_hashes(self.values[lo:hi]), sizes[first:last])
            roots += [row.tobytes() for row in group]
            first = last
        return tuple(roots)

    def top_leaves(self) -> list[bytes]:
        """The leaf hashes of this half in the top tree: shard root and size, per shard."""
        return [merkle.leaf_hash(shard_leaf(self.roots[s], self.size(s))) for s in range(SHARDS)]

    def keep_tree(self, shard: int, tree: merkle.MemoryTree) -> None:
        """Keep a shard's tree, built already (over :meth:`leaves`), for its proofs."""
        self._trees[shard] = tree

    def tree(self, shard: int) -> merkle.MemoryTree:
        tree = self._trees.get(shard)
        if tree is None:
            tree = self._trees[shard] = merkle.MemoryTree(self.leaves(shard))
        return tree
