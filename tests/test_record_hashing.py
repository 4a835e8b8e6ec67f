"""Vectorised hashing (mlprov.records.hashing) gives exactly hashlib's and RFC 9162's bytes."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov import merkle
from mlprov.records import hashing, subjectcolumns


def matrix(values: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, 32)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.none() | st.binary(max_size=200), max_size=60))
def test_sha256_equals_hashlib(values: list[bytes | None]) -> None:
    want = [None if v is None else hashlib.sha256(v).digest() for v in values]
    assert hashing.sha256(pa.array(values, pa.binary())).to_pylist() == want


def test_sha256_of_text_large_and_chunked_columns() -> None:
    text = ["", "a", "é\u2028", "x" * 1000]
    want = [hashlib.sha256(t.encode()).digest() for t in text]
    assert hashing.sha256(pa.array(text)).to_pylist() == want
    assert hashing.sha256(pa.array(text, pa.large_string())).to_pylist() == want
    chunked = pa.chunked_array([pa.array(text[:1]), pa.array(text[1:])])
    assert hashing.sha256(chunked).to_pylist() == want
    assert hashing.sha256(pa.array(text).slice(1, 2)).to_pylist() == want[1:3]
    assert hashing.sha256(pa.chunked_array([], pa.string())).to_pylist() == []
    with pytest.raises(TypeError, match="cannot hash"):
        hashing.sha256(pa.array([1, 2]))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32))
def test_level_by_level_root_equals_rfc_9162(size: int, seed: int) -> None:
    rng = random.Random(seed)
    leaves = [rng.randbytes(32) for _ in range(size)]
    assert hashing.tree_root(matrix(leaves)) == merkle.root_of(leaves)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12), st.integers(0, 2**32))
def test_a_forest_of_trees_has_each_trees_root(sizes: list[int], seed: int) -> None:
    rng = random.Random(seed)
    leaves = [rng.randbytes(32) for _ in range(sum(sizes))]
    roots = hashing.forest_roots(matrix(leaves), sizes)
    start = 0
    for i, size in enumerate(sizes):
        assert bytes(roots[i]) == merkle.root_of(leaves[start : start + size])
        start += size
    with pytest.raises(ValueError, match="sum to"):
        hashing.forest_roots(matrix(leaves), [*sizes, 1])


def test_leaf_hashes() -> None:
    values = [bytes(32), b"\xff" * 32, bytes(range(32))]
    assert [bytes(r) for r in hashing.leaf_hashes(matrix(values))] == [
        merkle.leaf_hash(v) for v in values
    ]
    assert hashing.leaf_hashes(np.zeros((0, 32), np.uint8)).shape == (0, 32)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=100), st.lists(st.none() | st.binary(max_size=80), max_size=20))
def test_hmac_equals_the_standard_library(key: bytes, values: list[bytes | None]) -> None:
    want = [None if v is None else hmac.new(key, v, hashlib.sha256).digest() for v in values]
    assert hashing.hmac_sha256(key, pa.array(values, pa.binary())).to_pylist() == want


def test_hmac_of_distinct_values_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    key = b"k" * 32
    values = pa.array(["b", None, "a", "b", "c", None, "a"])
    want = [
        None if v is None else hmac.new(key, v.encode(), "sha256").digest()
        for v in values.to_pylist()
    ]
    assert subjectcolumns.hmac_distinct(key, values).to_pylist() == want
    # Every value colliding: the check against each group's first value must catch it.
    monkeypatch.setattr(subjectcolumns, "hash64", lambda v: pa.array(np.zeros(len(v), np.uint64)))
    assert subjectcolumns.hmac_distinct(key, values).to_pylist() == want


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put((hashing.sha256(pa.array([b"abc"])).to_pylist(), hashing._FUSION.usable()))


def test_a_forked_process_gets_its_own_engine() -> None:
    hashing.sha256(pa.array([b"warm the parent's engine"]))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue,))
    child.start()
    got, fusion = queue.get(timeout=60)
    child.join(timeout=60)
    assert got == [hashlib.sha256(b"abc").digest()]
    assert fusion is False  # DataFusion's threads stayed in the parent: DuckDB hashed


@pytest.mark.parametrize("engine", ["datafusion", "duckdb"])
def test_each_engine_keeps_row_order_across_queries_and_pieces(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "duckdb":  # as in a child forked after DataFusion ran in its parent
        monkeypatch.setattr(hashing._FUSION, "used_by", -2)
    monkeypatch.setattr(hashing, "_QUERY_ROWS", 1000)
    monkeypatch.setattr(hashing, "_MIN_PIECE_ROWS", 7)
    rng = random.Random(5)
    values = [rng.randbytes(rng.randint(0, 300)) for _ in range(4001)]
    got = hashing.sha256(pa.array(values, pa.large_binary())).to_pylist()
    assert got == [hashlib.sha256(v).digest() for v in values]
    assert hashing._FUSION.usable() is (engine == "datafusion")


_INTEGERS = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
]


@pytest.mark.parametrize("engine", ["datafusion", "arrow"])
@pytest.mark.parametrize("kind", _INTEGERS, ids=str)
def test_decimal_text_spells_integers_as_str_does_in_row_order(
    engine: str, kind: pa.DataType, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "arrow":  # as in a child forked after DataFusion ran in its parent
        monkeypatch.setattr(hashing._FUSION, "used_by", -2)
    monkeypatch.setattr(hashing, "_MIN_PIECE_ROWS", 7)  # many pieces, one partition each
    info = np.iinfo(kind.to_pandas_dtype())
    rng = np.random.default_rng(11)
    values = [
        int(v) for v in rng.integers(info.min, info.max, 3001, dtype=info.dtype, endpoint=True)
    ]
    values += [int(info.min), int(info.max), 0]
    text = hashing.decimal_text(pa.array(values, kind))
    assert text.type == pa.string()
    assert text.to_pylist() == [str(v) for v in values]


def test_decimal_text_of_a_sliced_column() -> None:
    values = pa.array(range(-50_000, 50_000), pa.int64()).slice(12_345, 60_000)
    assert hashing.decimal_text(values).to_pylist() == [str(v) for v in values.to_pylist()]


@pytest.mark.parametrize("rows", [0, 5, 30_000])
@pytest.mark.parametrize("engine", ["datafusion", "arrow"])
def test_distinct_rows_are_the_distinct_non_null_values(
    rows: int, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "arrow":
        monkeypatch.setattr(hashing._FUSION, "used_by", -2)
    rng = random.Random(rows)
    pool = [rng.randbytes(32) for _ in range(max(1, rows // 7))]
    values = [None if rng.random() < 0.1 else rng.choice(pool) for _ in range(rows + 9)]
    column = pa.array(values, pa.binary(32)).slice(9)  # an offset into every buffer
    got = hashing.distinct_rows(column)
    assert got.shape == (len({v for v in values[9:] if v is not None}), 32)
    assert {bytes(row) for row in got} == {v for v in values[9:] if v is not None}


def test_a_fixed_size_column_read_as_binary_shares_its_bytes() -> None:
    rng = random.Random(3)
    values = [None if i % 5 == 0 else rng.randbytes(32) for i in range(1000)]
    column = pa.array(values, pa.binary(32)).slice(3, 900)
    view = hashing._binary_view(column)
    assert view.type == pa.binary()
    assert view.to_pylist() == values[3:903]
    assert view.buffers()[2].address == column.buffers()[1].address
