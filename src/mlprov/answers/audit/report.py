"""One audit of a ledger: its findings, worst first, and the ledger in numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mlprov.answers.audit.findings import SEVERITIES, Finding, Severity, Subject
from mlprov.answers.audit.scan import Tally, integrity, scan
from mlprov.errors import IntegrityError
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import utc_now
from mlprov.ledger.payloads import EventType

__all__ = ["Audit", "Summary", "audit"]


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


def audit(ledger: LedgerCore, progress: Callable[[int, int], None] | None = None) -> Audit:
    """Audit the whole ledger (see the module doc); `progress(done, total)` follows the
    verification of the log, its longest part. Never prints; a ledger that does not
    verify or cannot be read is an AU015 finding, not an exception."""
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
