"""The postmortem sentence of a build, and the facts it is built from.

:func:`build_facts` gathers, from the ledger only, what can be said of a recorded build:
the manifest frozen when it was recorded (its `manifest_digest`) — sources, transforms in
order, reviewer status, limits and unresolved risks as they stood then — and the quarantine
history of its dataset and sources up to now, each move marked if it came after the build.
A build that froze no manifest (or whose frozen file is gone) is described by its dataset's
current manifest, and :attr:`BuildFacts.basis` says so; one that names no dataset has none.

:func:`explain` states them in one sentence (the incident's closing sentence)::

    Model support-classifier-v7 trained on manifest 4d81c0ee, built from
    support-chat-export@2026-05-22 and opt-out-list@2026-05-22, after normalize-v1,
    pii-redaction-v3, opt-out-removal-v2 and dedupe-v2, with reviewer status
    accepted_with_limits and two unresolved risks.

Missing evidence is said, never left blank: "on no recorded manifest", "from no recorded
sources", "with no recorded transforms", "with reviewer status never_reviewed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlprov.capture.build import recorded
from mlprov.digest import Digest
from mlprov.errors import NotFoundError
from mlprov.governance.manifest import Manifest, from_ledger
from mlprov.governance.manifest_files import frozen
from mlprov.governance.review import status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import trained_dataset

__all__ = [
    "Basis",
    "BuildFacts",
    "Explanation",
    "QuarantineMove",
    "build_facts",
    "explain",
    "sentence",
]

#: Where the manifest came from: the one frozen at build time; the dataset's current one
#: (the build froze none, or its frozen file is gone); none (the build names no dataset).
Basis = Literal["frozen", "not_frozen", "frozen_file_missing", "no_dataset"]
_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


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

    @property
    def reviewer_status(self) -> str:
        status = self.manifest.reviewer_status if self.manifest else None
        return status or "never_reviewed"

    @property
    def risks(self) -> tuple[str, ...]:
        return self.manifest.unresolved_risks if self.manifest else ()

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
            "dataset": m.dataset if m else None,
            "dataset_event": m.event if m else None,
            "transforms": list(self.transforms),
            "limits": list(m.limits) if m else [],
            "quarantines": [q.to_json() for q in self.quarantines],
        }


# -- facts from the ledger --------------------------------------------------------------------


def build_facts(ledger: LedgerCore, ref: Entry | Digest | str) -> BuildFacts:
    """The facts of a recorded build (by name, digest or Entry): see the module doc."""
    build = recorded(ledger, ref, ("build",))
    p = build.event.payload
    digest = Digest(p["manifest_digest"]) if p.get("manifest_digest") else None
    dataset = trained_dataset(p)
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
    moves: list[QuarantineMove] = []
    for target in dict.fromkeys([*targets, *([dataset] if dataset else [])]):
        state = status_of(ledger, target)
        moves += (m for e in state.history if (m := _move(e, state.label, build.seq)))
    return BuildFacts(
        build=build.event.name or build.digest.short,
        build_event=build.digest,
        manifest_digest=digest,
        basis=basis,
        manifest=manifest,
        quarantines=tuple(sorted(moves, key=lambda m: m.seq)),
    )


def _move(entry: Entry, label: str, build_seq: int) -> QuarantineMove | None:
    kind, p = entry.event.type.value, entry.event.payload
    at: dict[str, Any] = {
        "event": entry.digest,
        "seq": entry.seq,
        "after_build": entry.seq > build_seq,
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


# -- the sentence -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """The sentence, and the facts it was built from."""

    sentence: str
    facts: BuildFacts

    def to_json(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "facts": self.facts.to_json()}


def explain(ledger: LedgerCore, ref: Entry | Digest | str) -> Explanation:
    """The postmortem sentence of a recorded build (by name, digest or Entry)."""
    facts = build_facts(ledger, ref)
    return Explanation(sentence(facts), facts)


def sentence(facts: BuildFacts) -> str:
    """One sentence that states `facts`; see the module doc."""
    digest = facts.manifest_digest
    manifest = f"manifest {digest.short}" if digest else "no recorded manifest"
    if facts.basis == "frozen_file_missing":
        manifest += ", whose frozen file is missing"
    current = facts.basis in ("not_frozen", "frozen_file_missing")
    built = "built (per the dataset's current manifest)" if current else "built"
    sources = _listed(facts.sources) or "no recorded sources"
    steps = _listed(facts.transforms)
    after = f"after {steps}" if steps else "with no recorded transforms"
    risks = _counted(len(facts.risks), "unresolved risk")
    return (
        f"Model {facts.build} trained on {manifest}, {built} from {sources}, {after}, "
        f"with reviewer status {facts.reviewer_status} and {risks}."
    )


def _listed(items: tuple[str, ...]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join(x for x in (", ".join(items[:-1]), items[-1] if items else "") if x)


def _counted(n: int, noun: str) -> str:
    """`no risks`, `one risk`, `two risks` … `ten risks`, then digits: `11 risks`."""
    return f"{_WORDS[n] if n < len(_WORDS) else n} {noun}{'' if n == 1 else 's'}"
