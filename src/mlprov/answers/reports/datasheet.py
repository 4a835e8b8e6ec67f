"""A datasheet for a dataset (Gebru et al., "Datasheets for Datasets", CACM 2021).

The seven sections of the paper, each with the questions the ledger can answer: who made
the dataset and for what (the purpose only from a build's `intended_purpose`), what it is
composed of, how its sources were collected and under what rights, what each step did,
what it has been used for and with what limits, how a copy is identified, and which
versions exist. Questions the ledger holds no field for (funding, consent procedures,
hosting) are left out rather than answered.
"""

from __future__ import annotations

from typing import Any

from mlprov.answers.reports.facts import Facts, every, gather, listed, period, records, text
from mlprov.answers.reports.items import Item, Report, Section, filled, missing
from mlprov.digest import Digest
from mlprov.ledger.core import LedgerCore

__all__ = ["datasheet"]


def datasheet(ledger: LedgerCore, ref: Any) -> Report:
    """The datasheet of a dataset, or of a build's dataset (by name or digest)."""
    facts = gather(ledger, ref, ("dataset", "build"))
    name = facts.dataset.event.name or ""
    title = f"Datasheet for {name}" + (
        f" (trained into {facts.build.event.name})" if facts.build is not None else ""
    )
    return Report(
        kind="datasheet",
        title=title,
        target=facts.target.event.name or "",
        target_type=facts.target.event.type.value,
        target_digest=str(facts.target.digest),
        ledger=facts.origin,
        sections=(
            Section("motivation", "Motivation", _motivation(facts)),
            Section("composition", "Composition", _composition(facts)),
            Section("collection", "Collection process", _collection(facts)),
            Section("preprocessing", "Preprocessing, cleaning and labelling", _steps(facts)),
            Section("uses", "Uses", _uses(facts)),
            Section("distribution", "Distribution", _distribution(facts)),
            Section("maintenance", "Maintenance", _maintenance(facts)),
        ),
    )


def _motivation(facts: Facts) -> tuple[Item, ...]:
    id, title = "motivation.purpose", "For what purpose was the dataset created?"
    field = ("build.config.intended_purpose",)
    purpose = facts.config("intended_purpose")
    if purpose:
        why = filled(id, title, text(purpose), field, "the purpose of the model trained on it")
    else:
        why = missing(
            id,
            title,
            field,
            "record `intended_purpose` in the build config and report on the build"
            if facts.build is not None
            else "only a build's config records it: report on a build of this dataset",
        )
    ev = facts.dataset.event
    who = filled(
        "motivation.creator",
        "Who created the dataset?",
        f"{ev.actor}, recorded {ev.recorded_at[:10]}",
        ("dataset.actor", "dataset.recorded_at"),
    )
    return why, who


def _composition(facts: Facts) -> tuple[Item, ...]:
    count = facts.dataset.event.payload.get("record_count")
    title = "How many instances are there?"
    if count is None:
        size = missing("composition.count", title, ("dataset.record_count",), "no record count")
    else:
        size = filled("composition.count", title, records(count), ("dataset.record_count",))
    parts = "What is it composed of?"
    fields = ("source.name", "source.version", "source.record_count")
    if facts.sources:
        shown = "; ".join(
            s.ref + (f": {records(s.fact('record_count'))}" if s.fact("record_count") else "")
            for s in facts.sources
        )
        sources = filled("composition.sources", parts, shown, fields)
    else:
        sources = missing("composition.sources", parts, fields, "the dataset names no source")
    return (
        listed(
            "composition.instances",
            "What do the instances represent?",
            every(facts.sources, "description"),
            ("source.description",),
        ),
        size,
        sources,
        listed(
            "composition.personal",
            "Does it contain personal data?",
            every(facts.sources, "personal_data"),
            ("source.personal_data",),
        ),
        listed(
            "composition.copyright",
            "Is any of it protected by copyright?",
            every(facts.sources, "copyright"),
            ("source.copyright",),
        ),
        listed(
            "composition.languages",
            "In which languages is it?",
            every(facts.sources, "languages"),
            ("source.languages",),
        ),
    )


def _collection(facts: Facts) -> tuple[Item, ...]:
    rights = every(facts.sources, "rights_basis")
    return (
        listed(
            "collection.acquisition",
            "How was the data acquired?",
            every(facts.sources, "acquisition"),
            ("source.acquisition",),
        ),
        listed(
            "collection.timeframe",
            "Over what timeframe was it collected?",
            every(facts.sources, "collected"),
            ("source.collected",),
            show=period,
        ),
        listed(
            "collection.owners",
            "Who owns the data?",
            every(facts.sources, "owner"),
            ("source.owner",),
        ),
        listed(
            "collection.rights",
            "On what rights basis is it used?",
            rights,
            ("source.rights_basis",),
        ),
        listed(
            "collection.purpose",
            "For what purpose was the data originally collected?",
            every(facts.sources, "purpose"),
            ("source.purpose",),
        ),
        _reviews(facts),
    )


def _reviews(facts: Facts) -> Item:
    id, title = "collection.review", "Were the sources reviewed?"
    fields = ("review.status",)
    if not facts.sources:
        return missing(id, title, fields, "the dataset names no source")
    shown = "; ".join(f"{s.ref}: {facts.review_of(s.ref)}" for s in facts.sources)
    return filled(id, title, shown, fields)


def _steps(facts: Facts) -> tuple[Item, ...]:
    sf = facts.step_field
    fields = (f"{sf}.name", f"{sf}.params", f"{sf}.counts", f"{sf}.purpose")
    title = "What preprocessing, cleaning or labelling was done?"
    if facts.steps:
        shown = "; ".join(
            s.describe() + (f" (purpose: {s.purpose})" if s.purpose else "") for s in facts.steps
        )
        steps = filled("preprocessing.steps", title, shown, fields)
    else:
        steps = missing("preprocessing.steps", title, fields, "no step is recorded")
    raw = listed(
        "preprocessing.raw",
        "Was the raw data saved?",
        every(facts.sources, "record_root"),
        ("source.record_root",),
        "each source's record set is stored under its root",
        show=lambda v: f"record set {Digest(v).short}",
    )
    return steps, _removed(facts), raw


def _removed(facts: Facts) -> Item:
    sf = facts.step_field
    id, title = "preprocessing.removed", "Which records were removed, and why?"
    fields = (f"{sf}.kind", f"{sf}.counts.removed", f"{sf}.used", f"{sf}.purpose", f"{sf}.reason")
    removals = [s for s in facts.steps if s.kind == "exclusion" or s.removed]
    if not removals:
        return missing(id, title, fields, "no step removed records")
    lines = []
    for s in removals:
        why = [f"purpose: {s.purpose}"] if s.purpose else []
        why += [f"reason: {s.reason}"] if s.reason and s.reason != s.name else []
        did = "held out" if s.name in facts.splits else "removed"  # a split keeps what it holds
        lines.append(
            f"{s.name} {did} {records(s.removed)}"
            + (f" using {', '.join(s.lists)}" if s.lists else "")
            + (f" ({'; '.join(why)})" if why else "")
        )
    lacking = [s.name for s in removals if not s.purpose]
    note = f"no purpose recorded for {', '.join(lacking)}" if lacking else ""
    return filled(id, title, "; ".join(lines), fields, note)


def _uses(facts: Facts) -> tuple[Item, ...]:
    title = "Has the dataset been used already?"
    fields = ("build.name", "build.recorded_at")
    if facts.builds:
        shown = "; ".join(f"{b.event.name} ({b.event.recorded_at[:10]})" for b in facts.builds)
        used = filled("uses.builds", title, shown, fields)
    else:
        used = missing("uses.builds", title, fields, "no build is recorded on this dataset")
    a = facts.approval
    status = a.status
    out = [used]
    for id, title, values, field in (
        ("uses.limits", "Are there uses it should not be put to?", a.limits, "review.limits"),
        ("uses.risks", "What risks remain unresolved?", a.risks, "review.risks"),
    ):
        if status == "never_reviewed":
            out.append(missing(id, title, (field,), "neither it nor its sources were reviewed"))
        else:
            shown = "; ".join(values) or f"none recorded by the review ({status})"
            out.append(filled(id, title, shown, (field, "review.status")))
    return tuple(out)


def _distribution(facts: Facts) -> tuple[Item, ...]:
    p = facts.dataset.event.payload
    labels = {"record_root": "record-set root", "byte_digest": "file SHA-256"}
    have = [k for k in labels if p.get(k)]
    title = "How can a copy be identified?"
    if have:
        shown = "; ".join(f"{labels[k]} {p[k]}" for k in have)
        fields = tuple(f"dataset.{k}" for k in have)
        ident = filled("distribution.identifiers", title, shown, fields)
    else:
        fields = tuple(f"dataset.{k}" for k in labels)
        ident = missing("distribution.identifiers", title, fields, "no digest is recorded")
    licences = listed(
        "distribution.licences",
        "Under what licences are its sources?",
        every(facts.sources, "license"),
        ("source.license",),
    )
    return ident, licences


def _maintenance(facts: Facts) -> tuple[Item, ...]:
    this = facts.dataset.digest
    shown = "; ".join(
        f"{e.event.payload.get('version') or 'no version'} (event {e.digest.short}, recorded "
        f"{e.event.recorded_at[:10]})" + (", this one" if e.digest == this else "")
        for e in facts.versions
    )
    newer = [e for e in facts.versions if e.seq > facts.dataset.seq]
    note = f"{len(newer)} newer version(s) recorded" if newer else "this is the newest recorded"
    return (
        filled(
            "maintenance.versions",
            "Which versions of the dataset exist?",
            shown,
            ("dataset.name", "dataset.version", "dataset.recorded_at"),
            note,
        ),
    )
