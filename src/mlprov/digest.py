"""Digests: the one place in mlprov that turns bytes or values into a SHA-256 digest.

A digest is written ``sha256:<64 lowercase hex>`` (:class:`Digest`). A value is digested
over its RFC 8785 (JCS) canonical JSON, so equal values have equal digests whatever their
dict order or float spelling.

The domain of :func:`canonical_json` (and so of :func:`digest_json`) is JSON values:

* ``dict`` with ``str`` keys (an object); ``list`` or ``tuple`` (an array);
* ``str``, including :class:`Digest`, holding valid Unicode (no lone surrogates);
* ``int`` within ±(2**53 − 1), the integers a JSON number holds exactly (the domain of
  the ``rfc8785`` package); finite ``float``; ``bool``; ``None``.

Subclasses count as their base type. Anything else (NaN, Infinity, a larger integer,
bytes, datetime, set, Decimal, custom objects) raises :class:`~mlprov.errors.InputError`
naming the path of the offending part, such as ``payload.params.threshold``.

Why it is fast: one walk in Python refuses types outside the domain and swaps each float
for an int (if integral) or an ``orjson.Fragment`` of its ECMAScript spelling; orjson then
writes JSON with sorted keys, itself refusing lone surrogates and integers beyond
±(2**53 − 1) (a slower walk then names the path). orjson escapes strings exactly as JCS
does (the tests check every code point) and sorts keys by code point, which equals JCS's
UTF-16 order unless a key holds a character above U+FFFF; so output holding any 4-byte
UTF-8 sequence, or nested deeper than orjson's 254 levels, is made by the ``rfc8785``
package instead: slower, and exact.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import rfc8785

from mlprov.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

__all__ = [
    "Digest",
    "canonical_json",
    "digest_file",
    "digest_json",
    "sha256_hasher",
    "sha256_raw",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FORM = "'sha256:' followed by 64 lowercase hex digits"


#: How many hex digits of a shortened id are shown, unless a caller asks for more.
SHORT_DIGITS = 8


def shorten(digits: str | bytes, keep: int = SHORT_DIGITS) -> str:
    """An id (hex digits, a `sha256:` digest, or raw bytes) shortened on purpose for
    display: its first `keep` hex digits and an ellipsis, so that it never passes for a
    whole one. The one place ids are shortened; the whole id is in `--json` and `show`."""
    text = digits.hex() if isinstance(digits, bytes) else digits.removeprefix("sha256:")
    return text[:keep] + "…" if len(text) > keep else text


class Digest(str):
    """A SHA-256 digest written 'sha256:<64 lowercase hex>'.

    A str subclass, so it serialises as JSON text and compares equal to its string.
    """

    __slots__ = ()
    ALGORITHM = "sha256"

    def __new__(cls, text: str) -> Digest:
        """Validate ``text`` strictly; raise InputError naming the bad value and the form."""
        if isinstance(text, Digest):
            return text
        if isinstance(text, str) and text[:7] == "sha256:" and _HEX64.fullmatch(text, 7):
            return super().__new__(cls, text)
        raise _bad_digest(text)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Like the constructor, but ignores surrounding whitespace (for user input)."""
        return cls(text.strip() if isinstance(text, str) else text)

    @classmethod
    def from_raw(cls, raw: bytes) -> Digest:
        """The digest whose 32 raw bytes are ``raw``."""
        if not isinstance(raw, bytes | bytearray | memoryview) or len(raw) != 32:
            size = f"{len(raw)} bytes" if isinstance(raw, bytes | bytearray) else type(raw).__name__
            raise InputError(f"a raw SHA-256 digest is 32 bytes, not {size}")
        return str.__new__(cls, "sha256:" + bytes(raw).hex())

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        """The SHA-256 digest of ``data``."""
        return str.__new__(cls, "sha256:" + hashlib.sha256(data).hexdigest())

    @property
    def raw(self) -> bytes:
        """The 32 raw bytes."""
        return bytes.fromhex(self[7:])

    @property
    def hex(self) -> str:
        """The 64 hex digits, without the prefix."""
        return self[7:]

    @property
    def short(self) -> str:
        """The first 8 hex digits and "…", for display (`shorten`)."""
        return shorten(self.hex)

    def __repr__(self) -> str:
        return f"Digest({str.__repr__(self)})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validate a str into a Digest; serialise as the str (JSON text in JSON mode)."""
        from pydantic_core import core_schema

        def validate(text: str) -> Digest:
            try:
                return cls(text)
            except InputError as e:  # pydantic reports ValueError as a ValidationError
                raise ValueError(str(e)) from None

        return core_schema.no_info_after_validator_function(
            validate, core_schema.str_schema(), serialization=core_schema.to_string_ser_schema()
        )


def _bad_digest(text: object) -> InputError:
    shown = repr(text) if len(repr(text)) <= 90 else repr(text)[:86] + "...'"
    hint = None
    if not isinstance(text, str):
        what = f"is of type {type(text).__name__}, not text"
    elif text != text.strip():
        what, hint = "has surrounding whitespace", "strip it, or use Digest.parse for user input"
    elif ":" not in text:
        what = "has no algorithm prefix"
        if _HEX64.fullmatch(text.lower()):
            hint = f"a bare hex digest was given; write it as 'sha256:{text.lower()}'"
    elif (algo := text.partition(":")[0]).lower() != "sha256":
        what = f"uses algorithm {algo!r}, but mlprov digests are sha256"
    elif len(hexpart := text.partition(":")[2]) != 64:
        what = f"has {len(hexpart)} hex digits, not 64"
    elif _HEX64.fullmatch(hexpart.lower()):
        what = "is not in lowercase"
        hint = f"write it as 'sha256:{hexpart.lower()}'"
    else:
        what = "has characters that are not hex digits"
    return InputError(f"digest {shown} {what}; expected {_FORM}", hint)


def sha256_hasher() -> hashlib._Hash:
    """A fresh SHA-256 hasher (finish with ``Digest.from_raw(h.digest())``)."""
    return hashlib.sha256()


def digest_file(
    path: Path, *, progress: Callable[[int], None] | None = None, chunk_size: int = 1 << 20
) -> Digest:
    """The SHA-256 digest of a file's bytes, read in chunks (constant memory).

    ``progress``, if given, is called after each chunk with the number of bytes read so far.
    Raises NotFoundError for a missing file and InputError for a directory or unreadable file.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    hasher, done, buf = hashlib.sha256(), 0, bytearray(chunk_size)
    view = memoryview(buf)
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: readinto fills our one buffer
            while n := f.readinto(buf):
                hasher.update(view[:n])
                done += n
                if progress is not None:
                    progress(done)
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}", "check the path") from None
    except OSError as e:  # IsADirectoryError, or PermissionError for a directory on Windows
        if Path(path).is_dir():
            raise InputError(f"{path} is a directory, not a file", "digest its files") from None
        raise InputError(
            f"cannot read {path}: {e.strerror or e}", "check its permissions"
        ) from None
    return Digest.from_raw(hasher.digest())


def sha256_raw(data: bytes) -> bytes:
    """The 32 raw bytes of SHA-256 over ``data`` (hot paths that compare raw digests)."""
    return hashlib.sha256(data).digest()


def digest_json(value: object) -> Digest:
    """The digest of a JSON value: ``Digest.of_bytes(canonical_json(value))``."""
    return Digest.of_bytes(canonical_json(value))


def canonical_json(value: object) -> bytes:
    """The RFC 8785 (JCS) canonical UTF-8 JSON of ``value`` (see the module doc for the domain)."""
    try:
        out = orjson.dumps(_normalise(value), option=_OPTIONS)
    except _Refused as e:
        raise e.error() from None
    except (orjson.JSONEncodeError, RecursionError):  # bad text or integer, or deep nesting
        return _slow(value)
    if not out.isascii() and _FOUR_BYTE_UTF8.search(out):  # a key might sort differently
        return _slow(value)
    return out


# orjson checks text (no lone surrogates) and the integer range (exactly ±(2**53 - 1)) itself,
# so the walk passes these types through untouched and names the path only on failure.
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_LEAVES = frozenset({str, Digest, int, bool, type(None)})
_MAX_INT = 2**53 - 1
_FOUR_BYTE_UTF8 = re.compile(rb"[\xf0-\xf4]")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_HINTS = dict.fromkeys(("datetime", "date", "time"), "write it as ISO 8601 text: .isoformat()")
_HINTS |= dict.fromkeys(("set", "frozenset"), "use a sorted list")
_HINTS["bytes"] = "encode it as hex or base64 text, or store it and record its digest"
_HINTS["Decimal"] = "use a string (exact) or a float"


class _Refused(Exception):
    """A value outside the domain; its path is collected as the walk unwinds."""

    def __init__(self, what: str, hint: str, keyed: bool = False) -> None:
        self.what, self.hint, self.path, self.keyed = what, hint, list[object](), keyed

    def add(self, step: object) -> None:
        if self.keyed:  # a bad key is named in the message, not in the path
            self.keyed = False
        else:
            self.path.append(step)

    def error(self) -> InputError:
        where = "".join(map(_step, reversed(self.path))).lstrip(".") or "the value"
        return InputError(f"cannot encode {where} as canonical JSON: {self.what}", self.hint)


def _step(p: object) -> str:
    if isinstance(p, int):
        return f"[{p}]"
    return f".{p}" if _KEY.fullmatch(str(p)) else f"[{json.dumps(p)}]"


def _slow(value: Any) -> bytes:
    try:
        _check_scalars(value)  # orjson refused a str or int: find it, and its path
        return rfc8785.dumps(value)
    except _Refused as e:
        raise e.error() from None
    except RecursionError:
        raise InputError("the value is nested too deeply for canonical JSON") from None
    except rfc8785.CanonicalizationError as e:  # not expected: the checks above come first
        raise InputError(f"cannot encode the value as canonical JSON: {e}") from None


def _check_scalars(v: Any, what: str = "the text") -> None:
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise _Refused(
                f"{what} has a lone surrogate U+{ord(v[e.start]):04X} at index {e.start}, "
                "which is not valid Unicode",
                "decode the source with errors='replace', or fix it",
            ) from None
    elif isinstance(v, int) and not isinstance(v, bool) and not -_MAX_INT <= v <= _MAX_INT:
        raise _Refused(
            f"the integer {v} is outside ±(2**53 - 1), the range JSON holds exactly",
            "encode large integers as strings",
        )
    elif isinstance(v, dict | list | tuple):
        for k, x in v.items() if isinstance(v, dict) else enumerate(v):
            if isinstance(k, str):
                _check_scalars(k, f"the key {k!r}")
            try:
                _check_scalars(x)
            except _Refused as e:
                e.path.append(k)
                raise


def _float(f: float) -> object:
    r = repr(f) if type(f) is float else float.__repr__(f)
    if "e" not in r and "n" not in r:  # positional and finite: repr is already ECMAScript's
        return int(f) if r[-2:] == ".0" else orjson.Fragment(r)  # bar a trailing ".0"
    if f != f or f in (float("inf"), float("-inf")):
        raise _Refused(f"{r} is not a JSON number", "use null, or a string such as 'NaN'")
    # repr is '[-]d[.ddd]e±XX' with the shortest round-tripping digits; ECMAScript's
    # Number::toString spells the same digits positionally for 1e-7 <= |f| < 1e21
    sign = "-" if r[0] == "-" else ""
    mantissa, exp = r.lstrip("-").split("e")
    digits, n = mantissa.replace(".", ""), int(exp) + 1  # |f| = 0.digits × 10**n
    if len(digits) <= n <= 21:
        return orjson.Fragment(sign + digits + "0" * (n - len(digits)))
    if -6 < n <= 0:
        return orjson.Fragment(f"{sign}0.{'0' * -n}{digits}")
    return orjson.Fragment(f"{sign}{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}")


def _normalise(v: Any) -> Any:
    """``v`` ready for orjson (floats swapped for int or Fragment), or raise _Refused."""
    t = type(v)
    if t in _LEAVES:
        return v
    if t is float:
        return _float(v)
    # containers test their leaves inline, as a call for each would double the cost
    if isinstance(v, dict):
        out = v if t is dict else dict(v)
        try:
            for k, x in v.items():
                if type(k) is not str:
                    out = _plain_key(v, out, k)
                tx = type(x)
                if tx in _LEAVES:
                    continue
                y = _float(x) if tx is float else _normalise(x)
                if y is not x:
                    out = dict(v) if out is v else out
                    out[k] = y  # an existing equal key keeps its (plain str) object
        except _Refused as e:
            e.add(k)
            raise
        return out
    if isinstance(v, list | tuple):
        seq: Any = v if t is list or t is tuple else list(v)
        try:
            for i, x in enumerate(v):
                tx = type(x)
                if tx in _LEAVES:
                    continue
                y = _float(x) if tx is float else _normalise(x)
                if y is not x:
                    seq = list(v) if seq is v else seq
                    seq[i] = y
        except _Refused as e:
            e.add(i)
            raise
        return seq
    if isinstance(v, str | int):  # subclasses count as their base type; orjson agrees
        return v
    if isinstance(v, float):
        return _float(v)
    name = type(v).__name__
    raise _Refused(
        f"{name} is not a JSON type",
        _HINTS.get(
            name,
            "convert it to dict, "
            "list, str, int, float, bool or None first (pydantic: model_dump(mode='json'))",
        ),
    )


def _plain_key(v: dict[Any, Any], out: dict[Any, Any], k: object) -> dict[Any, Any]:
    if not isinstance(k, str):
        raise _Refused(
            f"the key {k!r} is a {type(k).__name__}, not a string",
            "object keys must be strings; convert them with str()",
            keyed=True,
        )
    out = dict(v) if out is v else out
    out[str.__str__(k)] = out.pop(k)  # orjson takes only exact str keys
    return out
