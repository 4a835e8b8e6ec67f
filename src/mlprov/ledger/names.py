"""One resolver for what a user names: a source, dataset or build (or any named event).

Every command and API call that takes one accepts the same forms, read here and nowhere
else (the forms themselves are checked by :mod:`mlprov.validation`):

- ``NAME@VERSION``: the event of that name recording that version. A source is listed
  under ``NAME@VERSION``; a dataset or build under its name, with the version in its
  payload, whatever recorded it (a pipeline's ``p.dataset(..., version="v8")``,
  ``mlprov manifest record``, ``mlprov record``).
- ``NAME``: the newest event of that name; :attr:`Found.note` then says which version
  was taken, for the command line to show.
- a digest, ``sha256:<hex>``, or a unique prefix of 6 or more hex digits.

A hex word is first looked up as a name, then as a digest prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlprov.digest import Digest
from mlprov.errors import ConflictError, InputError, NotFoundError
from mlprov.ledger.events import Entry
from mlprov.validation import check_version, parse_ref


class LedgerCore(Protocol):
    """What the resolver reads of a ledger (`mlprov.ledger.core.LedgerCore` is one)."""

    def get(self, ref: str | Digest) -> Entry: ...

    def entries(
        self, *, type: str | None = None, name: str | None = None, newest_first: bool = False
    ) -> Iterator[Entry]: ...


class TracingCore(LedgerCore, Protocol):
    """A ledger the dataset versions read: also each event's ancestors."""

    def trace(self, ref: str | Digest) -> list[Entry]: ...


__all__ = [
    "CONTENT",
    "FACTS",
    "NAMED",
    "SUBJECTS",
    "Found",
    "find",
    "history",
    "label",
    "next_version",
    "recorded_dataset",
    "recorded_source",
    "step_signature",
]

#: What a source, dataset or build is: the subjects of proofs, reviews, manifests, builds.
SUBJECTS = ("source", "dataset", "build")
#: Every event type listed under a name, in the order a bare name is looked up.
NAMED = ("source", "dataset", "build", "evaluation", "transform", "run")


def label(entry: Entry) -> str:
    """How an event is named to a user: ``NAME@VERSION`` when it has a version, else its
    name, else its digest."""
    payload = entry.event.payload
    name, version = payload.get("name"), payload.get("version")
    if isinstance(name, str) and isinstance(version, str):
        return f"{name}@{version}"
    return entry.event.name or str(entry.digest)


@dataclass(frozen=True)
class Found:
    """The event a reference resolved to, and how."""

    entry: Entry
    given: str
    newest: bool = False  # a bare NAME, resolved to the newest event of that name

    @property
    def label(self) -> str:
        return label(self.entry)

    @property
    def note(self) -> str | None:
        """What a bare name was taken to mean (None when the reference was exact)."""
        if not self.newest or "version" not in self.entry.event.payload:
            return None
        return f"{self.given} is taken as {self.label}, its newest version ({self.entry.digest})"


def _kinds(types: tuple[str, ...]) -> str:
    return " or ".join(types) if len(types) < len(NAMED) else "event"


def _check(entry: Entry, types: tuple[str, ...], given: str) -> Entry:
    kind = entry.event.type.value
    if kind not in types:
        raise InputError(
            f"{given} is a {kind} event, not a {_kinds(types)}",
            f"give a {_kinds(types)} as NAME, NAME@VERSION or a digest",
        )
    return entry


def _candidates(core: LedgerCore, kind: str, name: str, version: str | None) -> Iterator[Entry]:
    if kind == "source":
        if version is not None:  # a source is listed under NAME@VERSION
            yield from core.entries(type=kind, name=f"{name}@{version}", newest_first=True)
        else:
            for e in core.entries(type=kind, newest_first=True):
                if e.event.payload.get("name") == name:
                    yield e
        return
    for e in core.entries(type=kind, name=name, newest_first=True):
        if version is None or e.event.payload.get("version") == version:
            yield e


def find(core: LedgerCore, ref: Entry | Digest | str, types: tuple[str, ...] = SUBJECTS) -> Found:
    """The event of one of `types` that `ref` names (see the module doc).

    Raises InputError for a malformed reference or one naming another type of event, and
    NotFoundError when nothing of that name, version or digest is recorded.
    """
    if isinstance(ref, Entry):
        return Found(_check(ref, types, str(ref.digest)), str(ref.digest))
    if isinstance(ref, Digest):
        return Found(_check(core.get(ref), types, str(ref)), str(ref))
    parsed = parse_ref(ref, f"the {_kinds(types)}")
    if parsed.name is not None:
        for kind in types:
            hit = next(_candidates(core, kind, parsed.name, parsed.version), None)
            if hit is not None:
                return Found(hit, parsed.text, newest=parsed.version is None)
        others = {
            e.event.type.value
            for kind in NAMED
            if kind not in types
            for e in _first(_candidates(core, kind, parsed.name, parsed.version))
        }
        if others:
            raise InputError(
                f"{parsed.text} names a {' and a '.join(sorted(others))}, not a {_kinds(types)}",
                f"give a {_kinds(types)} as NAME, NAME@VERSION or a digest",
            )
    if parsed.digest_like:
        return Found(_check(core.get(parsed.text), types, parsed.text), parsed.text)
    versions = ""
    if parsed.name is not None and parsed.version is not None:
        known = [label(e) for kind in types for e in _candidates(core, kind, parsed.name, None)]
        if known:
            versions = "; recorded: " + ", ".join(sorted(set(known))[:10])
    raise NotFoundError(
        f"no {_kinds(types)} {parsed.text} in this ledger{versions}",
        "name it as NAME or NAME@VERSION, or give a digest; `mlprov log` lists what is recorded",
    )


def _first(found: Iterator[Entry]) -> list[Entry]:
    hit = next(found, None)
    return [] if hit is None else [hit]


# Facts of a source version that must not change between two recordings of it.
FACTS = (
    "record_root",
    "rights_basis",
    "license",
    "owner",
    "collected",
    "personal_data",
    "acquisition",
    "purpose",
    "modality",
    "languages",
    "description",
    "copyright",
    "aggregate_consumer_info",
)


def _plain(value: object) -> object:
    """A fact as JSON holds it: tuples as lists, mappings as dicts, digests as their text."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, str) else value


def _shown(value: object) -> str:
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain)


def recorded_source(core: LedgerCore, payload: Mapping[str, Any]) -> Entry | None:
    """The event already recording the source `name@version` of `payload`, if any.

    A name and version name one content: recording it again with the same records and
    facts is idempotent (the earlier event is the answer, nothing new is recorded); with
    other records, or a fact that differs from the recorded one, it is refused with a
    ConflictError naming both values. Facts left out (None) are not compared.
    """
    ref = f"{payload['name']}@{payload['version']}"
    earlier = next(core.entries(type="source", name=ref, newest_first=True), None)
    if earlier is None:
        return None
    old = earlier.event.payload
    for fact in FACTS:
        new, was = payload.get(fact), old.get(fact)
        if new is None:
            continue
        if _plain(was) != _plain(new):
            what = "record root" if fact == "record_root" else fact
            raise ConflictError(
                f"source {ref} is already recorded (event {earlier.digest}) with {what} "
                f"{_shown(was)}; this gives {_shown(new)}",
                f"a name and version name one content: record this under a new version, "
                f"{payload['name']}@NEW-VERSION",
            )
    return earlier


# -- dataset versions -------------------------------------------------------------------------

#: What a dataset version is: two dataset events of one name agreeing on all of these, and
#: on their history (`history`), record the same content (ADR 0018).
CONTENT = ("record_root", "record_count", "byte_digest", "sources", "steps", "manifest")
_COUNTED = re.compile(r"v([0-9]{1,9})")


def history(core: TracingCore, parents: Iterable[Digest]) -> list[tuple[Any, ...]]:
    """The steps that made a dataset, in log order: each succeeded step among the
    ancestors of `parents`, by name, kind, parameters and the names of what it used."""
    seen: dict[int, Entry] = {}
    for parent in parents:
        for e in core.trace(parent):
            if e.event.type.value == "transform" and e.event.payload.get("status") != "failed":
                seen[e.seq] = e
    return [step_signature(e.event.payload) for _, e in sorted(seen.items())]


def step_signature(p: Mapping[str, Any]) -> tuple[Any, ...]:
    """What `history` keeps of one step: its name, kind, parameters and what it used."""
    used = sorted((u.get("role", ""), u.get("name") or "") for u in p.get("used", ()))
    return (p.get("name"), p.get("kind", "transform"), _plain(p.get("params", {})), used)


def _content(payload: Mapping[str, Any]) -> dict[str, Any]:
    found = {k: _plain(payload.get(k)) for k in CONTENT}
    found = {k: None if v in ([], {}) else v for k, v in found.items()}  # empty: left out
    manifest = found.get("manifest")
    if isinstance(manifest, dict):  # the manifest's own version and event are not content
        found["manifest"] = {k: v for k, v in manifest.items() if k not in ("version", "event")}
    return found


def _differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for key in CONTENT:
        if old[key] != new[key]:
            return "record root" if key == "record_root" else key.replace("_", " ")
    return None


def recorded_dataset(
    core: TracingCore,
    payload: Mapping[str, Any],
    parents: Iterable[Digest],
    *,
    made: list[tuple[Any, ...]] | None = None,
) -> Entry | None:
    """The event already recording this dataset's content, if any (see ADR 0018).

    A dataset's content is its record root and count, byte digest, sources, steps and
    hand-written manifest (`CONTENT`) and the steps that made it (`history` of `parents`).
    With a `version`, the event of that `name@version`: the same content is idempotent
    (the earlier event is the answer, nothing new is recorded), other content a
    ConflictError naming both. Without one, any earlier version of the name with the same
    content; None means a new version is to be recorded (`next_version`). `made` is the
    history when `parents` are not recorded yet (steps about to be appended with it).
    """
    name, version = payload["name"], payload.get("version")
    if version is not None:
        check_version(version, f"the version of dataset {name}")
    mine = _content(payload)
    for earlier in core.entries(type="dataset", name=name, newest_first=True):
        old = earlier.event.payload
        if version is not None and old.get("version") != version:
            continue
        theirs = _content(old)
        what = _differs(theirs, mine)
        if what is None:
            made = history(core, parents) if made is None else made
            if history(core, earlier.event.parents) == made:
                return earlier
            what = "history (its steps, their parameters or what they used)"
        if version is not None:
            values = ""
            if what == "record root":
                values = f" {theirs['record_root']}; this gives {mine['record_root']}"
            raise ConflictError(
                f"dataset {name}@{version} is already recorded (event {earlier.digest}) with "
                f"another {what}{values}",
                f"a name and version name one content: record this under a new version, "
                f"{name}@NEW-VERSION, or leave the version out to have one counted",
            )
    return None


def next_version(core: LedgerCore, name: str) -> str:
    """The version a new dataset `name` is recorded as when none is given: `vN`, one past
    the highest `vN` recorded for that name (`v1` for the first)."""
    counted = [
        int(found.group(1))
        for e in core.entries(type="dataset", name=name)
        if isinstance(v := e.event.payload.get("version"), str)
        and (found := _COUNTED.fullmatch(v)) is not None
    ]
    return f"v{max(counted, default=0) + 1}"
