"""The EU AI Act public summary of training content (AI Office template, C(2025) 5235).

Filled for a build (a model) from its dataset's sources and steps and the build's config:

- the header (summary version, last update) from the build event;
- 1.1 provider, 1.2(ii) model dependencies and 1.2(iii) market date only from the build
  config keys `provider`, `base_model` and `placed_on_market` (see
  :data:`mlprov.answers.reports.facts.CONFIG_KEYS`); 1.2(i) is the build's name;
- 1.3 modalities, content types, languages and the latest collection date from the
  sources; the size from the dataset's record count, in records. A size *bin* needs the
  modality's own measure: `tokens` (text), `images`, `audio_hours` or `video_hours` in
  the build config. Record counts are never taken for tokens;
- 2.1–2.6 Y/N from each source's `acquisition`, by :data:`CATEGORIES`. A Y or N needs
  every source to record it;
- 3.1 the exclusion steps that consulted an opt-out list (which list and version, whether
  it was the newest recorded, how many records each removed); 3.2 the other filter and
  exclusion steps, with their recorded purposes (a split is not one: see
  :attr:`mlprov.answers.reports.facts.Facts.splits`); 3.3 every step, and the review
  status. A source's address is shown only when it is a URL: a local path means nothing
  to a reader.

Crawler names, behaviour and top domains (2.3 i–iii, vii) and Code of Practice
signature (3.1) are not recorded fields, and are not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from mlprov.answers.reports.facts import (
    ONGOING,
    Facts,
    Recorded,
    SourceFacts,
    every,
    gather,
    listed,
    period,
    records,
    shareable_uri,
    text,
)
from mlprov.answers.reports.items import Item, Report, Section, filled, missing
from mlprov.digest import Digest
from mlprov.ledger.core import LedgerCore

__all__ = ["BINS", "CATEGORIES", "Bins", "eu_training_summary", "size_bin"]

#: Template data-source category -> (title, the `acquisition` values reported under it).
CATEGORIES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = MappingProxyType(
    {
        "2.1": ("Publicly available datasets", ("public",)),
        "2.2.1": ("Datasets commercially licensed by rightsholders", ("licensed",)),
        "2.2.2": ("Private datasets obtained from other third parties", ("purchased",)),
        "2.3": ("Data crawled and scraped from online sources", ("crawled",)),
        "2.4": ("User data", ("user",)),
        "2.5": ("Synthetic data", ("synthetic",)),
        "2.6": ("Other sources of data", ("other",)),
    }
)
_CRAWL_PERIOD = "Period of data collection by crawling"


class Bins(NamedTuple):
    """A modality's size bins: the build config key that counts it, its unit, the two
    bounds, and the three bins (the middle one includes both bounds: "1 B–10 T")."""

    key: str
    unit: str
    low: float
    high: float
    names: tuple[str, str, str]


#: The template's size bins per modality.
BINS: Final[Mapping[str, Bins]] = MappingProxyType(
    {
        "text": Bins("tokens", "tokens", 1e9, 1e13, ("less than 1 billion tokens",
                     "1 billion to 10 trillion tokens", "more than 10 trillion tokens")),
        "image": Bins("images", "images", 1e6, 1e9, ("less than 1 million images",
                      "1 million to 1 billion images", "more than 1 billion images")),
        "audio": Bins("audio_hours", "hours", 1e4, 1e6, ("less than 10,000 hours",
                      "10,000 hours to 1 million hours", "more than 1 million hours")),
        "video": Bins("video_hours", "hours", 1e4, 1e6, ("less than 10,000 hours",
                      "10,000 hours to 1 million hours", "more than 1 million hours")),
    }
)  # fmt: skip


def size_bin(modality: str, amount: float) -> str:
    """The template's size bin of `amount` (tokens, images or hours) of a modality."""
    bins = BINS[modality]
    below, middle, above = bins.names
    return below if amount < bins.low else middle if amount <= bins.high else above


def _bucket(modality: str) -> str:
    m = modality.lower()
    m = m[:-1] if m.endswith("s") and m[:-1] in BINS else m
    return m if m in BINS else "other"


def eu_training_summary(ledger: LedgerCore, ref: Any) -> Report:
    """The public summary of training content of a build (by name or digest)."""
    facts = gather(ledger, ref, ("build",))
    build = facts.target
    return Report(
        kind="eu-training-summary",
        title=f"Public summary of training content: {build.event.name}",
        target=build.event.name or "",
        target_type="build",
        target_digest=str(build.digest),
        ledger=facts.origin,
        sections=(
            Section("header", "Summary", _header(facts)),
            Section("1", "1. General information", (*_identity(facts), *_data(facts))),
            Section("2", "2. List of data sources", _categories(facts)),
            Section("3", "3. Data processing aspects", _processing(facts)),
        ),
    )


def _header(facts: Facts) -> tuple[Item, ...]:
    build = facts.target
    return (
        filled(
            "header.version",
            "Version of the summary",
            f"generated from build {build.event.name} ({build.digest}); a new build is a "
            "new summary",
            ("build.digest",),
        ),
        filled(
            "header.updated",
            "Last update date",
            build.event.recorded_at[:10],
            ("build.recorded_at",),
        ),
    )


def _config_item(facts: Facts, id: str, title: str, key: str) -> Item:
    value = facts.config(key)
    field = f"build.config.{key}"
    if value is None or not text(value).strip():
        return missing(id, title, (field,), f"not in the ledger: record `{key}` in the config")
    return filled(id, title, text(value), (field,))


def _identity(facts: Facts) -> tuple[Item, ...]:
    p = facts.target.event.payload
    name = f"{p['name']}" + (
        f" (artifact {Digest(p['artifact_digest']).short})" if p.get("artifact_digest") else ""
    )
    fields = (
        ("build.name", "build.artifact_digest") if p.get("artifact_digest") else ("build.name",)
    )
    return (
        _config_item(facts, "1.1", "Provider name and contact details", "provider"),
        filled("1.2.i", "Versioned model name", name, fields),
        _config_item(facts, "1.2.ii", "Model dependencies (the model it modifies)", "base_model"),
        _config_item(facts, "1.2.iii", "Date placed on the Union market", "placed_on_market"),
    )


def _data(facts: Facts) -> tuple[Item, ...]:
    modalities = every(facts.sources, "modality")
    items = [_modalities(modalities), _size(facts)]
    if not modalities.complete:
        items.append(
            missing(
                "1.3.bin",
                "Size bin per modality",
                ("source.modality",),
                "the bins are per modality: " + modalities.note(),
            )
        )
    else:
        found = sorted({_bucket(str(v)) for _, v in modalities.have} - {"other"})
        items += [_bin(facts, m) for m in found]
    content = every(facts.sources, "description")
    languages = every(facts.sources, "languages")
    return (
        *items,
        listed("1.3.content", "Types of content", content, ("source.description",)),
        _latest(facts),
        _config_item(
            facts, "1.3.continuous", "Continuously trained on new data", "continuous_training"
        ),
        listed("1.3.languages", "Linguistic characteristics", languages, ("source.languages",)),
    )


def _modalities(rec: Recorded) -> Item:
    if not rec.complete:
        return missing("1.3.modalities", "Modalities", ("source.modality",), rec.note())
    groups: dict[str, list[str]] = {}
    for s, v in rec.have:
        b = _bucket(str(v))
        groups.setdefault(b if b != "other" else f"other: {v}", []).append(s.ref)
    value = "; ".join(f"{m} ({', '.join(refs)})" for m, refs in sorted(groups.items()))
    return filled("1.3.modalities", "Modalities", value, ("source.modality",))


def _size(facts: Facts) -> Item:
    count = facts.dataset.event.payload.get("record_count")
    title = "Overall training data size"
    if count is None:
        return missing("1.3.size", title, ("dataset.record_count",), "no record count")
    return filled(
        "1.3.size",
        title,
        f"{records(count)} after processing (unit: records)",
        ("dataset.record_count",),
        "a record is not a token, image or hour: the size bins need those counts",
    )


def _bin(facts: Facts, modality: str) -> Item:
    key, unit = BINS[modality].key, BINS[modality].unit
    id, title, field = f"1.3.bin.{modality}", f"Size bin: {modality}", f"build.config.{key}"
    amount = facts.config(key)
    if amount is None:
        count = facts.dataset.event.payload.get("record_count")
        have = f"the size is recorded in records ({count:,}), " if count is not None else ""
        return missing(
            id,
            title,
            (field,),
            f"{have}not {unit}: the {modality} bin needs a count of {unit}; record `{key}` "
            "in the build config",
        )
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        return missing(id, title, (field,), f"`{key}` in the build config is not a count")
    return filled(id, title, f"{size_bin(modality, amount)} ({amount:,} {unit})", (field,))


def _latest(facts: Facts) -> Item:
    rec = every(facts.sources, "collected")
    id, title, fields = "1.3.latest", "Latest date of data acquisition", ("source.collected",)
    if not rec.complete:
        return missing(id, title, fields, rec.note(period))
    ongoing = [s.ref for s, v in rec.have if v[1] == ONGOING]
    ended = [(v[1], s.ref) for s, v in rec.have if v[1] != ONGOING]
    parts = [f"collection is ongoing for {', '.join(ongoing)}"] if ongoing else []
    if ended:
        end, ref = max(ended)
        parts.append(f"{_month(end)} (end of collection of {ref})")
    return filled(id, title, "; ".join(parts), fields)


def _month(when: str) -> str:
    """`2026-05` or `2026-05-22` as the template's MM/YYYY; other text as it is."""
    year, _, rest = when.partition("-")
    month = rest[:2]
    return f"{month}/{year}" if year.isdigit() and month.isdigit() else when


def _source_line(s: SourceFacts) -> tuple[str, tuple[str, ...]]:
    """A source as a category lists it, and the fields that gave the line."""
    # a local path names nothing a reader of the summary can reach: only a URL is shown
    used = tuple(
        k
        for k in ("modality", "uri", "collected")
        if s.fact(k) and (k != "uri" or shareable_uri(s.fact(k)))
    )
    extra = [period(s.fact(k)) if k == "collected" else str(s.fact(k)) for k in used]
    line = s.ref + (f" ({'; '.join(extra)})" if extra else "")
    return line, tuple(f"source.{k}" for k in used)


def _categories(facts: Facts) -> tuple[Item, ...]:
    rec = every(facts.sources, "acquisition")
    items = []
    for id, (title, values) in CATEGORIES.items():
        if not rec.complete:
            items.append(missing(id, title, ("source.acquisition",), rec.note()))
            if id == "2.3":
                items.append(
                    missing(
                        "2.3.iv",
                        _CRAWL_PERIOD,
                        ("source.acquisition", "source.collected"),
                        "which sources were crawled is not known: " + rec.note(),
                    )
                )
            continue
        hits = [s for s, v in rec.have if v in values]
        note = ""
        if id == "2.2.2" and hits:
            note = "`purchased` sources are reported here; one bought from a rightsholder "
            note += "belongs in 2.2.1"
        if id == "2.5" and hits:
            note = "the models that generated it are not a recorded field"
        lines = [_source_line(s) for s in hits]
        value = "Y: " + ", ".join(line for line, _ in lines) if hits else "N"
        used = dict.fromkeys(f for _, fields in lines for f in fields)
        items.append(filled(id, title, value, ("source.acquisition", *used), note))
        if id == "2.3":
            items.append(_crawl_period(hits))
    return tuple(items)


def _crawl_period(crawled: list[SourceFacts]) -> Item:
    id, title = "2.3.iv", _CRAWL_PERIOD
    if not crawled:
        return filled(id, title, "not applicable: no source was crawled", ("source.acquisition",))
    return listed(id, title, every(crawled, "collected"), ("source.collected",), show=period)


def _processing(facts: Facts) -> tuple[Item, ...]:
    return _opt_outs(facts), _removals(facts), _steps_item(facts), _review_item(facts)


def _opt_outs(facts: Facts) -> Item:
    sf = facts.step_field
    title = "Measures to respect reservations of rights (opt-outs)"
    lists = [s for s in facts.steps if s.lists]
    if lists:
        parts = []
        for s in lists:
            for used in s.lists:
                newest = facts.newest_lists.get(used.partition("@")[0])
                state = (
                    "the newest recorded version"
                    if newest in (None, used)
                    else f"an older version; newest recorded: {newest}"
                )
                parts.append(f"{s.name} removed {records(s.removed)} using {used} ({state})")
        fields = (f"{sf}.kind", f"{sf}.used", f"{sf}.counts.removed", "source.version")
        return filled("3.1", title, "; ".join(parts), fields)
    known = ", ".join(sorted(facts.newest_lists.values()))
    return missing(
        "3.1",
        title,
        (f"{sf}.kind", f"{sf}.used", f"{sf}.counts.removed"),
        "no exclusion step consulted an opt-out list"
        + (f"; opt-out lists recorded: {known}" if known else ""),
    )


def _removals(facts: Facts) -> Item:
    sf = facts.step_field
    # one that consulted an opt-out list is 3.1's; a split (records held out for evaluation)
    # filters nothing out of the data, so it is listed under 3.3 only
    removals = [
        s
        for s in facts.steps
        if not s.lists and (s.kind == "exclusion" or s.removed) and s.name not in facts.splits
    ]
    title = "Removal of illegal content (filter and exclusion steps)"
    if not removals:
        return missing(
            "3.2",
            title,
            (f"{sf}.kind", f"{sf}.counts.removed", f"{sf}.purpose"),
            "no filter or exclusion step besides the opt-out removal",
        )
    lacking = [s.name for s in removals if not s.purpose]
    return filled(
        "3.2",
        title,
        "; ".join(
            f"{s.name} removed {records(s.removed)} (purpose: {s.purpose or 'not recorded'})"
            for s in removals
        ),
        (f"{sf}.name", f"{sf}.counts.removed", f"{sf}.purpose"),
        "only a step's recorded purpose says whether it targets illegal content"
        + (f"; no purpose recorded for {', '.join(lacking)}" if lacking else ""),
    )


def _steps_item(facts: Facts) -> Item:
    sf = facts.step_field
    fields = (f"{sf}.name", f"{sf}.params", f"{sf}.counts", f"{sf}.purpose")
    if not facts.steps:
        return missing("3.3.steps", "Processing steps, in order", fields, "no step is recorded")
    value = "; ".join(
        s.describe() + (f" (purpose: {s.purpose})" if s.purpose else "") for s in facts.steps
    )
    return filled("3.3.steps", "Processing steps, in order", value, fields)


def _review_item(facts: Facts) -> Item:
    a = facts.approval
    parts = [a.status + ("" if a.basis != "sources" else f" (from {a.where_from()})")]
    if a.limits:
        parts.append("limits: " + ", ".join(a.limits))
    if a.risks:
        parts.append("unresolved risks: " + ", ".join(a.risks))
    return filled(
        "3.3.review",
        "Review of the training data",
        "; ".join(parts),
        ("review.status", "review.limits", "review.risks"),
    )
