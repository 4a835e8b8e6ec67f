"""California AB 2013 (Cal. Civ. Code §3111(a)): the twelve items of the high-level summary
of the datasets used to train a generative AI system.

Filled for a build or dataset from its training sources (opt-out lists are consulted, not
trained on, and are left out) and steps. A yes or no rests on a fact every source records
(`copyright`, `acquisition`, `personal_data`, `aggregate_consumer_info`); when one source
lacks it the item is missing, with what is recorded. Item 2 comes only from the build
config's `intended_purpose`. Item 11 is the time of the earliest build whose trace holds
the source (else the earliest dataset that does).
"""

from __future__ import annotations

from typing import Any

from mlprov.answers.reports.facts import (
    ONGOING,
    Facts,
    answer,
    every,
    gather,
    listed,
    period,
    records,
    text,
)
from mlprov.answers.reports.items import Item, Report, Section, filled, missing
from mlprov.ledger.core import LedgerCore

__all__ = ["ITEMS", "ab2013"]

#: The twelve items of §3111(a), in the statute's order.
ITEMS = (
    "The sources or owners of the datasets",
    "How the datasets further the intended purpose of the system",
    "The number of data points in the datasets",
    "The types of data points in the datasets",
    "Whether the datasets include data protected by copyright, trademark or patent, or are "
    "entirely in the public domain",
    "Whether the datasets were purchased or licensed by the developer",
    "Whether the datasets include personal information (Civ. Code §1798.140(v))",
    "Whether the datasets include aggregate consumer information (Civ. Code §1798.140(b))",
    "Whether there was cleaning, processing or other modification by the developer, and "
    "its intended purpose",
    "The time period during which the data were collected, and whether collection is ongoing",
    "The dates the datasets were first used during development",
    "Whether the system used or continuously uses synthetic data generation",
)


def ab2013(ledger: LedgerCore, ref: Any) -> Report:
    """The AB 2013 documentation of a build or dataset (by name or digest)."""
    facts = gather(ledger, ref, ("build", "dataset"))
    target = facts.target
    items = (
        _sources(facts),
        _purpose(facts),
        _count(facts),
        _types(facts),
        _copyright(facts),
        answer(
            "6",
            ITEMS[5],
            every(facts.sources, "acquisition"),
            ("source.acquisition",),
            lambda v: v in ("purchased", "licensed"),
            "no source is recorded as purchased or licensed",
        ),
        answer(
            "7",
            ITEMS[6],
            every(facts.sources, "personal_data"),
            ("source.personal_data",),
            bool,
            "every source records that it holds no personal data",
        ),
        answer(
            "8",
            ITEMS[7],
            every(facts.sources, "aggregate_consumer_info"),
            ("source.aggregate_consumer_info",),
            bool,
            "every source records that it holds no aggregate consumer information",
        ),
        _cleaning(facts),
        _period(facts),
        _first_used(facts),
        _synthetic(facts),
    )
    return Report(
        kind="ab2013",
        title=f"AB 2013 training data documentation: {target.event.name}",
        target=target.event.name or "",
        target_type=target.event.type.value,
        target_digest=str(target.digest),
        ledger=facts.origin,
        sections=(Section("3111a", "Cal. Civ. Code §3111(a)", items),),
    )


def _sources(facts: Facts) -> Item:
    fields = ("source.name", "source.version", "source.owner")
    if not facts.sources:
        return missing("1", ITEMS[0], fields, "the dataset names no source")
    lacking = [s.ref for s in facts.sources if not s.fact("owner")]
    value = "; ".join(
        s.ref + (f" (owner: {s.fact('owner')})" if s.fact("owner") else "") for s in facts.sources
    )
    note = f"no owner recorded for {', '.join(lacking)}" if lacking else ""
    return filled("1", ITEMS[0], value, fields, note)


def _purpose(facts: Facts) -> Item:
    field = ("build.config.intended_purpose",)
    purpose = facts.config("intended_purpose")
    if facts.build is None:
        return missing(
            "2", ITEMS[1], field, "a dataset has no build config: report on a build instead"
        )
    if not purpose:
        return missing("2", ITEMS[1], field, "record `intended_purpose` in the build config")
    return filled("2", ITEMS[1], text(purpose), field)


def _count(facts: Facts) -> Item:
    count = facts.dataset.event.payload.get("record_count")
    if count is None:
        return missing("3", ITEMS[2], ("dataset.record_count",), "no record count")
    per = [(s.ref, s.fact("record_count")) for s in facts.sources]
    shown = "; ".join(f"{ref}: {n:,}" for ref, n in per if n is not None)
    ongoing = [s.ref for s in facts.sources if (s.fact("collected") or ("", ""))[1] == ONGOING]
    note = (
        f"collection is ongoing for {', '.join(ongoing)}: the figure is of this version"
        if ongoing
        else ""
    )
    fields = ("dataset.record_count", "source.record_count") if shown else ("dataset.record_count",)
    value = records(count) + (f" (from sources: {shown})" if shown else "")
    return filled("3", ITEMS[2], value, fields, note)


def _types(facts: Facts) -> Item:
    rec = every(facts.sources, "description")
    if not rec.complete:
        return missing("4", ITEMS[3], ("source.description",), rec.note())
    parts = []
    for s, v in rec.have:
        modality = s.fact("modality")
        parts.append(f"{s.ref}: {v}" + (f" ({modality})" if modality else ""))
    fields: tuple[str, ...] = ("source.description",)
    if any(s.fact("modality") for s, _ in rec.have):
        fields += ("source.modality",)
    return filled("4", ITEMS[3], "; ".join(parts), fields, "labels are not a recorded field")


def _copyright(facts: Facts) -> Item:
    rec = every(facts.sources, "copyright")
    fields = ("source.copyright",)
    note = "copyright is recorded; trademark and patent are not recorded fields"
    if not rec.complete:
        return missing("5", ITEMS[4], fields, rec.note())
    protected = [f"{s.ref} ({v})" for s, v in rec.have if v != "public_domain"]
    if protected:
        return filled("5", ITEMS[4], "yes: " + ", ".join(protected), fields, note)
    return filled("5", ITEMS[4], "no: every source is recorded as public domain", fields, note)


def _cleaning(facts: Facts) -> Item:
    sf = facts.step_field
    fields = (f"{sf}.name", f"{sf}.counts", f"{sf}.purpose")
    if not facts.steps:
        return missing("9", ITEMS[8], fields, "the ledger records no step for this dataset")
    shown = "; ".join(
        s.describe() + f" (purpose: {s.purpose or 'not recorded'})" for s in facts.steps
    )
    lacking = [s.name for s in facts.steps if not s.purpose]
    if lacking:
        return missing(
            "9",
            ITEMS[8],
            (f"{sf}.purpose",),
            f"the intended purpose is not recorded for {', '.join(lacking)}; steps: {shown}",
        )
    return filled("9", ITEMS[8], "yes: " + shown, fields)


def _period(facts: Facts) -> Item:
    rec = every(facts.sources, "collected")
    ongoing = [s.ref for s, v in rec.have if v[1] == ONGOING]
    note = f"collection is ongoing for {', '.join(ongoing)}" if ongoing else ""
    return listed("10", ITEMS[9], rec, ("source.collected",), note, show=period)


def _first_used(facts: Facts) -> Item:
    uses = [(s.ref, facts.first_use.get(s.ref)) for s in facts.sources]
    kinds = sorted({u.kind for _, u in uses if u is not None})
    fields = tuple(f"{k}.recorded_at" for k in kinds) or ("build.recorded_at",)
    lacking = [ref for ref, u in uses if u is None]
    if not uses or lacking:
        why = f"not recorded in this ledger: {', '.join(lacking)}" if lacking else "no source"
        return missing("11", ITEMS[10], fields, why)
    value = "; ".join(
        f"{ref}: {u.when[:10]} ({u.kind} {u.name})" for ref, u in uses if u is not None
    )
    note = "" if kinds == ["build"] else "a source no build used is dated by its first dataset"
    return filled("11", ITEMS[10], value, fields, note)


def _synthetic(facts: Facts) -> Item:
    rec = every(facts.sources, "acquisition")
    fields = ("source.acquisition", "source.purpose")
    if not rec.complete:
        return missing("12", ITEMS[11], ("source.acquisition",), rec.note())
    hits = [s for s, v in rec.have if v == "synthetic"]
    if not hits:
        return filled(
            "12", ITEMS[11], "no: no source is recorded as synthetic", ("source.acquisition",)
        )
    shown = ", ".join(
        s.ref + (f" (purpose: {s.fact('purpose')})" if s.fact("purpose") else "") for s in hits
    )
    return filled("12", ITEMS[11], "yes: " + shown, fields)
