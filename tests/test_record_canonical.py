"""mlprov-record/1: the frozen vectors, an independent re-derivation from the spec alone,
and the values the encoding refuses."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import math
import re
import zoneinfo
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.records import SPEC, canonical_record, digest_batch, encode_value, record_digest

VECTORS_PATH = Path(__file__).parent / "vectors" / "records" / "record-digest-v1.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
MISSING = object()

# -- rebuilding typed values from a vector's description -------------------------------------

_CLOCK = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")


def _clock_ns(text: str) -> int:
    m = _CLOCK.fullmatch(text)
    assert m, text
    h, mi, s, frac = m.groups()
    return ((int(h) * 60 + int(mi)) * 60 + int(s)) * 10**9 + int((frac or "").ljust(9, "0"))


def _zone(tz: str) -> dt.tzinfo:
    if tz == "UTC":
        return dt.UTC
    if re.fullmatch(r"[+-]\d\d:\d\d", tz):
        sign = -1 if tz[0] == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    return zoneinfo.ZoneInfo(tz)


def _epoch_ns(node: dict[str, Any]) -> int:
    """Nanoseconds since the epoch (UTC for a zoned timestamp) of a timestamp node."""
    day, clock = node["value"].split("T")
    wall = dt.datetime.fromisoformat(day)
    ns = _clock_ns(clock)
    local = wall + dt.timedelta(microseconds=ns // 1000)
    if node["tz"] is not None:
        local = local.replace(tzinfo=_zone(node["tz"]))
        offset = local.utcoffset()
        assert offset is not None
        local = (local - offset).replace(tzinfo=None)
    return (local - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000 + ns % 1000


def python_value(node: dict[str, Any]) -> Any:
    """The Python value mlprov is given for a typed node."""
    t = node["type"]
    if t in ("null", "missing"):
        return None
    if t in ("bool", "string"):
        return node["value"]
    if t == "int":
        return int(node["value"])
    if t == "float":
        return float(node["value"])
    if t == "bytes":
        return bytes.fromhex(node["hex"])
    if t == "date":
        return dt.date.fromisoformat(node["value"])
    if t == "time":
        ns = _clock_ns(node["value"])
        if ns % 1000:
            return MISSING  # datetime.time holds microseconds only: Arrow checks this one
        us = ns // 1000
        return dt.time(us // 3_600_000_000, us // 60_000_000 % 60, us // 10**6 % 60, us % 10**6)
    if t == "timestamp":
        ns = _epoch_ns(node)
        if ns % 1000:
            import pandas as pd

            return pd.Timestamp(ns, unit="ns", tz="UTC" if node["tz"] else None)
        value = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)
        if node["tz"]:
            value = value.replace(tzinfo=dt.UTC).astimezone(_zone(node["tz"]))
        return value
    if t == "decimal":
        return decimal.Decimal(node["value"])
    if t == "list":
        return [python_value(x) for x in node["items"]]
    if t == "struct":
        return {k: python_value(x) for k, x in node["fields"].items()}
    if t == "map":
        return {k: python_value(x) for k, x in node["entries"]}
    raise AssertionError(t)


def python_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a dict of Python values; a 'missing' node is a key left out."""
    return {k: python_value(n) for k, n in record.items() if n["type"] != "missing"}


def arrow_type(node: dict[str, Any]) -> pa.DataType:
    t = node["type"]
    if t in ("null", "missing"):
        return pa.null()
    if t == "int":
        return pa.uint64() if node.get("arrow") == "uint64" else pa.int64()
    if t == "time":
        return pa.time32(node["unit"]) if node["unit"] in ("s", "ms") else pa.time64(node["unit"])
    if t == "timestamp":
        return pa.timestamp(node["unit"], tz=node["tz"])
    if t == "decimal":
        return pa.decimal128(node["precision"], node["scale"])
    if t == "list":
        items = [x for x in node["items"] if x["type"] != "null"] or [node["item"]]
        return pa.list_(arrow_type(items[0]))
    if t == "struct":
        return pa.struct([(k, arrow_type(x)) for k, x in node["fields"].items()])
    if t == "map":
        return pa.map_(pa.string(), arrow_type(node["value_type"]))
    simple = {"bool": pa.bool_(), "string": pa.string(), "float": pa.float64()}
    return simple.get(t) or {"bytes": pa.binary(), "date": pa.date32()}[t]


def arrow_array(node: dict[str, Any]) -> pa.Array:
    """A one-row Arrow array holding the node, built from integers where Python cannot."""
    t, typ = node["type"], arrow_type(node)
    if t == "timestamp":
        per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[node["unit"]]
        ns = _epoch_ns(node)
        assert ns % per == 0
        return pa.array([ns // per], pa.int64()).cast(typ)
    if t == "time":
        per = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[node["unit"]]
        storage = pa.int32() if node["unit"] in ("s", "ms") else pa.int64()
        return pa.array([_clock_ns(node["value"]) // per], storage).cast(typ)
    if t == "map":
        return pa.array([[(k, python_value(x)) for k, x in node["entries"]]], typ)
    return pa.array([python_value(node)], typ)


def arrow_batch(record: dict[str, Any]) -> pa.RecordBatch:
    names = [k for k, n in record.items() if n["type"] != "missing"]
    arrays = [arrow_array(record[k]) for k in names]
    return pa.RecordBatch.from_arrays(arrays, names=names) if names else pa.record_batch({})


# -- the vectors -------------------------------------------------------------------------------


def test_the_vector_file_is_well_formed() -> None:
    assert SPEC == "mlprov-record/1"
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names)) >= 20
    for v in VECTORS:
        assert set(v) == {"name", "description", "record", "canonical", "digest"}
        assert Digest(v["digest"]).raw == hashlib.sha256(v["canonical"].encode()).digest()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_from_python_values(vector: dict[str, Any]) -> None:
    record = python_record(vector["record"])
    if any(v is MISSING for v in record.values()):
        record = {k: v for k, v in record.items() if v is not MISSING}
        pytest.skip("holds nanoseconds Python's time cannot: checked through Arrow")
    assert canonical_record(record).decode("utf-8") == vector["canonical"]
    assert Digest.from_raw(record_digest(record)) == vector["digest"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_from_arrow(vector: dict[str, Any]) -> None:
    batch = arrow_batch(vector["record"])
    [raw] = digest_batch(batch) if batch.num_rows else digest_batch(pa.record_batch({"x": [None]}))
    assert Digest.from_raw(raw) == vector["digest"]


def test_vectors_cover_every_rule() -> None:
    seen: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        seen.add(node["type"])
        for child in node.get("items", []):
            walk(child)
        for child in node.get("fields", {}).values():
            walk(child)
        for _, child in node.get("entries", []):
            walk(child)

    for v in VECTORS:
        for node in v["record"].values():
            walk(node)
    assert seen == {
        "null", "missing", "bool", "int", "float", "string", "bytes", "date", "time",
        "timestamp", "decimal", "list", "struct", "map",
    }  # fmt: skip
    canon = "\n".join(v["canonical"] for v in VECTORS)
    for needle in ('"NaN"', '"Infinity"', '"-Infinity"', '"9007199254740992"', "Z", '"z":0'):
        assert needle in canon


# -- the spec alone: an independent encoder --------------------------------------------------
# Written from docs/spec/record-digest.md with the standard library only; it never calls
# mlprov's digest or canonical code.


def _es_number(x: float) -> str:
    """ECMAScript Number::toString, for the floats the vectors use (JCS §3.2.2.3)."""
    if x == 0:
        return "0"
    r = repr(x)
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    mantissa, exp = r.split("e")
    digits, n = mantissa.lstrip("-").replace(".", ""), int(exp) + 1
    sign = "-" if x < 0 else ""
    if len(digits) <= n <= 21:
        return sign + digits + "0" * (n - len(digits))
    if -6 < n <= 0:
        return f"{sign}0.{'0' * -n}{digits}"
    frac = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{frac}e{'+' if n > 0 else '-'}{abs(n - 1)}"


def _jcs(v: Any) -> str:
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))  # UTF-16 code-unit order
        return "{" + ",".join(f"{_jcs(k)}:{_jcs(v[k])}" for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ",".join(map(_jcs, v)) + "]"
    if isinstance(v, float):
        return _es_number(v)
    return json.dumps(v, ensure_ascii=False)  # str, int, bool, None: as JCS writes them


def _fraction(ns: int) -> str:
    return f".{ns:09d}".rstrip("0").rstrip(".")


def _spec_value(node: dict[str, Any]) -> Any:
    t = node["type"]
    if t == "null":
        return None
    if t in ("bool", "string"):
        return node["value"]
    if t == "int":
        n = int(node["value"])
        return n if abs(n) <= 2**53 - 1 else str(n)
    if t == "float":
        x = float(node["value"])
        if math.isnan(x):
            return "NaN"
        return x if math.isfinite(x) else ("Infinity" if x > 0 else "-Infinity")
    if t == "bytes":
        return base64.b64encode(bytes.fromhex(node["hex"])).decode()
    if t == "date":
        return node["value"]
    if t == "time":
        ns = _clock_ns(node["value"])
        return node["value"][:8] + _fraction(ns % 10**9)
    if t == "timestamp":
        ns = _epoch_ns(node)
        whole = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ns // 10**9)
        text = whole.isoformat(timespec="seconds") + _fraction(ns % 10**9)
        return text + ("Z" if node["tz"] else "")
    if t == "decimal":
        text = node["value"]
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if t == "list":
        return [_spec_value(x) for x in node["items"]]
    pairs = node["fields"].items() if t == "struct" else node["entries"]
    return {k: _spec_value(x) for k, x in pairs if x["type"] not in ("null", "missing")}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_recomputed_from_the_spec_alone(vector: dict[str, Any]) -> None:
    obj = {
        k: _spec_value(n)
        for k, n in vector["record"].items()
        if n["type"] not in ("null", "missing")
    }
    text = _jcs(obj)
    assert text == vector["canonical"]
    assert "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest() == vector["digest"]


def test_the_spec_document_shows_the_mixed_example_exactly() -> None:
    spec = (Path(__file__).parents[1] / "docs" / "spec" / "record-digest.md").read_text("utf-8")
    [mixed] = [v for v in VECTORS if v["name"] == "mixed-example"]
    assert mixed["canonical"] in spec
    assert mixed["digest"] in spec


# -- encode_value and refusals ----------------------------------------------------------------


def test_encode_value_examples() -> None:
    assert encode_value(None) is None
    assert encode_value(2**64) == "18446744073709551616"
    assert encode_value(b"\x00") == "AA=="
    assert encode_value(decimal.Decimal("1E+3")) == "1000"
    assert encode_value(decimal.Decimal("-1.2300E-2")) == "-0.0123"
    assert encode_value(decimal.Decimal("NaN")) == "NaN"
    assert encode_value(decimal.Decimal("-Infinity")) == "-Infinity"
    assert encode_value((1, None, {"a": None})) == [1, None, {}]
    assert encode_value(bytearray(b"hi")) == encode_value(memoryview(b"hi")) == "aGk="
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert encode_value(dt.datetime(2024, 1, 1, 19, tzinfo=eastern)) == "2024-01-02T00:00:00Z"


def test_int_and_float_of_equal_value_share_a_digest() -> None:
    # pandas turns an int column with nulls into floats; the digest must not change.
    assert record_digest({"n": 3}) == record_digest({"n": 3.0})


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({1: "x"}, "column name 1 is a int"),
        ({"m": {1: "x"}}, "column 'm': the key 1"),
        ({"s": {1, 2}}, "column 's': builtins.set"),
        ({"c": 1j}, "builtins.complex"),
        ({"t": dt.time(1, tzinfo=dt.UTC)}, "time of day with a zone"),
        ({"l": [1, [2, object()]]}, "column 'l'[1][1]: builtins.object"),
        ({"s": {"a": {"b": 1j}}}, "column 's'.a.b"),
        ({"d": decimal.Decimal("1E+5000")}, "over 1000 digits"),
        ({"text": "\ud800"}, "lone surrogate"),
    ],
)
def test_refusals(record: dict[Any, Any], words: str) -> None:
    with pytest.raises(InputError, match=re.escape(words)):
        canonical_record(record)


def test_a_record_must_be_a_mapping() -> None:
    with pytest.raises(InputError, match="not list"):
        canonical_record([("a", 1)])  # type: ignore[arg-type]


def test_numpy_scalars_are_refused_with_a_hint() -> None:
    np = pytest.importorskip("numpy")
    with pytest.raises(InputError, match=r"\.item\(\)"):
        encode_value(np.int64(1))
    assert encode_value(np.float64(1.5)) == 1.5  # a float subclass: taken as a float


def test_arrow_refusals() -> None:
    int_keys = pa.array([[(1, "a")]], pa.map_(pa.int64(), pa.string()))
    with pytest.raises(InputError, match=r"row 0: column 'm'.*the key 1"):
        digest_batch(pa.record_batch([int_keys], names=["m"]))
    dup = pa.array([[("a", 1), ("a", 2)]], pa.map_(pa.string(), pa.int64()))
    with pytest.raises(InputError, match="row 0: column 'm'"):
        digest_batch(pa.record_batch([dup], names=["m"]))
    with pytest.raises(InputError, match="two columns named 'a'"):
        digest_batch(pa.record_batch([pa.array([1]), pa.array([2])], names=["a", "a"]))
    far = pa.array([0, 300_000 * 365 * 86400], pa.int64()).cast(pa.timestamp("s"))
    with pytest.raises(InputError, match=r"row 1: column 't'.*0001-9999"):
        digest_batch(pa.record_batch([far], names=["t"]))
    nested_ns = pa.array([[1]], pa.list_(pa.time64("ns")))
    with pytest.raises(InputError, match="nanosecond times"):
        digest_batch(pa.record_batch([nested_ns], names=["l"]))
    dur = pa.array([1], pa.duration("s"))
    with pytest.raises(InputError, match=r"row 0: column 'd'.*timedelta"):
        digest_batch(pa.record_batch([dur], names=["d"]))


def test_a_batch_without_columns_digests_each_row_as_the_empty_object() -> None:
    batch = pa.RecordBatch.from_struct_array(pa.array([{}, {}], pa.struct([])))
    assert digest_batch(batch) == [hashlib.sha256(b"{}").digest()] * 2
