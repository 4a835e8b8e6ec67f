"""The audit's checks and what it finds: each check has an id, a name, a severity, what it
asks and how to fix what it finds (the table is in :mod:`mlprov.answers.audit`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from mlprov.digest import Digest
from mlprov.ledger.events import Entry

__all__ = ["CHECKS", "SEVERITIES", "Check", "Finding", "Severity", "Subject"]

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
