"""The postmortem sentence of a build, read from the ledger's view of it.

The facts (:class:`mlprov.answers.view.BuildFacts`) are the manifest frozen when the build
was recorded — sources and transforms in order — the dataset's approval at build time
(:mod:`mlprov.governance.approval`: its own review, else its sources'), and the quarantine
history of its dataset and sources up to now. :func:`explain` states them in one sentence
(the incident's closing sentence)::

    Model support-classifier-v7 trained on manifest 4d81c0ee, built from
    support-chat-export@2026-05-22 and opt-out-list@2026-05-22, after normalize-v1,
    pii-redaction-v3, opt-out-removal-v2 and dedupe-v2, with reviewer status
    accepted_with_limits and two unresolved risks.

A status that rests on the sources' reviews says so ("with reviewer status
accepted_with_limits from its sources' reviews (the dataset itself was never reviewed)").
Missing evidence is said, never left blank: "on no recorded manifest", "from no recorded
sources", "with no recorded transforms", "with reviewer status never_reviewed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlprov.answers.view import Basis, BuildFacts, QuarantineMove, build_facts
from mlprov.digest import Digest
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = [
    "Basis",
    "BuildFacts",
    "Explanation",
    "QuarantineMove",
    "build_facts",
    "explain",
    "sentence",
]

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


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
        f"with reviewer status {facts.reviewer_status}{_from(facts)} and {risks}."
    )


def _from(facts: BuildFacts) -> str:
    """Where a status that is not the dataset's own comes from."""
    a = facts.approval
    if a is None or a.basis != "sources" or a.status == "never_reviewed":
        return ""
    return " from its sources' reviews (the dataset itself was never reviewed)"


def _listed(items: tuple[str, ...]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join(x for x in (", ".join(items[:-1]), items[-1] if items else "") if x)


def _counted(n: int, noun: str) -> str:
    """`no risks`, `one risk`, `two risks` … `ten risks`, then digits: `11 risks`."""
    return f"{_WORDS[n] if n < len(_WORDS) else n} {noun}{'' if n == 1 else 's'}"
