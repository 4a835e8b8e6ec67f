"""Audit: how complete the whole ledger is, as findings with ids and a summary.

`audit(ledger)` verifies the log, then reads it one event type at a time (never the whole
log at once) and reports every gap it finds. An audit with an `error` finding fails.

=====  ========================  ========  ================================================
id     name                      severity  finds
=====  ========================  ========  ================================================
AU001  no-rights-basis           error     a source with no rights basis (opt-out lists
                                           need none)
AU002  vague-rights-basis        error     a rights basis that names nothing checkable
                                           (`internal`, `public`, `n/a`, ...)
AU003  never-reviewed            error     a source nobody reviewed (opt-out lists too)
AU004  open-quarantine           warning   a quarantined source: trigger, blocked uses,
                                           exit condition and since when
AU005  rejected-source-in-use    error     a rejected source that a current dataset uses
AU006  dataset-lint-errors       error     a current dataset whose manifest has lint errors
AU007  build-without-dataset     error     a build that names no recorded dataset
AU008  build-without-manifest    error     a build with no frozen manifest recorded
AU009  frozen-manifest-missing   error     a build's frozen manifest file is not here
AU010  frozen-manifest-altered   error     a build's frozen manifest file does not match
                                           its digest
AU011  forced-build              warning   a build recorded past a gate that blocked it
AU012  unclosed-run              warning   a pipeline run that started and never ended
AU013  failed-step               info      a pipeline step that failed
AU014  unverified-events         warning   events no verified signed checkpoint covers
AU015  integrity-failure         error     the ledger does not verify, or cannot be read
=====  ========================  ========  ================================================

A *current* dataset is the newest of its name, or one a build was recorded on: older
versions are history that an append-only ledger cannot change, so they are not linted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from mlprov.digest import Digest
from mlprov.errors import IntegrityError
from mlprov.ledger.events import Entry, utc_now
from mlprov.ledger.ledger import Ledger
from mlprov.ledger.payloads import EventType

__all__ = [
    "CHECKS",
    "SEVERITIES",
    "Audit",
    "Check",
    "Finding",
    "Severity",
    "Subject",
    "Summary",
    "audit",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: Final = ("error", "warning", "info")


@dataclass(frozen=True)
class Check:
    """One question the audit asks: its id, name, severity, what it finds, how to fix it."""

    id: str
    name: str
    severity: Severity
    description: str
    hint: str


def _checks(*checks: Check) -> Mapping[str, Check]:
    return MappingProxyType({c.id: c for c in checks})


#: Every audit check, by id.
CHECKS: Final[Mapping[str, Check]] = _checks(
    Check("AU001", "no-rights-basis", "error", "every source has a rights basis",
          "record a new version naming the policy, contract or legal basis that allows its use"),
    Check("AU002", "vague-rights-basis", "error", "a rights basis names something checkable",
          "record a new version whose rights basis names the policy or contract "
          "(e.g. contract-2024-17 §4)"),
    Check("AU003", "never-reviewed", "error", "every source is reviewed",
          "record a review: mlprov review SOURCE --status accepted"),
    Check("AU004", "open-quarantine", "warning", "quarantines are resolved",
          "meet the exit condition and release it: mlprov release SOURCE --evidence EVENT"),
    Check("AU005", "rejected-source-in-use", "error", "no current dataset uses a rejected source",
          "rebuild the dataset without the source, or with a fixed and reviewed new version"),
    Check("AU006", "dataset-lint-errors", "error", "current datasets pass lint",
          "see `mlprov lint DATASET` and fix each error"),
    Check("AU007", "build-without-dataset", "error", "every build names its recorded dataset",
          "record builds with `mlprov build NAME --dataset D` (ledger.build(..., dataset=D))"),
    Check("AU008", "build-without-manifest", "error", "every build froze its dataset's manifest",
          "record builds with `mlprov build`, which freezes the manifest it was allowed on"),
    Check("AU009", "frozen-manifest-missing", "error", "a build's frozen manifest is kept",
          "restore <digest>.manifest.json into .mlprov/blobs/ from a backup"),
    Check("AU010", "frozen-manifest-altered", "error", "a frozen manifest matches its digest",
          "the file was changed after the build: restore it from a trusted copy"),
    Check("AU011", "forced-build", "warning", "builds pass their gates",
          "check that the override was approved; retrain on data the gates allow"),
    Check("AU012", "unclosed-run", "warning", "every pipeline run is closed",
          "the run was interrupted (or is still running): run the pipeline again"),
    Check("AU013", "failed-step", "info", "pipeline steps succeed",
          "fix the step and run the pipeline again; the failure stays on record"),
    Check("AU014", "unverified-events", "warning", "a verified signed checkpoint covers the log",
          "sign one with `mlprov checkpoint` (keep the ledger's .pub in its keys folder)"),
    Check("AU015", "integrity-failure", "error", "the ledger verifies",
          "history was changed outside mlprov: see `mlprov verify`, restore from a backup"),
)  # fmt: skip


@dataclass(frozen=True)
class Subject:
    """What a finding is about: an event (digest, name, type), or the ledger itself."""

    name: str
    digest: Digest | None = None
    type: str | None = None

    @classmethod
    def of(cls, entry: Entry) -> Subject:
        return cls(entry.event.name or entry.digest.short, entry.digest, entry.event.type.value)

    def __str__(self) -> str:
        return self.name if self.digest is None else f"{self.name} ({self.digest.short})"

    def to_json(self) -> dict[str, Any]:
        digest = None if self.digest is None else str(self.digest)
        return {"name": self.name, "digest": digest, "type": self.type}


@dataclass(frozen=True)
class Finding:
    """One gap: the check that found it, its subject, what is wrong and how to fix it.

    `facts` are the details a reader needs (a quarantine's trigger, a build's gate
    findings), as (label, text) pairs in order."""

    id: str
    name: str
    severity: Severity
    subject: Subject
    message: str
    hint: str
    facts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        check: str,
        subject: Subject,
        message: str,
        facts: tuple[tuple[str, str], ...] = (),
        hint: str | None = None,
    ) -> Finding:
        """A finding of the check with this id (its hint unless another is given)."""
        c = CHECKS[check]
        return cls(c.id, c.name, c.severity, subject, message, hint or c.hint, facts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "severity": self.severity,
            "subject": self.subject.to_json(),
            "message": self.message,
            "hint": self.hint,
            "facts": dict(self.facts),
        }


@dataclass(frozen=True)
class Summary:
    """The ledger in numbers, and how complete it is."""

    size: int
    events: Mapping[str, int]  # by type
    sources: int
    sources_complete: int  # a specific rights basis (lists need none) and an accepting review
    datasets: int
    builds: int
    builds_frozen: int  # with a frozen manifest that is here and matches its digest
    checkpoints: int
    covered: int  # events covered by a verified signed checkpoint
    verified: bool
    read_whole: bool  # False when a damaged event stopped the scan

    @property
    def source_score(self) -> float | None:
        """The share of complete sources; None when there is no source."""
        return self.sources_complete / self.sources if self.sources else None

    @property
    def build_score(self) -> float | None:
        """The share of builds with a frozen manifest; None when there is no build."""
        return self.builds_frozen / self.builds if self.builds else None

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "events": dict(self.events),
            "sources": self.sources,
            "sources_complete": self.sources_complete,
            "source_score": self.source_score,
            "datasets": self.datasets,
            "builds": self.builds,
            "builds_frozen": self.builds_frozen,
            "build_score": self.build_score,
            "checkpoints": self.checkpoints,
            "covered": self.covered,
            "verified": self.verified,
            "read_whole": self.read_whole,
        }


@dataclass(frozen=True)
class Audit:
    """The findings, worst first, and the summary of one audit of a ledger."""

    origin: str
    audited_at: str
    findings: tuple[Finding, ...]
    summary: Summary

    @property
    def ok(self) -> bool:
        """Whether no finding has error severity."""
        return not self.count("error")

    def count(self, severity: Severity) -> int:
        return sum(f.severity == severity for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "audited_at": self.audited_at,
            "ok": self.ok,
            "counts": {s: self.count(s) for s in SEVERITIES},
            "summary": self.summary.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


def audit(ledger: Ledger, progress: Callable[[int, int], None] | None = None) -> Audit:
    """Audit the whole ledger (see the module doc); `progress(done, total)` follows the
    verification of the log, its longest part. Never prints; a ledger that does not
    verify or cannot be read is an AU015 finding, not an exception."""
    from mlprov.audit_scan import Tally, integrity, scan  # it builds on the model above

    ledger_subject = Subject(f"ledger {ledger.origin}")
    report = ledger.verify(progress=progress)
    findings = list(integrity(ledger, report, ledger_subject))
    tally = Tally()
    try:
        scan(ledger, tally, findings)
    except IntegrityError as exc:
        tally.read_whole = False
        message = f"the ledger cannot be read: {exc.message}"
        findings.append(Finding.of("AU015", ledger_subject, message))
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    ordered = sorted(findings, key=lambda f: (rank[f.severity], f.id))
    events = tally.events
    summary = Summary(
        size=report.size,
        events=MappingProxyType(events),
        sources=events[EventType.SOURCE.value],
        sources_complete=tally.sources_complete,
        datasets=events[EventType.DATASET.value],
        builds=events[EventType.BUILD.value],
        builds_frozen=tally.builds_frozen,
        checkpoints=report.checkpoints,
        covered=report.covered,
        verified=report.ok,
        read_whole=tally.read_whole,
    )
    return Audit(ledger.origin, utc_now(), tuple(ordered), summary)
