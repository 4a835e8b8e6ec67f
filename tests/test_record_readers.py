"""Every reader gives the same record digests for the same rows; bad input is an InputError
naming the file and, where the reader can tell, the row, line and column."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError, MissingExtraError, NotFoundError
from mlprov.records import digest_batch, read_batches, record_digest

SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("big", pa.int64()),  # beyond ±(2**53 - 1): a decimal string
        ("f", pa.float64()),
        ("s", pa.string()),
        ("ok", pa.bool_()),
        ("nothing", pa.null()),
        ("raw", pa.binary()),
        ("day", pa.date32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("amount", pa.decimal128(12, 3)),
        ("tags", pa.list_(pa.string())),
        ("pair", pa.struct([("x", pa.int64()), ("y", pa.string())])),
    ]
)
# CSV holds flat text: no lists or structs. Bytes go as their base64 text in a string column,
# which the spec encodes identically; the null-typed column is left out.
FLAT = ["i", "big", "f", "s", "ok", "raw", "day", "at", "amount"]
CSV_SCHEMA = pa.schema([SCHEMA.field(n) for n in FLAT]).set(
    FLAT.index("raw"), pa.field("raw", pa.string())
)
# JSONL holds no bytes either: base64 text in a string column, as for CSV.
JSONL_SCHEMA = SCHEMA.set(SCHEMA.get_field_index("raw"), pa.field("raw", pa.string()))

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_MAX = 2**53 - 1


def nullable(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "i": nullable(st.integers(-_MAX, _MAX)),
            "big": nullable(st.integers(_MAX + 1, 2**63 - 1) | st.integers(-(2**63), -_MAX - 1)),
            "f": nullable(st.floats(allow_nan=False, allow_infinity=True)),
            "s": nullable(text),
            "ok": nullable(st.booleans()),
            "nothing": st.none(),
            "raw": nullable(st.binary(max_size=8)),
            "day": nullable(st.dates()),
            "at": nullable(
                st.datetimes(
                    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)
                ).map(lambda d: d.replace(tzinfo=dt.UTC))
            ),
            "amount": nullable(
                st.decimals(min_value=-(10**8), max_value=10**8, places=3).map(
                    lambda d: d.quantize(decimal.Decimal("0.001"))
                )
            ),
            "tags": nullable(st.lists(nullable(text), max_size=3)),
            "pair": nullable(st.fixed_dictionaries({"x": nullable(st.integers(-9, 9)), "y": text})),
        }
    ),
    min_size=1,
    max_size=6,
)


def as_text(name: str, value: Any) -> Any:
    """A cell as CSV holds it: bytes as their base64 text."""
    return base64.b64encode(value).decode() if name == "raw" and value is not None else value


def digests(source: Any, **kw: Any) -> list[bytes]:
    return [d for batch in read_batches(source, batch_size=4, **kw) for d in digest_batch(batch)]


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    def plain(v: Any) -> Any:  # the JSON a typical writer makes; dates keep their offsets
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        if isinstance(v, dt.date | decimal.Decimal):
            return str(v) if isinstance(v, decimal.Decimal) else v.isoformat()
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            raise AssertionError("JSON holds no infinity")
        return v

    with open(path, "w", encoding="utf-8") as f:
        for n, row in enumerate(rows):
            # a null cell is written as null or left out, in turn: both read as null
            obj = {k: plain(v) for k, v in row.items() if v is not None or n % 2}
            f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return ""  # unquoted empty: null
        if isinstance(v, str):
            return '"' + v.replace('"', '""') + '"'  # quoted, so "" is the empty string
        if isinstance(v, bytes):  # base64 text in a string column: quoted, so b"" is ""
            return '"' + base64.b64encode(v).decode() + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        return v.isoformat() if isinstance(v, dt.date) else str(v)

    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(FLAT) + "\n")
        for row in rows:
            f.write(",".join(cell(row[n]) for n in FLAT) + "\n")


def to_pandas(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    # nullable dtypes keep large integers exact; object columns hold the rest as Python values
    dtypes = {"i": "Int64", "big": "Int64", "ok": "boolean", "f": "float64"}
    return pd.DataFrame(
        {n: pd.Series([r[n] for r in rows], dtype=dtypes.get(n, object)) for n in SCHEMA.names}
    )


def to_polars(rows: list[dict[str, Any]]) -> Any:
    import polars as pl

    return pl.from_arrow(pa.Table.from_pylist(rows, schema=SCHEMA))


def to_dataset(rows: list[dict[str, Any]]) -> Any:
    import datasets

    return datasets.Dataset(pa.Table.from_pylist(rows, schema=SCHEMA))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy)
def test_every_reader_gives_the_same_digests(rows: list[dict[str, Any]]) -> None:
    expected = [record_digest(r) for r in rows]
    flat_expected = [record_digest({n: as_text(n, r[n]) for n in FLAT}) for r in rows]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    assert digests(table) == expected
    assert digests(table.to_batches()[0]) == expected
    # a missing key reads as null, which the spec leaves out like a missing key
    assert digests([{k: v for k, v in r.items() if v is not None} for r in rows]) == expected
    assert digests(rows, schema=SCHEMA) == expected
    assert digests(to_pandas(rows)) == expected  # floats here are never NaN: see below
    assert digests(to_polars(rows)) == expected
    assert digests(to_dataset(rows)) == expected
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pq.write_table(table, d / "r.parquet", row_group_size=3)
        assert digests(d / "r.parquet") == expected
        feather.write_feather(table, d / "r.arrow")
        assert digests(d / "r.arrow") == expected
        with pa.OSFile(str(d / "s.arrow"), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as w:
            w.write_table(table)
        assert digests(d / "s.arrow") == expected
        if not any(r["f"] in (float("inf"), float("-inf")) for r in rows):
            write_jsonl(rows, d / "r.jsonl")
            assert digests(d / "r.jsonl", schema=JSONL_SCHEMA) == expected
        write_csv(rows, d / "r.csv")
        assert digests(d / "r.csv", schema=CSV_SCHEMA) == flat_expected


def test_bytes_and_their_base64_text_share_a_digest() -> None:
    assert record_digest({"raw": b"\x00\xff"}) == record_digest({"raw": "AP8="})


def test_nan_and_infinities_across_readers(tmp_path: Path) -> None:
    rows = [{"f": float("nan")}, {"f": float("inf")}, {"f": float("-inf")}, {"f": None}]
    expected = [record_digest(r) for r in rows]
    table = pa.table({"f": pa.array([r["f"] for r in rows], pa.float64())})
    pq.write_table(table, tmp_path / "f.parquet")
    assert digests(tmp_path / "f.parquet") == expected
    assert digests(rows) == expected
    import polars as pl

    assert digests(pl.from_arrow(table)) == expected
    # CSV skips blank lines, so a one-column CSV holds no null row: the others cover it
    (tmp_path / "f.csv").write_text("f\nNaN\ninf\n-inf\n", encoding="utf-8")
    assert digests(tmp_path / "f.csv", schema=table.schema) == expected[:3]
    # JSONL: standard JSON has no NaN; the spec's text for it is the string "NaN"
    (tmp_path / "f.jsonl").write_text(
        '{"f":"NaN"}\n{"f":"Infinity"}\n{"f":"-Infinity"}\n{}\n', encoding="utf-8"
    )
    assert digests(tmp_path / "f.jsonl") == expected
    # pandas holds NaN and null alike, so a NaN read from pandas is null (documented)
    import pandas as pd

    from_pandas = digests(pd.DataFrame({"f": [float("nan"), float("inf")]}))
    assert from_pandas == [record_digest({}), expected[1]]


def test_jsonl_keeps_text_as_text(tmp_path: Path) -> None:
    # Arrow's own JSON reader would turn these strings into timestamps
    path = tmp_path / "t.jsonl"
    path.write_text('{"d": "2024-01-02", "t": "2024-01-02T03:04:05+02:00"}\n', encoding="utf-8")
    [digest] = digests(path)
    assert digest == record_digest({"d": "2024-01-02", "t": "2024-01-02T03:04:05+02:00"})
    schema = pa.schema([("d", pa.date32()), ("t", pa.timestamp("s", tz="UTC"))])
    [typed] = digests(path, schema=schema)
    assert typed == record_digest({"d": "2024-01-02", "t": "2024-01-02T01:04:05Z"})


def test_nanosecond_timestamps_from_pandas_and_arrow_agree() -> None:
    import pandas as pd

    stamps = pd.Series(pd.to_datetime(["2024-01-02T03:04:05.123456789Z", None]))
    [first, second] = digests(pd.DataFrame({"t": stamps}))
    assert first == record_digest({"t": "2024-01-02T03:04:05.123456789Z"})
    assert second == record_digest({})


def test_large_sources_stream_in_batches(tmp_path: Path) -> None:
    table = pa.table({"n": list(range(1000))})
    pq.write_table(table, tmp_path / "n.parquet", row_group_size=100)
    sizes = [b.num_rows for b in read_batches(tmp_path / "n.parquet", batch_size=64)]
    assert max(sizes) <= 64 and sum(sizes) == 1000
    (tmp_path / "n.jsonl").write_text("".join(f'{{"n":{i}}}\n' for i in range(1000)), "utf-8")
    sizes = [b.num_rows for b in read_batches(tmp_path / "n.jsonl", batch_size=64)]
    assert max(sizes) <= 64 and sum(sizes) == 1000
    (tmp_path / "n.csv").write_text("n\n" + "".join(f"{i}\n" for i in range(1000)), "utf-8")
    sizes = [b.num_rows for b in read_batches(tmp_path / "n.csv", schema=table.schema,
                                                 batch_size=64)]  # fmt: skip
    assert max(sizes) <= 64 and sum(sizes) == 1000


# -- bad input ---------------------------------------------------------------------------------


def fails(source: Any, words: list[str], **kw: Any) -> InputError:
    with pytest.raises(InputError) as info:
        list(read_batches(source, **kw))
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    return info.value


def test_missing_file_is_not_found_at_once(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        read_batches(tmp_path / "gone.parquet")  # raised before iterating


def test_directory_and_unknown_suffix(tmp_path: Path) -> None:
    fails(tmp_path, ["is a directory"])
    (tmp_path / "x.txt").write_text("a", "utf-8")
    fails(tmp_path / "x.txt", ["x.txt", "suffix '.txt'"])


def test_truncated_and_corrupt_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": list(range(1000))}), tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    err = fails(tmp_path / "cut.parquet", ["cut.parquet", "cannot read it as Parquet"])
    assert err.hint and "truncated" in err.hint
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    fails(tmp_path / "junk.parquet", ["junk.parquet"])
    (tmp_path / "bad.parquet").write_bytes(data[:8] + b"\0" * 200 + data[208:])
    fails(tmp_path / "bad.parquet", ["bad.parquet"])


def test_truncated_arrow(tmp_path: Path) -> None:
    feather.write_feather(pa.table({"a": list(range(100))}), tmp_path / "ok.arrow")
    data = (tmp_path / "ok.arrow").read_bytes()
    (tmp_path / "cut.feather").write_bytes(data[: len(data) // 2])
    fails(tmp_path / "cut.feather", ["cut.feather", "Arrow IPC"])


CSV_BAD = pa.schema([("id", pa.int64()), ("name", pa.string()), ("day", pa.date32())])


def test_csv_needs_a_schema(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n", "utf-8")
    err = fails(tmp_path / "a.csv", ["a.csv", "needs a schema"])
    assert err.hint and "schema=" in err.hint


def test_csv_value_that_does_not_fit(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('id,name,day\n1,"x",2024-01-01\n2,"a\nb",\nzz,"y",\n', "utf-8")
    fails(tmp_path / "a.csv", ["a.csv", "row 2 (line 5)", "column 'id'", "'zz'", "int64"],
          schema=CSV_BAD)  # fmt: skip
    (tmp_path / "b.csv").write_text("id,name,day\n1,x,2024-13-01\n", "utf-8")
    fails(tmp_path / "b.csv", ["row 0 (line 2)", "column 'day'"], schema=CSV_BAD)


def test_csv_wrong_number_of_fields(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name,day\n1,x,\n2,y\n", "utf-8")
    fails(tmp_path / "a.csv", ["a.csv", "row 1 (line 3)", "Expected 3 columns"], schema=CSV_BAD)


def test_csv_header_must_match_the_schema(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,nom,day\n1,x,\n", "utf-8")
    fails(tmp_path / "a.csv", ["not in the schema: 'nom'", "missing: 'name'"], schema=CSV_BAD)


def test_csv_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"id,name,day\n1,ok,\n2,caf\xe9,\n")
    fails(tmp_path / "a.csv", ["a.csv", "line 3", "not valid UTF-8"], schema=CSV_BAD)


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    fails(tmp_path / "a.jsonl", ["a.jsonl", "line 2", "not valid UTF-8"])


def test_jsonl_schema_changing_mid_file(tmp_path: Path) -> None:
    lines = ['{"a": 1, "b": "x"}'] * 10 + ['{"a": "one"}']
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    fails(tmp_path / "a.jsonl", ["line 11", "column 'a'", "a string here but a number on line 1",
                                 "changes mid-file"], batch_size=4)  # fmt: skip


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"a": NaN}', ["line 2", "NaN is not JSON"]),
        ('{"a": 1, "a": 2}', ["line 2", "'a' appears twice"]),
        ("[1, 2]", ["line 2 is an array, not an object"]),
        ('{"a": 1', ["line 2, column", "not JSON"]),
        ('{"a": 1e400}', ["line 2", "too large"]),
    ],
)
def test_jsonl_bad_lines(tmp_path: Path, line: str, words: list[str]) -> None:
    (tmp_path / "a.jsonl").write_text('{"a": 0}\n' + line + "\n", "utf-8")
    fails(tmp_path / "a.jsonl", ["a.jsonl", *words])


def test_jsonl_with_a_schema(tmp_path: Path) -> None:
    schema = pa.schema([("day", pa.date32())])
    (tmp_path / "a.jsonl").write_text('{"day": "2024-01-01"}\n{"day": "soon"}\n', "utf-8")
    fails(tmp_path / "a.jsonl", ["row 1", "line 2", "column 'day'"], schema=schema)
    (tmp_path / "b.jsonl").write_text('{"day": "2024-01-01", "x": 1}\n', "utf-8")
    fails(tmp_path / "b.jsonl", ["line 1", "column 'x' is not in the schema"], schema=schema)
    fails(tmp_path / "b.jsonl", ["cannot hold the type binary", "base64"],
          schema=pa.schema([("raw", pa.binary())]))  # fmt: skip


def test_rows_with_mixed_types(tmp_path: Path) -> None:
    fails([{"a": 1}, {"a": 2}, {"a": "three"}], ["row 2", "column 'a'"])
    fails([{"a": 1}, ["not", "a", "dict"]], ["row 1 is a list"])
    fails([{1: "x"}], ["row 0 has a column named 1"])


def test_schema_mismatch_for_in_memory_sources() -> None:
    table = pa.table({"a": ["1", "x"]})
    fails(table, ["row 1", "column 'a'", "int64"], schema=pa.schema([("a", pa.int64())]))
    fails(table, ["missing: 'b'"], schema=pa.schema([("a", pa.string()), ("b", pa.int64())]))


def test_unsupported_sources_and_arguments() -> None:
    fails(object(), ["cannot read records from a builtins.object"])
    fails([], ["batch_size"], batch_size=0)
    fails([], ["schema must be a pyarrow.Schema"], schema={"a": "int"})
    import polars as pl

    fails(pl.DataFrame({"a": [1]}).lazy(), ["LazyFrame"])


def test_pandas_edge_cases() -> None:
    import pandas as pd

    fails(pd.DataFrame({0: [1]}), ["column named 0"])
    fails(pd.DataFrame([[1, 2]], columns=["a", "a"]), ["two columns named 'a'"])
    fails(pd.DataFrame({"a": [1, "x"]}), ["DataFrame cannot be read"])
    # the index is not part of the record
    df = pd.DataFrame({"a": [1, 2]}, index=[10, 20])
    assert digests(df) == [record_digest({"a": 1}), record_digest({"a": 2})]


def test_datasets_respects_selection_and_refuses_a_dict() -> None:
    import datasets

    ds = datasets.Dataset.from_dict({"a": [1, 2, 3]}).select([2, 0])
    assert digests(ds) == [record_digest({"a": 3}), record_digest({"a": 1})]
    fails(datasets.DatasetDict({"train": ds}), ["one split"])


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake: Callable[[], Any] = type("DataFrame", (), {"__module__": "polars.dataframe.frame"})
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars now fails
    with pytest.raises(MissingExtraError, match=r"mlprov\[polars\]"):
        list(read_batches(fake()))
    assert isinstance(types.ModuleType, type)


def test_digest_rows_is_the_arrow_form_of_digest_batch() -> None:
    from mlprov.records import digest_rows

    flat = pa.RecordBatch.from_pydict({"id": [1, 2], "text": ['a "q"', "b\n"]})
    other = pa.RecordBatch.from_pydict({"x": [1.5, None], "t": [b"\x00", b""]})
    for batch in (flat, other, flat.slice(1)):
        got = digest_rows(batch)
        assert got.type == pa.binary(32)
        assert (
            got.to_pylist() == digest_batch(batch) == [record_digest(r) for r in batch.to_pylist()]
        )
