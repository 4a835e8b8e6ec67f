"""The report model: items that each name the ledger fields they were filled from.

A :class:`Report` is sections of :class:`Item`\\ s. An item either holds a value filled
from named ledger fields (`source.acquisition`, `transform.counts.removed`,
`build.config.tokens`, ...) or is *missing*: its value is None and its `fields` name what
would fill it. The item refuses any other state, so a report cannot hold an answer that
rests on nothing. Every report ends with the list of its missing items.

A report is written as Markdown (:func:`to_markdown`) or JSON (:func:`to_json`, read back
by :func:`from_json`); both carry the same items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from mlprov.errors import InputError

__all__ = [
    "SCHEMA_VERSION",
    "Item",
    "Kind",
    "Report",
    "Section",
    "filled",
    "from_json",
    "missing",
    "to_json",
    "to_markdown",
]

SCHEMA_VERSION: Final = 1
Kind = Literal["datasheet", "eu-training-summary", "ab2013"]
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class Item:
    """One answer of a report, and the ledger fields it rests on.

    `fields` is never empty: for a filled item it names the fields the value was read
    from; for a missing one (`value` None) the fields that would fill it. `note` says
    more: what was partially recorded, or how to record what is missing.
    """

    id: str
    title: str
    value: str | None
    fields: tuple[str, ...]
    missing: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if not self.fields:
            raise ValueError(f"report item {self.id} names no ledger field")
        if self.missing != (self.value is None):
            raise ValueError(f"report item {self.id}: a value is given exactly when not missing")
        if self.value is not None and not self.value.strip():
            raise ValueError(f"report item {self.id}: an empty value is a missing one")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "value": self.value,
            "fields": list(self.fields),
            "missing": self.missing,
            "note": self.note,
        }


def filled(id: str, title: str, value: str, fields: tuple[str, ...], note: str = "") -> Item:
    """An item answered from the ledger fields `fields`."""
    return Item(id, title, value, fields, False, note)


def missing(id: str, title: str, fields: tuple[str, ...], note: str = "") -> Item:
    """An item the ledger cannot answer; `fields` would fill it."""
    return Item(id, title, None, fields, True, note)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Report:
    """A filled report on one target (a dataset or build) of one ledger."""

    kind: Kind
    title: str
    target: str  # the target's name
    target_type: str  # build or dataset
    target_digest: str
    ledger: str  # the ledger's origin
    sections: tuple[Section, ...]

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for s in self.sections for i in s.items)

    @property
    def missing(self) -> tuple[Item, ...]:
        """The items the ledger cannot fill, in report order."""
        return tuple(i for i in self.items if i.missing)

    def item(self, id: str) -> Item:
        """The item with this id."""
        for found in self.items:
            if found.id == id:
                return found
        raise InputError(f"the {self.kind} report has no item {id!r}")


# -- JSON --------------------------------------------------------------------------------


def _json_value(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": report.kind,
        "title": report.title,
        "target": {
            "name": report.target,
            "type": report.target_type,
            "digest": report.target_digest,
        },
        "ledger": report.ledger,
        "sections": [
            {"id": s.id, "title": s.title, "items": [i.to_json() for i in s.items]}
            for s in report.sections
        ],
        "missing": [
            {"id": i.id, "title": i.title, "fields": list(i.fields), "note": i.note}
            for i in report.missing
        ],
    }


def to_json(report: Report) -> bytes:
    """The report as indented JSON (UTF-8, ending with a newline)."""
    return orjson.dumps(_json_value(report), option=orjson.OPT_INDENT_2) + b"\n"


def from_json(data: bytes | str) -> Report:
    """A report read back from :func:`to_json`'s output."""
    try:
        value = orjson.loads(data)
        if value.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"report schema_version {value.get('schema_version')!r} is unknown")
        return _report(value)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the report is not JSON: {exc}", "give to_json's output") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"the report is malformed: {exc!r}", "give to_json's output") from None


def _report(value: Mapping[str, Any]) -> Report:
    target = value["target"]
    sections = tuple(
        Section(
            s["id"],
            s["title"],
            tuple(
                Item(
                    i["id"],
                    i["title"],
                    i["value"],
                    tuple(i["fields"]),
                    bool(i["missing"]),
                    i["note"],
                )
                for i in s["items"]
            ),
        )
        for s in value["sections"]
    )
    return Report(
        value["kind"],
        value["title"],
        target["name"],
        target["type"],
        target["digest"],
        value["ledger"],
        sections,
    )


# -- Markdown ----------------------------------------------------------------------------


def _md(text: str) -> str:
    """Recorded text shown literally: one line, Markdown's special characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _fields(fields: tuple[str, ...]) -> str:
    return ", ".join(f"`{f}`" for f in fields)


def to_markdown(report: Report) -> str:
    """The report as Markdown: its sections, each item with its fields, then Missing."""
    lines = [
        f"# {_md(report.title)}",
        "",
        f"Target: {report.target_type} {_md(report.target)} (`{report.target_digest}`), "
        f"ledger {_md(report.ledger)}.",
        "",
        "Generated by mlprov from the ledger alone: each item names the ledger fields it was "
        "filled from. An item the ledger cannot fill is marked *missing* and listed at the "
        "end with the fields that would fill it; nothing is inferred.",
    ]
    for section in report.sections:
        lines += ["", f"## {_md(section.title)}", ""]
        for item in section.items:
            shown = "*missing*" if item.value is None else _md(item.value)
            lines.append(f"- `{item.id}` **{_md(item.title)}**: {shown}  ")
            lines.append(f"  fields: {_fields(item.fields)}" + ("  " if item.note else ""))
            if item.note:
                lines.append(f"  note: {_md(item.note)}")
    lines += ["", "## Missing", ""]
    if not report.missing:
        lines.append("Nothing is missing: every item is filled from the ledger.")
    for item in report.missing:
        note = f": {_md(item.note)}" if item.note else ""
        lines.append(f"- `{item.id}` {_md(item.title)} — filled by {_fields(item.fields)}{note}")
    return "\n".join(lines) + "\n"
