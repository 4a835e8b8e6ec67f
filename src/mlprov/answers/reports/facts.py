"""The evidence a report is filled from, gathered from the ledger once.

For a build or dataset target: the dataset (a build's own), its manifest as the ledger
gives it (:func:`mlprov.governance.manifest.from_ledger`), its training sources with their
recorded facts, the opt-out lists its exclusion steps consulted, its steps in order, the
builds recorded on it, the other recorded versions of it, and the date each source was
first used. Review states, limits and risks are read from :mod:`mlprov.answers.view`, as
triage, the postmortem and the model card read them: at build time for a build. An opt-out
list (a source an exclusion step consulted, or one named or marked as an opt-out list) is
consulted, not trained on: it is kept apart from the sources.

Facts outside the ledger's events come only from the build's config, under the keys of
:data:`CONFIG_KEYS`; a report names them as `build.config.KEY`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from mlprov.answers.reports.items import Item, filled, missing
from mlprov.answers.view import LedgerView, view
from mlprov.capture.build import recorded, trained_on
from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.governance.approval import Approval
from mlprov.governance.gates import optout_lists
from mlprov.governance.manifest import Manifest, SourceRecord, builds_on, from_ledger, is_opt_out
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import SourcePayload, TransformPayload

__all__ = [
    "CONFIG_KEYS",
    "ONGOING",
    "Facts",
    "Recorded",
    "SourceFacts",
    "StepFacts",
    "Use",
    "answer",
    "every",
    "gather",
    "listed",
    "period",
    "records",
    "shareable_uri",
    "shown_value",
    "text",
]

#: The build config keys reports read; none is required, each fills the items named.
CONFIG_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "provider": "the provider's name and contact details (EU summary 1.1)",
        "base_model": "the model this one modifies or fine-tunes, with a link to its summary "
        "(EU summary 1.2(ii))",
        "placed_on_market": "the date the model was placed on the Union market (EU 1.2(iii))",
        "continuous_training": "true or false: whether the model keeps being trained on new "
        "data after the latest acquisition date (EU summary 1.3)",
        "intended_purpose": "what the model is for (AB 2013 item 2; datasheet motivation)",
        "tokens": "text tokens in the training data after processing (EU 1.3 text size bin)",
        "images": "images in the training data (EU 1.3 image size bin)",
        "audio_hours": "hours of audio in the training data (EU 1.3 audio size bin)",
        "video_hours": "hours of video in the training data (EU 1.3 video size bin)",
    }
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: The end of a collection period that has not ended.
ONGOING: Final = "ongoing"
M = TypeVar("M", bound=BaseModel)


def _typed(model: type[M], entry: Entry) -> M:
    try:
        return model.model_validate(dict(entry.event.payload))
    except ValidationError:
        raise IntegrityError(
            f"event {entry.digest.short} does not match its {entry.event.type.value} model",
            "run `mlprov verify`",
        ) from None


@dataclass(frozen=True)
class SourceFacts:
    """A source the dataset names: its manifest record and, when the ledger holds it,
    its recorded payload."""

    ref: str
    record: SourceRecord
    payload: SourcePayload | None

    def fact(self, name: str) -> Any:
        """The recorded value of the source fact `name` (a `SourcePayload` field), or None."""
        if self.payload is not None:
            return getattr(self.payload, name)
        return getattr(self.record, name, None)


@dataclass(frozen=True)
class StepFacts:
    """One step between the sources and the dataset."""

    name: str
    kind: str
    step: int | None
    params: Mapping[str, Any]
    purpose: str | None
    counts: Mapping[str, int]
    lists: tuple[str, ...]  # what it consulted (`using`): opt-out lists, by name@version
    reason: str | None

    @property
    def removed(self) -> int:
        return self.counts.get("removed", 0)

    def describe(self) -> str:
        """`name (step N) [params]: in 10, out 9, removed 1`."""
        shown = [k for k in ("in", "out") if k in self.counts]
        shown += [k for k in ("removed", "changed", "added") if self.counts.get(k)]
        counts = ", ".join(f"{k} {self.counts[k]:,}" for k in shown)
        params = ", ".join(f"{k}={shown_value(v)}" for k, v in sorted(self.params.items()))
        return (
            self.name
            + (f" (step {self.step})" if self.step else "")
            + (f" [{params}]" if params else "")
            + (f": {counts}" if counts else "")
        )


@dataclass(frozen=True)
class Use:
    """When a source was first used: the earliest build (else dataset) that holds it."""

    when: str
    kind: str  # build or dataset
    name: str


@dataclass(frozen=True)
class Recorded:
    """A fact across sources: the sources that record it, and those that do not."""

    fact: str
    have: tuple[tuple[SourceFacts, Any], ...]
    lacking: tuple[SourceFacts, ...]

    @property
    def complete(self) -> bool:
        return bool(self.have) and not self.lacking

    def note(self, show: Callable[[Any], str] | None = None) -> str:
        """Why the fact is missing: partially recorded, or recorded for no source."""
        show = show or text
        total = len(self.have) + len(self.lacking)
        if not total:
            return "the dataset names no source"
        if not self.have:
            refs = ", ".join(s.ref for s in self.lacking)
            return f"`{self.fact}` is recorded for no source (not for {refs})"
        have = "; ".join(f"{s.ref}: {show(v)}" for s, v in self.have)
        return (
            f"partially recorded: {len(self.have)} of {total} sources ({have}); "
            f"not recorded for {', '.join(s.ref for s in self.lacking)}"
        )


def shown_value(value: Any) -> str:
    """A parameter's value as a reader sees it: text as it is, anything else as JSON (never
    a Python repr such as `('email', 'phone')` or `False`)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def shareable_uri(value: Any) -> str | None:
    """A source's address when it means something off this machine (a URL such as
    `https://…` or `s3://…`); None for a local path, which a shared report must not show."""
    uri = str(value or "")
    return uri if _URL.match(uri) and not uri.lower().startswith("file:") else None


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return str(value)


def records(n: int) -> str:
    """`1 record`, `1,200 records`."""
    return f"{n:,} record" + ("" if n == 1 else "s")


def period(value: Any) -> str:
    """A recorded collection period (start, end) as text; an end `ongoing` says so."""
    start, end = value
    if end == ONGOING:
        return f"from {start}, ongoing (collection continues)"
    return f"{start} to {end}"


def every(sources: Iterable[SourceFacts], fact: str) -> Recorded:
    """Which sources record `fact` (a value that is not None or empty)."""
    have, lacking = [], []
    for s in sources:
        value = s.fact(fact)
        if value is None or value == () or value == "":
            lacking.append(s)
        else:
            have.append((s, value))
    return Recorded(fact, tuple(have), tuple(lacking))


@dataclass(frozen=True)
class Facts:
    """What a report on `target` reads (see the module doc)."""

    origin: str
    target: Entry
    dataset: Entry
    build: Entry | None
    manifest: Manifest
    sources: tuple[SourceFacts, ...]
    lists: tuple[SourceFacts, ...]
    steps: tuple[StepFacts, ...]
    step_field: str  # `transform`, or `dataset.manifest.transforms` for a hand-written one
    builds: tuple[Entry, ...]  # builds recorded on the dataset, oldest first
    versions: tuple[Entry, ...]  # datasets of the same name, oldest first
    first_use: Mapping[str, Use]  # by source ref
    newest_lists: Mapping[str, str]  # opt-out list name -> its newest recorded name@version
    view: LedgerView  # the review state, limits and risks every answer reads
    #: Steps that split the data: the same step ran once for the training set and once,
    #: on the same input, for the build's evaluation set. What it held out was kept.
    splits: frozenset[str] = frozenset()

    @property
    def approval(self) -> Approval:
        """The dataset's approval at build time (for a dataset target: now)."""
        return self.view.approval

    def review_of(self, ref: str) -> str:
        """A source's review state at build time, as triage and the card give it."""
        found = next((s.at_build for s in self.view.sources if s.ref == ref), None)
        return found.state if found else "not recorded"

    def config(self, key: str) -> Any:
        """The build config's value of `key` (one of CONFIG_KEYS), or None."""
        assert key in CONFIG_KEYS, key
        if self.build is None:
            return None
        value = self.build.event.payload.get("config", {}).get(key)
        return None if isinstance(value, str) and not value.strip() else value


def gather(ledger: LedgerCore, ref: Entry | Digest | str, types: tuple[str, ...]) -> Facts:
    """The facts of the target `ref` (a name or digest), which must be one of `types`."""
    target = recorded(ledger, ref, types)
    build, dataset = trained_on(ledger, target)
    manifest = from_ledger(ledger, dataset)
    steps, step_field = _steps(ledger, dataset, manifest)
    consulted = {ref for s in steps for ref in s.lists}
    everything = [_source(ledger, r) for r in manifest.source_records]

    def is_list(s: SourceFacts) -> bool:
        return bool(s.record.opt_out) or s.ref in consulted or is_opt_out(s.record.name)

    sources = tuple(s for s in everything if not is_list(s))
    lists = tuple(s for s in everything if is_list(s))
    builds = tuple(builds_on(ledger, dataset))
    return Facts(
        origin=ledger.origin,
        target=target,
        dataset=dataset,
        build=build,
        manifest=manifest,
        sources=sources,
        lists=lists,
        steps=steps,
        step_field=step_field,
        builds=builds,
        versions=tuple(ledger.entries(type="dataset", name=dataset.event.name)),
        first_use=_first_use(ledger, sources),
        newest_lists=MappingProxyType(
            {e.event.payload["name"]: e.event.name or "" for e in optout_lists(ledger)}
        ),
        view=view(ledger, target),
        splits=_splits(ledger, build, dataset),
    )


def _splits(ledger: LedgerCore, build: Entry | None, dataset: Entry) -> frozenset[str]:
    if build is None or not build.event.payload.get("eval_set"):
        return frozenset()
    held = [d for d in build.event.parents if d != dataset.digest]  # the eval set's event
    try:
        evaluation = [e for d in held for e in ledger.trace(d)]
    except (InputError, NotFoundError):
        return frozenset()

    def steps(trace: Iterable[Entry]) -> dict[tuple[str, tuple[str, ...]], str]:
        return {
            (e.event.payload["name"], tuple(map(str, e.event.parents))): str(e.digest)
            for e in trace
            if e.event.type.value == "transform"
        }

    train, other = steps(ledger.trace(dataset.digest)), steps(evaluation)
    return frozenset(name for (name, on), d in train.items() if other.get((name, on), d) != d)


def _source(ledger: LedgerCore, record: SourceRecord) -> SourceFacts:
    payload = None
    if record.event is not None:
        entry = ledger.get(record.event)
        if entry.event.type.value == "source":
            payload = _typed(SourcePayload, entry)
    return SourceFacts(record.ref, record, payload)


def _steps(
    ledger: LedgerCore, dataset: Entry, manifest: Manifest
) -> tuple[tuple[StepFacts, ...], str]:
    if "manifest" in dataset.event.payload:  # hand-written: its steps are not events
        return tuple(
            StepFacts(
                name=t.name,
                kind=t.kind,
                step=n,
                params=MappingProxyType(dict(t.params)),
                purpose=None,
                counts=MappingProxyType(dict(t.counts)),
                lists=tuple(u.ref for u in t.used if u.role == "using"),
                reason=None,
            )
            for n, t in enumerate(manifest.transforms, 1)
        ), "dataset.manifest.transforms"
    found = []
    for entry in ledger.trace(dataset.digest):
        if entry.event.type.value != "transform":
            continue
        p = _typed(TransformPayload, entry)
        if p.status != "succeeded":
            continue
        found.append(
            StepFacts(
                name=p.name,
                kind=p.kind,
                step=p.step,
                params=MappingProxyType(dict(p.params)),
                purpose=p.purpose,
                counts=MappingProxyType(dict(p.counts)),
                lists=tuple(u.name or str(u.event) for u in p.used if u.role == "using"),
                reason=p.reason,
            )
        )
    return tuple(found), "transform"


def _first_use(ledger: LedgerCore, sources: tuple[SourceFacts, ...]) -> Mapping[str, Use]:
    """Each source's earliest build whose trace holds it; else its earliest dataset."""
    wanted = {s.record.event: s.ref for s in sources if s.record.event is not None}
    found: dict[str, Use] = {}
    for kind in ("build", "dataset"):
        for entry in ledger.entries(type=kind):
            if len(found) == len(wanted):
                break
            for ancestor in ledger.trace(entry.digest):
                ref = wanted.get(ancestor.digest)
                if ref is not None and ref not in found:
                    found[ref] = Use(entry.event.recorded_at, kind, entry.event.name or "")
    return MappingProxyType(found)


# -- items over every source -------------------------------------------------------------


def listed(
    id: str,
    title: str,
    rec: Recorded,
    fields: tuple[str, ...],
    note: str = "",
    show: Callable[[Any], str] = text,
) -> Item:
    """Each source's value of the fact, when every source records it; else missing."""
    if not rec.complete:
        return missing(id, title, fields, rec.note(show))
    return filled(id, title, "; ".join(f"{s.ref}: {show(v)}" for s, v in rec.have), fields, note)


def answer(
    id: str,
    title: str,
    rec: Recorded,
    fields: tuple[str, ...],
    holds: Callable[[Any], bool],
    no: str,
    note: str = "",
) -> Item:
    """`yes` with the sources for which `holds(value)`, or `no: {no}`; a yes or no needs
    every source to record the fact, else the item is missing."""
    if not rec.complete:
        return missing(id, title, fields, rec.note())
    hits = [s.ref if isinstance(v, bool) else f"{s.ref} ({v})" for s, v in rec.have if holds(v)]
    value = "yes: " + ", ".join(hits) if hits else f"no: {no}"
    return filled(id, title, value, fields, note)
