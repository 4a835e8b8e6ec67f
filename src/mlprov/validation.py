"""The one set of validators for values that come from outside: names, versions,
references, collection periods, key names and JSON payloads.

The command line, the Python API and the payload models all call these, so a value is
accepted or refused the same way wherever it is given, with one message saying what form
is expected. Each `*_problem` function returns why a value is malformed (None when it is
well formed); the `check_*` and `parse_*` functions raise :class:`InputError` with that
reason and an example.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mlprov.errors import InputError

__all__ = [
    "NAME_FORM",
    "ONGOING",
    "PERIOD_FORM",
    "TOKEN_NAME_FORM",
    "VERSION_FORM",
    "Ref",
    "check_name",
    "check_period",
    "check_token_name",
    "check_version",
    "file_name_problem",
    "hex_digest",
    "loads_json",
    "name_problem",
    "parse_period",
    "parse_ref",
    "period_problem",
    "split_versioned",
    "token_name_problem",
    "version_problem",
]

MAX_NAME = 200
NAME_FORM = (
    "a name is letters, digits and . _ / : + -, starting with a letter or digit "
    "(no spaces, no '@'), e.g. support-chat-export"
)
VERSION_FORM = (
    "a version is 1 to 200 printable characters without spaces or '@', e.g. 2026-05-22 or v8"
)
PERIOD_FORM = (
    "a period is START..END, each a date YYYY, YYYY-MM or YYYY-MM-DD, START not after END; "
    "END may be `ongoing`, e.g. 2024-01..2026-05"
)
ONGOING = "ongoing"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:+-]*")
_DATE_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def name_problem(name: object) -> str | None:
    """Why `name` is not a name of a source, step, dataset or build; None if it is one."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name.strip():
        return "it is blank"
    if len(name) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    if "@" in name:
        return "it contains '@' (put the version after the name: NAME@VERSION)"
    if not _NAME_RE.fullmatch(name):
        return "it has characters a name cannot hold"
    return None


def version_problem(version: object) -> str | None:
    """Why `version` is not a version; None if it is one."""
    if not isinstance(version, str):
        return f"it is a {type(version).__name__}, not text"
    if not version.strip():
        return "it is blank"
    if len(version) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    if "@" in version:
        return "it contains '@'"
    if any(ch.isspace() for ch in version) or not version.isprintable():
        return "it contains spaces or unprintable characters"
    return None


def check_name(name: object, what: str = "name") -> str:
    problem = name_problem(name)
    if problem:
        raise InputError(f"{what} {name!r} is not a valid name: {problem}", NAME_FORM)
    assert isinstance(name, str)
    return name


TOKEN_NAME_FORM = (
    "a token name is 1 to 100 letters, digits and . _ + - @, starting with a letter or digit "
    "(no spaces, no '/'), e.g. carol@example.com or nightly-pipeline"
)
_TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@-]{0,99}")


def token_name_problem(name: object) -> str | None:
    """Why `name` is not a server token's name (the actor of what its holder records);
    None if it is one. No path characters, no spaces: it is shown and logged as is."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name.strip():
        return "it is blank"
    if len(name) > 100:
        return "it is longer than 100 characters"
    if not _TOKEN_NAME_RE.fullmatch(name):
        return "it has characters a token name cannot hold"
    return None


def check_token_name(name: object, what: str = "token name") -> str:
    problem = token_name_problem(name)
    if problem:
        raise InputError(f"{what} {name!r} is not valid: {problem}", TOKEN_NAME_FORM)
    assert isinstance(name, str)
    return name


def check_version(version: object, what: str = "version") -> str:
    problem = version_problem(version)
    if problem:
        raise InputError(f"{what} {version!r} is not a valid version: {problem}", VERSION_FORM)
    assert isinstance(version, str)
    return version


@dataclass(frozen=True)
class Ref:
    """A reference as given: `NAME`, `NAME@VERSION`, or (`digest`) a digest or hex prefix."""

    text: str
    name: str | None
    version: str | None
    digest_like: bool


_DIGEST_LIKE = re.compile(r"(?:sha256:)?[0-9a-fA-F]{6,64}")


def parse_ref(text: object, what: str = "reference") -> Ref:
    """Split a reference to a source, dataset or build into its parts, refusing a malformed
    one. A `sha256:` reference is a digest only; a hex word may be a name or a prefix."""
    if not isinstance(text, str):
        raise InputError(
            f"{what} must be text, not {type(text).__name__}",
            "give NAME, NAME@VERSION or a digest",
        )
    given, text = text, text.strip()
    hint = "give NAME, NAME@VERSION, or a digest: sha256:<hex> or its first 6+ hex digits"
    if text.lower().startswith("sha256:"):
        if not _DIGEST_LIKE.fullmatch(text):
            raise InputError(f"{what} {given!r} is not a digest", hint)
        return Ref(text, None, None, True)
    name, at, version = text.partition("@")
    if name_problem(name):
        raise InputError(
            f"{what} {given!r} is not NAME or NAME@VERSION: {name_problem(name)}",
            NAME_FORM if at else hint,
        )
    if at and version_problem(version):
        raise InputError(
            f"{what} {given!r} has no valid version: {version_problem(version)}", VERSION_FORM
        )
    return Ref(text, name, version if at else None, not at and bool(_DIGEST_LIKE.fullmatch(text)))


def split_versioned(text: object, what: str = "source") -> tuple[str, str]:
    """`NAME@VERSION` as (name, version), both checked; a version is required."""
    ref = parse_ref(text, what) if isinstance(text, str) and "@" in text else None
    if ref is None or ref.name is None or ref.version is None:
        raise InputError(
            f"{what} {text!r} is not NAME@VERSION", "e.g. support-chat-export@2026-05-22"
        )
    return ref.name, ref.version


# -- periods ----------------------------------------------------------------------------------


def _bounds(text: str) -> tuple[date, date] | None:
    """The first and last day a date of the form YYYY, YYYY-MM or YYYY-MM-DD covers."""
    found = _DATE_RE.fullmatch(text)
    if not found:
        return None
    year, month, day = (int(g) if g else None for g in found.groups())
    assert year is not None
    try:
        if month is None:
            return date(year, 1, 1), date(year, 12, 31)
        if day is None:
            following = date(year + month // 12, month % 12 + 1, 1) if 1 <= month <= 12 else None
            return (date(year, month, 1), following - timedelta(days=1)) if following else None
        return date(year, month, day), date(year, month, day)
    except ValueError:
        return None


def period_problem(start: object, end: object) -> str | None:
    """Why (start, end) is not a collection period; None if it is one."""
    if not isinstance(start, str) or not isinstance(end, str):
        return "its start and end must be text"
    first = _bounds(start)
    if first is None:
        return f"its start {start!r} is not a date"
    if end == ONGOING:
        return None
    last = _bounds(end)
    if last is None:
        return f"its end {end!r} is not a date (nor `{ONGOING}`)"
    if first[0] > last[1]:
        return f"it runs backwards: {start} is after {end}"
    return None


def check_period(start: object, end: object, what: str = "collection period") -> tuple[str, str]:
    problem = period_problem(start, end)
    if problem:
        raise InputError(
            f"{what} {start}..{end} is not a collection period: {problem}", PERIOD_FORM
        )
    assert isinstance(start, str) and isinstance(end, str)
    return start, end


def parse_period(text: str, what: str = "--collected") -> tuple[str, str]:
    """`START..END` (spaces around either end are dropped) as a checked (start, end)."""
    start, dots, end = text.partition("..")
    if not dots:
        raise InputError(f"{what} {text!r} is not START..END", PERIOD_FORM)
    return check_period(start.strip(), end.strip(), what)


# -- key and file names -----------------------------------------------------------------------


def file_name_problem(name: str) -> str | None:
    """Why a name that becomes a file name (a key's) is refused; None if it is safe.

    Key names are URL-like (`example.com/log`) and become one file name each; a name with
    a path part that is empty, `.` or `..` reads as a path out of the keys folder."""
    parts = re.split(r"[/\\]", name)
    if any(p in ("", ".", "..") for p in parts):
        return "it has an empty, '.' or '..' path part, like a path rather than a name"
    return None


# -- JSON from outside ------------------------------------------------------------------------


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(
                f"the JSON has the key {key!r} twice in one object",
                "a key appears once per object (RFC 8785 and I-JSON); remove the repeat",
            )
        seen[key] = value
    return seen


def loads_json(data: bytes | str, what: str = "the JSON") -> Any:
    """Parse JSON given from outside as I-JSON (RFC 7493), which RFC 8785 assumes: UTF-8,
    no duplicate member names, no NaN or Infinity. Raises InputError naming the problem."""
    hint = "give one JSON value, with each key once per object"
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text", hint) from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except InputError as exc:
        raise InputError(exc.message.replace("the JSON", what, 1), exc.hint) from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply", hint) from None
    except ValueError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}", hint) from None


# -- digests given by hand --------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")


def hex_digest(text: object, what: str = "the digest") -> bytes:
    """A SHA-256 digest or root typed by a user: 64 hex digits, optionally after `sha256:`
    (any case, surrounding spaces dropped), as its 32 bytes."""
    plain = text.strip().lower().removeprefix("sha256:") if isinstance(text, str) else ""
    if not _HEX64.fullmatch(plain):
        raise InputError(
            f"{what} {text!r} is not a SHA-256 digest",
            "give its 64 hex digits, optionally after sha256:",
        )
    return bytes.fromhex(plain)
