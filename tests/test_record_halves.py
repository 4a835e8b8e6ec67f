"""Sorting, deduplicating and sharding 32-byte values agree with plain Python on values
built to be hard: equal first words with different tails, repeats, every leading byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.records.halves import Half, sort_order, take_rows, unique_rows

# Few heads and tails, so that rows often share their first eight bytes or repeat whole.
heads = st.sampled_from([b"\x00" * 8, b"\x00" * 7 + b"\x01", b"\x7f" * 8, b"\xff" * 8])
tails = st.sampled_from([b"\x00" * 24, b"\x01" + b"\x00" * 23, b"\x00" * 23 + b"\x01"])
values = st.lists(st.tuples(heads, tails).map(lambda p: p[0] + p[1]), max_size=40)


def _matrix(rows: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32).copy()


@settings(max_examples=200, deadline=None)
@given(values)
def test_sort_then_unique_is_sorted_set(rows: list[bytes]) -> None:
    matrix = _matrix(rows)
    order = sort_order(matrix)
    ordered = matrix if order is None else take_rows(matrix, order)
    assert [r.tobytes() for r in ordered] == sorted(rows)
    assert [r.tobytes() for r in unique_rows(ordered)] == sorted(set(rows))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=60))
def test_half_shards_by_leading_byte(rows: list[bytes]) -> None:
    half = Half(_matrix(sorted(rows)))
    distinct = sorted(set(rows))
    assert list(half) == distinct
    for shard in range(256):
        lo, hi = half.offsets[shard], half.offsets[shard + 1]
        assert [v for v in distinct if v[0] == shard] == distinct[lo:hi]
    assert half.offsets[256] == len(distinct)
