"""Trails: one record's path from its source through each step of a dataset's history.

A record is found in a source's record set (by subject hash, key or digest) and followed
forward through the steps that consumed that source, using each step's changes file:
by key when the step matched records by key (a `changed` row gives the new digest and the
columns that changed), by digest otherwise. Each step says what it did to the record —
kept, changed or removed (with its reason and, for a duplicate, the key kept instead) —
or that the evidence is missing. Nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlprov.answers.why.deltas import Deltas
from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.records.setviews import SetView

__all__ = ["Fate", "History", "Row", "Trail", "walk"]

Did = Literal["kept", "changed", "removed", "unknown"]


@dataclass(frozen=True)
class Row:
    """One row of a record set: its digest, key and subject hash."""

    digest: bytes
    key: str | None
    subject: bytes | None


@dataclass(frozen=True)
class Fate:
    """What one step did to the record."""

    step: Entry
    did: Did
    detail: str = ""
    columns: tuple[str, ...] | None = None  # changed: the columns it changed (None: unknown)
    duplicate_of: str | None = None  # removed as a duplicate of this key

    @property
    def name(self) -> str:
        return str(self.step.event.payload["name"])

    @property
    def number(self) -> int | None:
        n = self.step.event.payload.get("step")
        return int(n) if n is not None else None

    @property
    def label(self) -> str:
        n = self.number
        return f"{self.name} (step {n})" if n is not None else self.name


@dataclass(frozen=True)
class Trail:
    """A record from its source to the end of the dataset's history."""

    source: Entry
    origin: Row
    fates: tuple[Fate, ...]
    digest: bytes  # its digest after the last step it passed

    @property
    def removed_by(self) -> Fate | None:
        return next((f for f in self.fates if f.did == "removed"), None)

    @property
    def key(self) -> str | None:
        return self.origin.key

    @property
    def subject(self) -> bytes | None:
        return self.origin.subject


@dataclass
class History:
    """A dataset's recorded history, with the record sets and changes files loaded once."""

    ledger: LedgerCore
    dataset: Entry
    entries: list[Entry] = field(init=False)
    missing: list[str] = field(default_factory=list)
    _sets: dict[str, SetView | None] = field(default_factory=dict)
    _changes: dict[str, Deltas | None] = field(default_factory=dict)
    _wanted: dict[str, set[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.entries = self.ledger.trace(self.dataset.digest)

    @property
    def sources(self) -> list[Entry]:
        return [e for e in self.entries if e.event.type.value == "source"]

    @property
    def trained_sources(self) -> list[Entry]:
        """The sources whose records the data is made of: those a step took as its input,
        or the dataset's own parents — not the lists a step only consulted."""
        inputs = {
            u.get("event")
            for s in self.steps
            for u in s.event.payload.get("used", ())
            if u.get("role") == "input"
        }
        parents = set(self.dataset.event.parents)
        return [e for e in self.sources if e.digest in inputs or e.digest in parents]

    @property
    def steps(self) -> list[Entry]:
        return [
            e
            for e in self.entries
            if e.event.type.value == "transform" and e.event.payload.get("status") != "failed"
        ]

    def record_set(self, entry: Entry, root: str | None = None) -> SetView | None:
        """The record set of a source or dataset (or a given root); None, noted, if absent."""
        root = root or entry.event.payload.get("record_root")
        if root is None:
            self._note(f"{entry.event.name or entry.digest.short} has no record set recorded")
            return None
        hexroot = Digest(root).hex
        if hexroot not in self._sets:
            try:
                self._sets[hexroot] = self.ledger.open_record_set(hexroot)
            except (NotFoundError, IntegrityError, InputError) as exc:
                self._note(f"record set {Digest(root).short} of {entry.event.name}: {exc.message}")
                self._sets[hexroot] = None
        return self._sets[hexroot]

    def expect(self, keys: Iterable[str | None], digests: Iterable[bytes]) -> None:
        """The records the question is about: changes files are read for these (and
        again, for another record asked after later)."""
        self._wanted.setdefault("key", set()).update(k for k in keys if k is not None)
        self._wanted.setdefault("duplicate_of", set()).update(k for k in keys if k is not None)
        self._wanted.setdefault("before", set()).update(digests)

    def changes(self, step: Entry) -> Deltas | None:
        digest = step.event.payload.get("changes")
        if digest is None:
            return None
        if digest not in self._changes:
            root = step.event.payload.get("changes_root")
            deltas = Deltas(self.ledger.blobs_dir, Digest(digest), root)
            for column, values in self._wanted.items():
                deltas.want(column, values)
            try:
                deltas.read()
                self._changes[digest] = deltas
            except (NotFoundError, IntegrityError) as exc:
                self._note(f"changes of {step.event.payload['name']}: {exc.message}")
                self._changes[digest] = None
        return self._changes[digest]

    def _note(self, text: str) -> None:
        if text not in self.missing:
            self.missing.append(text)

    def consumers(self, event: Digest) -> list[Entry]:
        """The steps that took `event`'s data as their input, in log order."""
        return [
            s
            for s in self.steps
            if any(
                u.get("role") == "input" and u.get("event") == event
                for u in s.event.payload.get("used", ())
            )
        ]


def rows_where(records: SetView, column: str, value: Any) -> list[Row]:
    """The rows of a record set whose `column` equals `value`."""
    return _as_rows(records.where(column, value))


def rows_where_any(records: SetView, column: str, values: Iterable[Any]) -> list[Row]:
    """The rows of a record set whose `column` equals one of `values`, in digest order."""
    return _as_rows(records.where_any(column, values))


def _as_rows(hits: Any) -> list[Row]:
    return [
        Row(d, k, s)
        for d, k, s in zip(
            hits.column("digest").to_pylist(),
            hits.column("key").to_pylist(),
            hits.column("subject").to_pylist(),
            strict=True,
        )
    ]


#: What a step described by a hand-written manifest, with no changes file, cannot say.
WRITTEN_UNKNOWN = (
    "described by a hand-written manifest, which does not show which records it removed: "
    "give the step's removed_keys file in the manifest (or its input's file and the data "
    "file, as the manifest's only step) and record it again"
)
WRITTEN_UNSHOWN = (
    "described by a hand-written manifest, which does not show what it did to each record "
    "(only a captured step records that: p.transform)"
)


def _fate(history: History, step: Entry, key: str | None, digest: bytes) -> tuple[Fate, bytes]:
    payload = step.event.payload
    written = payload.get("recorded_from") == "manifest"
    if payload.get("changes") is None and written:
        unshown = WRITTEN_UNKNOWN if payload.get("kind") == "exclusion" else WRITTEN_UNSHOWN
        history._note(f"step {payload['name']}: {unshown}")
        detail = "what it did to the record is unknown: " + unshown
        return Fate(step, "unknown", detail), digest
    if payload.get("changes") is None:
        detail = "kept it unchanged (the step changed no record)" + _consulted(payload)
        return Fate(step, "kept", detail), digest
    table = history.changes(step)
    if table is None:
        return Fate(step, "unknown", "its changes file is missing: what it did is unknown"), digest
    by_key = payload.get("matched_by") == "key" and key is not None
    rows = table.rows("key", key) if by_key else table.rows("before", digest)
    for row in rows:
        if row["change"] == "removed":
            reason = row.get("reason")
            dupe = row.get("duplicate_of")
            said = reason and reason != payload["name"]  # a reason that only names the step
            detail = (
                "removed it"
                + (f" (reason: {reason})" if said else "")
                + (f", as a duplicate of key {dupe}" if dupe is not None else "")
            )
            if written:
                detail += " (shown by the files a hand-written manifest names)"
            return Fate(step, "removed", detail, duplicate_of=dupe), digest
        if row["change"] == "changed":
            columns = tuple(row["columns"]) if row.get("columns") is not None else None
            what = f" ({', '.join(columns)})" if columns else ""
            return Fate(step, "changed", f"changed it{what}", columns), row["after"]
    kept = "kept it unchanged" + _consulted(payload)
    if written:
        kept += " (shown by the files a hand-written manifest names)"
    return Fate(step, "kept", kept), digest


def _consulted(payload: Mapping[str, Any]) -> str:
    """For an exclusion by list: what it matched on, against which list."""
    lists = [str(u.get("name")) for u in payload.get("used", ()) if u.get("role") == "using"]
    if not lists:
        return ""
    params = payload.get("params", {})
    what = (
        "its subject"
        if params.get("matched_on") == "subject_hash"
        else f"its value of {params.get('on')}"
    )
    how = ", compared by keyed hash" if params.get("matched_on") == "subject_hash" else ""
    return f": {what} is not on {', '.join(lists)}{how}"


def walk(history: History, source: Entry, row: Row) -> Trail:
    """Follow one source row forward through the dataset's steps."""
    fates: list[Fate] = []
    digest, current = row.digest, source.digest
    seen: set[Digest] = set()
    while True:
        nxt = [s for s in history.consumers(current) if s.digest not in seen]
        if not nxt:
            break
        step = nxt[0]
        seen.add(step.digest)
        fate, digest = _fate(history, step, row.key, digest)
        fates.append(fate)
        if fate.did == "removed":
            break
        current = step.digest
    return Trail(source, row, tuple(fates), digest)


def removed_as_duplicates_of(history: History, key: str) -> Iterator[tuple[Entry, str]]:
    """(step, removed key) for each record a step removed as a duplicate of `key`."""
    for step in history.steps:
        table = history.changes(step)
        if table is None:
            continue
        for row in table.rows("duplicate_of", key):
            if row["change"] == "removed" and row.get("key") is not None:
                yield step, row["key"]


def unique(rows: Iterable[tuple[Entry, Row]]) -> list[tuple[Entry, Row]]:
    """Rows without repeats (the same source row found twice)."""
    seen: set[tuple[Digest, bytes, str | None]] = set()
    found = []
    for source, row in rows:
        mark = (source.digest, row.digest, row.key)
        if mark not in seen:
            seen.add(mark)
            found.append((source, row))
    return found
