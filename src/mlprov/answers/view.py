"""The ledger's view of one build or dataset: the read model every answer reads.

Triage, the postmortem sentence (`explain`), the model card and the disclosure reports ask
the same questions of a build — which sources, which steps, reviewed by whom, with which
limits and risks, at build time and now. :func:`view` answers them once, from the ledger,
and each of those answers reads the result, so two of them cannot disagree:

- the manifest frozen when the build was recorded (or the dataset's current one, and
  :attr:`BuildFacts.basis` says which);
- the dataset's approval (:mod:`mlprov.governance.approval`) at build time and now;
- each source with its rights basis and its review at build time and now;
- the quarantine history of the dataset and its sources, each move marked if it came
  after the build.

For a dataset (no build) "at build time" is now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlprov.capture.build import recorded, trained_on
from mlprov.digest import Digest
from mlprov.errors import InputError, NotFoundError
from mlprov.governance.approval import Approval, Reviewed, approval_of, reviewed
from mlprov.governance.manifest import Manifest, from_ledger, is_opt_out
from mlprov.governance.manifest_files import frozen
from mlprov.governance.review import status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import trained_dataset

__all__ = [
    "Basis",
    "BuildFacts",
    "LedgerView",
    "QuarantineMove",
    "SourceStanding",
    "build_facts",
    "quarantine_moves",
    "view",
]

#: Where the manifest came from: the one frozen at build time; the dataset's current one
#: (the build froze none, or its frozen file is gone); none (the build names no dataset).
Basis = Literal["frozen", "not_frozen", "frozen_file_missing", "no_dataset"]


@dataclass(frozen=True)
class QuarantineMove:
    """A quarantine or release of the dataset or one of its sources, from the ledger."""

    target: str  # the source `name@version`, or the dataset's name
    kind: Literal["quarantine", "release"]
    event: Digest
    seq: int
    after_build: bool
    trigger: str | None = None
    blocked_use: tuple[str, ...] = ()  # empty for a quarantining review: it blocks every use
    allowed_use: tuple[str, ...] = ()
    exit_condition: str | None = None
    evidence: tuple[Digest, ...] = ()
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "seq"}


@dataclass(frozen=True)
class BuildFacts:
    """What the sentence and the model card say about a build, all from the ledger."""

    build: str
    build_event: Digest
    manifest_digest: Digest | None
    basis: Basis
    manifest: Manifest | None
    quarantines: tuple[QuarantineMove, ...] = ()
    approval: Approval | None = None  # at build time; None only for facts made by hand

    @property
    def reviewer_status(self) -> str:
        if self.approval is not None:
            return self.approval.status
        status = self.manifest.reviewer_status if self.manifest else None
        return status or "never_reviewed"

    @property
    def risks(self) -> tuple[str, ...]:
        if self.approval is not None:
            return self.approval.risks
        return self.manifest.unresolved_risks if self.manifest else ()

    @property
    def limits(self) -> tuple[str, ...]:
        if self.approval is not None:
            return self.approval.limits
        return self.manifest.limits if self.manifest else ()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.ref for s in self.manifest.source_records) if self.manifest else ()

    @property
    def transforms(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.manifest.transforms) if self.manifest else ()

    def metadata(self) -> dict[str, Any]:
        """The value of the card's `mlprov:` metadata key."""
        return {
            "training_manifest": self.manifest_digest,
            "build": self.build,
            "build_event": self.build_event,
            "reviewer_status": self.reviewer_status,
            "unresolved_risks": list(self.risks),
            "sources": list(self.sources),
        }

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            **self.metadata(),
            "manifest_basis": self.basis,
            "approval": self.approval.to_json() if self.approval else None,
            "dataset": m.dataset if m else None,
            "dataset_event": m.event if m else None,
            "transforms": list(self.transforms),
            "limits": list(self.limits),
            "quarantines": [q.to_json() for q in self.quarantines],
        }


@dataclass(frozen=True)
class SourceStanding:
    """A source of the dataset: its rights basis and its review at build time and now."""

    ref: str
    entry: Entry | None  # None: named by the dataset, not recorded in this ledger
    at_build: Reviewed | None
    now: Reviewed | None
    opt_out: bool = False  # an opt-out list: consulted by a step, not trained on

    @property
    def rights_basis(self) -> str:
        found = self.entry.event.payload.get("rights_basis") if self.entry else None
        return str(found or "").strip()


@dataclass(frozen=True)
class LedgerView:
    """The ledger's view of a build (or a dataset); see the module doc."""

    target: Entry
    build: Entry | None
    dataset: Entry
    approval: Approval  # at build time (for a dataset: now)
    approval_now: Approval
    sources: tuple[SourceStanding, ...]
    facts: BuildFacts | None  # a build's: the frozen manifest and quarantine history

    @property
    def as_of(self) -> int | None:
        return self.build.seq if self.build is not None else None

    def to_json(self) -> dict[str, Any]:
        """The view as JSON: what a page or an export reads."""
        return {
            "target": str(self.target.digest),
            "build": self.build.event.name if self.build is not None else None,
            "dataset": {"name": self.dataset.event.name, "event": str(self.dataset.digest)},
            "approval_at_build": self.approval.to_json(),
            "approval_now": self.approval_now.to_json(),
            "sources": [
                {
                    "ref": s.ref,
                    "event": str(s.entry.digest) if s.entry is not None else None,
                    "rights_basis": s.rights_basis or None,
                    "opt_out": s.opt_out,
                    "at_build": s.at_build.to_json() if s.at_build else None,
                    "now": s.now.to_json() if s.now else None,
                }
                for s in self.sources
            ],
            "facts": self.facts.to_json() if self.facts is not None else None,
        }


def view(ledger: LedgerCore, ref: Entry | Digest | str) -> LedgerView:
    """The view of a build or dataset (by name, digest or Entry)."""
    build, dataset = trained_on(ledger, ref)
    as_of = build.seq if build is not None else None
    parts = [e for e in ledger.trace(dataset.digest) if e.event.type.value == "source"]
    facts = _facts(ledger, build, dataset, parts) if build is not None else None
    approval = facts.approval if facts and facts.approval else approval_of(ledger, dataset, parts)
    return LedgerView(
        target=build or dataset,
        build=build,
        dataset=dataset,
        approval=approval,
        approval_now=approval_of(ledger, dataset, parts),
        sources=_sources(ledger, dataset, parts, as_of),
        facts=facts,
    )


def build_facts(ledger: LedgerCore, ref: Entry | Digest | str) -> BuildFacts:
    """The facts of a recorded build (by name, digest or Entry): see the module doc."""
    build = recorded(ledger, ref, ("build",))
    link = trained_dataset(build.event.payload)
    if link is None:
        return _facts(ledger, build, None, [])
    dataset = ledger.get(link)
    parts = [e for e in ledger.trace(dataset.digest) if e.event.type.value == "source"]
    return _facts(ledger, build, dataset, parts)


def _sources(
    ledger: LedgerCore, dataset: Entry, parts: list[Entry], as_of: int | None
) -> tuple[SourceStanding, ...]:
    """The sources the dataset names, in its order, then any other ancestor source."""
    by_label = {e.event.name: e for e in parts}
    lists = {
        u["event"]
        for e in ledger.trace(dataset.digest)
        if e.event.type.value == "transform"
        for u in e.event.payload.get("used", ())
        if u.get("role") == "using"
    }
    found: list[SourceStanding] = []
    for label in [*dataset.event.payload.get("sources", ()), *by_label]:
        if any(s.ref == label for s in found):
            continue
        entry = by_label.get(label)
        if entry is None:
            try:
                entry = next(ledger.entries(type="source", name=label, newest_first=True), None)
            except InputError:
                entry = None
        if entry is None:
            found.append(SourceStanding(label, None, None, None, is_opt_out(label)))
            continue
        found.append(
            SourceStanding(
                label,
                entry,
                reviewed(status_of(ledger, entry, as_of=as_of)),
                reviewed(status_of(ledger, entry)),
                str(entry.digest) in lists or is_opt_out(label.partition("@")[0]),
            )
        )
    return tuple(found)


def _facts(
    ledger: LedgerCore, build: Entry, dataset: Entry | None, parts: list[Entry]
) -> BuildFacts:
    p = build.event.payload
    digest = Digest(p["manifest_digest"]) if p.get("manifest_digest") else None
    manifest: Manifest | None = None
    basis: Basis = "no_dataset"
    if digest is not None:
        try:
            manifest, basis = frozen(ledger, digest), "frozen"
        except NotFoundError:
            basis = "frozen_file_missing"
    elif dataset is not None:
        basis = "not_frozen"
    if manifest is None and dataset is not None:
        manifest = from_ledger(ledger, dataset)
    targets = [s.event for s in manifest.source_records if s.event] if manifest else []
    approval = approval_of(ledger, dataset, parts, as_of=build.seq) if dataset else None
    return BuildFacts(
        build=build.event.name or build.digest.short,
        build_event=build.digest,
        manifest_digest=digest,
        basis=basis,
        manifest=manifest,
        quarantines=quarantine_moves(
            ledger, [*targets, *([dataset.digest] if dataset else [])], build.seq
        ),
        approval=approval,
    )


def quarantine_moves(
    ledger: LedgerCore, targets: list[Digest], as_of: int | None = None
) -> tuple[QuarantineMove, ...]:
    """The quarantines and releases of `targets` (sources, datasets) up to now, in log
    order; with `as_of` (a build's `seq`) each one recorded after it is marked so."""
    moves: list[QuarantineMove] = []
    for target in dict.fromkeys(targets):
        state = status_of(ledger, target)
        moves += (m for e in state.history if (m := _move(e, state.label, as_of)))
    return tuple(sorted(moves, key=lambda m: m.seq))


def _move(entry: Entry, label: str, build_seq: int | None) -> QuarantineMove | None:
    kind, p = entry.event.type.value, entry.event.payload
    at: dict[str, Any] = {
        "event": entry.digest,
        "seq": entry.seq,
        "after_build": build_seq is not None and entry.seq > build_seq,
    }
    if kind == "quarantine":
        return QuarantineMove(
            label,
            "quarantine",
            trigger=p.get("trigger"),
            blocked_use=tuple(p.get("blocked_use", ())),
            allowed_use=tuple(p.get("allowed_use", ())),
            exit_condition=p.get("exit_condition"),
            **at,
        )
    if kind == "release":
        evidence = tuple(Digest(d) for d in p.get("evidence", ()))
        return QuarantineMove(label, "release", evidence=evidence, note=p.get("note"), **at)
    if p.get("status") == "quarantined":  # a quarantining review: it blocks every use
        trigger = p.get("note") or f"review by {p.get('reviewer')}"
        return QuarantineMove(label, "quarantine", trigger=trigger, **at)
    return None
