"""Canonical bytes and digests of records, per the spec ``mlprov-record/1``.

The spec is ``docs/spec/record-digest.md``; ``tests/vectors/records`` freezes it. In short:
a record's canonical bytes are the RFC 8785 JSON (:func:`mlprov.digest.canonical_json`) of
an object mapping each column name to its encoded value, where

* ``None`` members of an object (a column, a struct field, a map entry) are left out, so a
  null cell and a missing key give the same bytes; ``None`` inside a list stays ``null``;
* ``bool``, ``str`` and integers within ±(2**53 − 1) are themselves; larger integers are
  decimal strings;
* finite floats are JSON numbers (JCS spelling, ``-0.0`` is ``0``); NaN and the infinities
  are the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* bytes are standard base64 with padding; ``Decimal`` a normalised positional string;
* dates ``YYYY-MM-DD``; times ``HH:MM:SS[.f]``; timestamps ``YYYY-MM-DDTHH:MM:SS[.f]``,
  with ``Z`` after converting to UTC when zoned, where ``.f`` holds 1–9 digits with no
  trailing zero and is left out when zero;
* lists and tuples are arrays; mappings with ``str`` keys are objects.

A record's digest is SHA-256 of its canonical bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mlprov.digest import canonical_json, sha256_raw
from mlprov.errors import InputError

__all__ = [
    "SPEC",
    "canonical_record",
    "encode_value",
    "format_time",
    "format_timestamp",
    "record_digest",
]

SPEC = "mlprov-record/1"

_MAX_INT = 2**53 - 1
_NS_PER_DAY = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_MIN_DAY = (dt.date.min - _EPOCH).days
_MAX_DAY = (dt.date.max - _EPOCH).days
_MAX_DECIMAL_DIGITS = 1000  # a positional string longer than this is refused, not built


class _Refused(InputError):
    """A value outside the domain; the path inside the record is collected on unwinding.

    Never escapes this module: it is re-raised as an InputError naming the full path. It
    derives from InputError only so that mlprov keeps one exception root.
    """

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what, hint)
        self.what, self.path = what, list[object]()

    def where(self) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(self.path))


def encode_value(value: Any) -> Any:
    """The JSON value (for ``canonical_json``) that encodes one cell, per ``mlprov-record/1``.

    Raises InputError for a value outside the spec's domain, naming the part inside it.
    """
    try:
        return _encode(value)
    except _Refused as e:
        where = e.where().lstrip(".")
        raise InputError(
            f"cannot encode the value{' at ' + where if where else ''}: {e.what}", e.hint
        ) from None


def canonical_record(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a record: RFC 8785 JSON of its encoded, non-null columns."""
    if not isinstance(record, Mapping):
        raise InputError(
            f"a record is a mapping of column name to value, not {type(record).__name__}",
            "pass a dict such as {'text': 'hello', 'label': 1}",
        )
    out: dict[str, Any] = {}
    for name, value in record.items():
        if not isinstance(name, str):
            raise InputError(
                f"column name {name!r} is a {type(name).__name__}, not a string",
                "name every column with a string",
            )
        if value is None:
            continue
        try:
            out[name] = _encode(value)
        except _Refused as e:
            raise InputError(f"column {name!r}{e.where()}: {e.what}", e.hint) from None
    try:
        return canonical_json(out)
    except InputError as e:  # a lone surrogate: the path canonical_json names is the column's
        raise InputError(f"cannot encode the record: {e.message}", e.hint) from None


def record_digest(record: Mapping[str, Any]) -> bytes:
    """The 32 raw bytes of SHA-256 over :func:`canonical_record` (``Digest.from_raw`` for text)."""
    return sha256_raw(canonical_record(record))


def format_timestamp(epoch_ns: int, zoned: bool) -> str:
    """A timestamp given as nanoseconds since 1970-01-01T00:00:00 (UTC when ``zoned``)."""
    try:
        return _timestamp(epoch_ns, zoned)
    except _Refused as e:
        raise InputError(e.what, e.hint) from None


def format_time(ns: int) -> str:
    """A time of day given as nanoseconds since midnight: ``HH:MM:SS`` and 0-9 fraction digits."""
    try:
        return _time(ns)
    except _Refused as e:
        raise InputError(e.what, e.hint) from None


def _timestamp(epoch_ns: int, zoned: bool) -> str:
    days, ns = divmod(epoch_ns, _NS_PER_DAY)
    if not _MIN_DAY <= days <= _MAX_DAY:
        raise _Refused(
            f"the timestamp {epoch_ns} ns from the epoch is outside the years 0001-9999",
            "mlprov-record/1 holds years 0001-9999 only",
        )
    day = _EPOCH + dt.timedelta(days=days)
    return f"{day.isoformat()}T{_time(ns)}{'Z' if zoned else ''}"


def _time(ns: int) -> str:
    if not 0 <= ns < _NS_PER_DAY:
        raise _Refused(f"the time of day {ns} ns is outside 00:00-24:00", "fix the value")
    secs, frac = divmod(ns, 10**9)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return f"{text}.{f'{frac:09d}'.rstrip('0')}" if frac else text


def _encode(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if -_MAX_INT <= v <= _MAX_INT else str(int(v))
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, Mapping):
        return _encode_object(v)
    if isinstance(v, list | tuple):
        return _encode_array(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dt.datetime):
        return _datetime(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        if v.tzinfo is not None:
            raise _Refused("a time of day with a zone has no UTC form", "drop the zone first")
        micros = ((v.hour * 60 + v.minute) * 60 + v.second) * 10**6 + v.microsecond
        return _time(micros * 1000)
    if isinstance(v, Decimal):
        return _decimal(v)
    raise _Refused(
        f"{type(v).__module__}.{type(v).__qualname__} is not a type mlprov-record/1 encodes",
        "convert it to str, int, float, bool, bytes, Decimal, date, time, datetime, "
        "list or dict first (numpy scalars: .item())",
    )


def _encode_object(v: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, x in v.items():
        if not isinstance(k, str):
            raise _Refused(
                f"the key {k!r} is a {type(k).__name__}, not a string",
                "struct fields and map keys must be strings; cast map keys to string",
            )
        if x is None:
            continue
        try:
            out[k] = _encode(x)
        except _Refused as e:
            e.path.append(k)
            raise
    return out


def _encode_array(v: list[Any] | tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for i, x in enumerate(v):
        try:
            out.append(_encode(x))
        except _Refused as e:
            e.path.append(i)
            raise
    return out


def _datetime(v: dt.datetime) -> str:
    # pandas.Timestamp is a datetime subclass that carries nanoseconds beyond microsecond
    nanos = int(getattr(v, "nanosecond", 0) or 0)
    if v.tzinfo is not None and v.utcoffset() is not None:
        micros = (v - _EPOCH_UTC) // dt.timedelta(microseconds=1)
        return _timestamp(micros * 1000 + nanos, zoned=True)
    micros = (v.replace(tzinfo=None) - _EPOCH_NAIVE) // dt.timedelta(microseconds=1)
    return _timestamp(micros * 1000 + nanos, zoned=False)


def _decimal(d: Decimal) -> str:
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "-Infinity" if d.is_signed() else "Infinity"
    digits, exponent = d.as_tuple()[1:]
    assert isinstance(exponent, int)
    if max(len(digits) + max(exponent, 0), -exponent) > _MAX_DECIMAL_DIGITS:
        raise _Refused(
            f"the decimal {d} would need over {_MAX_DECIMAL_DIGITS} digits written out",
            "mlprov-record/1 writes decimals positionally; round it or store it as text",
        )
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
