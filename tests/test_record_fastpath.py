"""The batch fast path gives exactly the canonical bytes of the row-by-row encoder."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.records.canonical import canonical_record
from mlprov.records.fastpath import flat_canonical

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
names = st.lists(text.filter(bool), min_size=1, max_size=5, unique=True)
ints = st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**53) - 3, 2**53 + 3)
cells = {"text": text, "int": ints, "bool": st.booleans()}
arrow = {"text": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


@st.composite
def flat_batches(draw: st.DrawFn) -> pa.RecordBatch:
    columns = draw(names)
    kinds = [draw(st.sampled_from(sorted(cells))) for _ in columns]
    count = draw(st.integers(1, 20))
    data = {
        name: pa.array([draw(cells[kind]) for _ in range(count)], arrow[kind])
        for name, kind in zip(columns, kinds, strict=True)
    }
    return pa.RecordBatch.from_pydict(data)


@settings(max_examples=200, deadline=None)
@given(flat_batches())
def test_fast_path_equals_the_row_by_row_encoder(batch: pa.RecordBatch) -> None:
    assert flat_canonical(batch) == [canonical_record(r) for r in batch.to_pylist()]


def test_large_strings_and_other_integer_widths() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "s": pa.array(["a\u2028b", 'q"\\'], pa.large_string()),
            "u": pa.array([2**64 - 1, 0], pa.uint64()),
            "i8": pa.array([-128, 127], pa.int8()),
        }
    )
    assert flat_canonical(batch) == [canonical_record(r) for r in batch.to_pylist()]


@pytest.mark.parametrize(
    "column",
    [
        pa.array(["a", None]),  # a null drops the member: the row-by-row path handles it
        pa.array([1.5, 2.0]),  # floats need JCS number spelling
        pa.array([b"x", b"y"]),
        pa.array([[1], [2]]),
    ],
)
def test_other_batches_are_left_to_the_row_by_row_path(column: pa.Array) -> None:
    assert flat_canonical(pa.RecordBatch.from_pydict({"c": column})) is None
