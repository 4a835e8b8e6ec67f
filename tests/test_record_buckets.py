"""Buckets put rows in digest order exactly as one stable sort of all of them would, with
every column carried along, whether or not a region overflows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.records.buckets import Buckets


def _digests(values: list[int]) -> np.ndarray:
    """SHA-256 of each number: evenly spread, as record digests are; equal numbers give
    equal digests (the same record twice)."""
    rows = [hashlib.sha256(str(v).encode()).digest() for v in values]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32).copy()


def _expected(digests: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """Every column in the order of a stable sort by digest, by an independent route."""
    order = sorted(range(len(digests)), key=lambda i: digests[i].tobytes())  # stable
    return [c[order] for c in (digests, *columns)]


def _fill(values: list[int], batch: int) -> tuple[Buckets, list[np.ndarray]]:
    digests = _digests(values)
    n = len(values)
    subjects = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
    named = np.arange(n) % 3 != 0
    keys = np.arange(n, dtype=np.int64) * 7 - 5
    buckets = Buckets(n, subjects=True, keys=np.dtype(np.int64))
    for start in range(0, n, batch):
        part = slice(start, start + batch)
        buckets.add(digests[part], subjects[part], named[part], keys[part])
    return buckets, _expected(digests, subjects, named, keys)


def _check(buckets: Buckets, expected: list[np.ndarray]) -> None:
    ordered = buckets.ordered()
    got = [ordered.digests, ordered.subjects, ordered.named, ordered.keys]
    assert ordered.rows == len(expected[0])
    for column, want in zip(got, expected, strict=True):
        assert column is not None
        np.testing.assert_array_equal(column, want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), max_size=300), st.integers(1, 64))
def test_buckets_sort_as_one_stable_sort_does(values: list[int], batch: int) -> None:
    # Few distinct values: repeated records, whose rows must keep their arrival order.
    _check(*_fill(values, batch))


def test_thousands_of_rows_in_batches_of_any_size() -> None:
    values = list(range(20_000))
    _check(*_fill(values, 997))


def test_a_record_repeated_past_its_region_is_set_aside_and_still_sorted() -> None:
    # One record 3,000 times among 5,000: far more than its region's share holds.
    values = [7] * 3_000 + list(range(100, 2_100))
    buckets, expected = _fill(values, 512)
    assert buckets.capacity < 3_000
    _check(buckets, expected)


def test_columns_not_carried_stay_absent() -> None:
    digests = _digests(list(range(50)))
    buckets = Buckets(50, subjects=False, keys=None)
    buckets.add(digests)
    ordered = buckets.ordered()
    assert ordered.subjects is None and ordered.named is None and ordered.keys is None
    np.testing.assert_array_equal(ordered.digests, _expected(digests)[0])


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_row(rows: int) -> None:
    _check(*_fill(list(range(rows)), 8))
