"""The flat scan (one DataFusion query) gives exactly the digests and subject hashes of the
row-by-row reference, and leaves every case it does not cover to the batch pipeline."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError
from mlprov.records.canonical import record_digest
from mlprov.records.fingerprint import fingerprint
from mlprov.records.scan import scan
from mlprov.records.subjects import SubjectHasher, normalise

HASHER = SubjectHasher(b"k" * 32)

any_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
# Text that JSON must escape, more often than any_text would give it.
awkward = st.text(st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "a"]))
names = st.lists(  # NUL, which SQL cannot spell in a name, is a case of its own below
    any_text.filter(lambda n: n and "\x00" not in n and not n.startswith("__mlprov_")),
    min_size=1,
    max_size=4,
    unique=True,
)
ints = st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**53) - 3, 2**53 + 3)
cells = {
    "text": any_text | awkward,
    "int": ints,
    "uint": st.integers(0, 2**64 - 1),
    "small": st.integers(-128, 127),
    "bool": st.booleans(),
}
arrow = {
    "text": pa.string(),
    "int": pa.int64(),
    "uint": pa.uint64(),
    "small": pa.int8(),
    "bool": pa.bool_(),
}
subjects = (
    st.sampled_from(["Ann@Example.COM", "  bob   smith ", "C-1042", "c-1042", "Zoë@X.org", "a@b@c"])
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
    | st.none()
)


def _plain(value: str | None) -> bool:
    if value is None:
        return True
    try:
        normalise(value)
    except InputError:
        return False
    return True


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    columns = [c for c in draw(names) if c not in ("id", "who")]
    kinds = [draw(st.sampled_from(sorted(cells))) for _ in columns]
    count = draw(st.integers(1, 25))
    nulls = draw(st.booleans())
    cell = (lambda kind: cells[kind] | st.none()) if nulls else (lambda kind: cells[kind])
    data = {
        name: pa.array([draw(cell(kind)) for _ in range(count)], arrow[kind])
        for name, kind in zip(columns, kinds, strict=True)
    }
    data["id"] = pa.array(draw(st.permutations(range(count))), pa.int64())
    who = [draw(subjects) for _ in range(count)]
    assume(all(_plain(w) for w in who))
    data["who"] = pa.array(who, pa.string())
    return pa.table(data)


def expected(table: pa.Table) -> list[tuple[str, bytes, bytes | None]]:
    """(key, digest, subject hash) of every row, by the row-by-row reference."""
    out = []
    for row in table.to_pylist():
        who = row["who"]
        out.append((str(row["id"]), record_digest(row), None if who is None else HASHER.hash(who)))
    return sorted(out)


def scanned(source: object) -> list[tuple[str, bytes, bytes | None]]:
    found = scan(source, key="id", subject="who", hasher=HASHER)
    assert found is not None, "the scan should cover this source"
    assert found.digests is not None and found.keys is not None and found.subjects is not None
    keys = [str(k) for k in found.keys.to_pylist()]
    digests = [bytes(d) for d in found.digests]
    return sorted(zip(keys, digests, found.subjects.to_pylist(), strict=True))


@settings(max_examples=150, deadline=None)
@given(tables())
def test_the_scan_equals_the_row_by_row_reference(table: pa.Table) -> None:
    assert scanned(table) == expected(table)


@pytest.mark.parametrize("text_type", [pa.string(), pa.large_string()], ids=str)
def test_only_the_rows_the_query_cannot_spell_take_the_reference(text_type: pa.DataType) -> None:
    count = 20_000  # two of the scan's batches
    text = [f"plain text {i}" for i in range(count)]
    wide: list[int | None] = list(range(count))
    who: list[str | None] = [f"user{i % 97}@example.com" for i in range(count)]
    for row, odd in ((0, '"'), (1, "\\"), (7_777, "\n"), (16_383, "\x1f"), (19_999, '"')):
        text[row] = f"say {odd} {row}"
    text[3] = '"' + text[3]  # an escape as a row's first byte: the row, not the one before
    text[123] = None  # type: ignore[call-overload]
    wide[5_000], wide[17_000] = 2**53, None
    who[9] = None
    table = pa.table(
        {
            "text": pa.array(text, text_type),
            "wide": pa.array(wide, pa.int64()),
            "id": pa.array(range(count), pa.int64()),
            "who": pa.array(who, pa.string()),
        }
    )
    assert scanned(table) == expected(table)


def test_a_parquet_file_many_batches_and_the_whole_set(tmp_path: Path) -> None:
    n = 150_000  # more than two of the query's batches
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "text": [f'line {i}\n"quoted"' if i % 50_000 == 7 else f"ticket {i}" for i in range(n)],
            "who": [f"User{i % 1000}@Example.com" if i % 7 else f"Zoë {i % 5}" for i in range(n)],
            "big": pa.array([2**60 if i == 3 else i for i in range(n)], pa.int64()),
        }
    )
    path = tmp_path / "r.parquet"
    pq.write_table(table, path, row_group_size=40_000)
    seen: list[int] = []
    found = scan(path, key="id", subject="who", hasher=HASHER, progress=seen.append)
    assert found is not None and found.rows == n
    assert seen == sorted(seen) and seen[-1] == n and len(seen) > 2
    small = table.slice(0, 2_000)
    assert scanned(small) == expected(small)
    # The whole set through the scan equals the batch pipeline's (a list of dicts).
    by_scan = fingerprint(path, key="id", subject="who", hasher=HASHER)
    by_rows = fingerprint(table.to_pylist(), key="id", subject="who", hasher=HASHER)
    assert by_scan.records.root == by_rows.records.root
    assert by_scan.records.table.equals(by_rows.records.table)


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([{"id": 1, "who": "a"}, {"id": 1, "who": "b"}], "a repeated key"),
        ([{"id": None, "who": "a"}, {"id": 2, "who": "b"}], "a missing key"),
        ([{"id": 1, "who": "a"}, {"id": 2, "who": "   "}], "an empty subject"),
        ([{"id": 1, "who": "a"}, {"id": 2, "who": "\t"}], "a subject empty once normalised"),
        ([{"id": 1, "who": "a", "x": 1.5}], "a float column"),
        ([{"id": 1, "who": "a", "__mlprov_digest": "x"}], "a column named as the query's output"),
        ([{"id": 1, "who": "a", "nul\x00": "x"}], "a column name SQL cannot spell"),
    ],
)
def test_what_the_scan_leaves_to_the_batch_pipeline(
    rows: list[dict[str, object]], why: str
) -> None:
    assert scan(pa.Table.from_pylist(rows), key="id", subject="who", hasher=HASHER) is None, why


def test_text_keys_and_errors_keep_their_rows(tmp_path: Path) -> None:
    table = pa.table({"id": ["a", "b", "c"], "who": ["x", "y", "z"]})
    found = scan(table, key="id", subject="who", hasher=HASHER)
    assert found is not None and found.keys is not None
    assert sorted(found.keys.to_pylist()) == ["a", "b", "c"]
    assert scan(pa.table({"id": ["a", ""]}), key="id") is None
    numbered = scan(
        pa.table({"who": pa.array([7, None], pa.int32())}), subject="who", hasher=HASHER
    )
    assert numbered is not None and numbered.subjects is not None
    assert sorted(numbered.subjects.to_pylist(), key=bool) == [None, HASHER.hash("7")]
    # The errors come from the batch pipeline, with the rows of the file.
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": [5, 6, 5], "who": ["x", "y", "z"]}), path)
    with pytest.raises(InputError, match="rows 1 and 3 have the same key '5'"):
        fingerprint(path, key="id")
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": [1, 2], "who": ["x", " "]}), empty)
    with pytest.raises(InputError, match="row 1: a subject is empty"):
        fingerprint(empty, subject="who", hasher=HASHER)


def test_sources_it_does_not_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    assert scan(bad) is None
    with pytest.raises(InputError, match="cannot read it as Parquet"):
        fingerprint(bad)
    assert scan(pa.table({"id": pa.array([], pa.int64())})) is None
    assert scan([{"id": 1}]) is None  # lists, pandas and others: the batch pipeline
    weird = pa.table({"we\"i'rd": ["a"], "ünï côdé": [1], "sp ace": [True]})
    found = scan(weird)
    assert found is not None and found.digests is not None
    assert bytes(found.digests[0]) == record_digest(weird.to_pylist()[0])
