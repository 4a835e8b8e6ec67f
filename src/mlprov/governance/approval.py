"""Approval: the reviewer status of a dataset, and whose reviews it rests on.

One rule, read by the manifest, triage, the postmortem, the model card and the reports:

- a dataset with a review of its own has that review's state (`basis="dataset"`);
- a dataset never reviewed itself takes the weakest state of its sources' reviews
  (`basis="sources"`): rejected < quarantined < never_reviewed < accepted_with_limits <
  accepted, so one unreviewed source makes it `never_reviewed`;
- a dataset with neither is `never_reviewed` (`basis="none"`).

Limits and risks are those of the reviews the state rests on, each once, in order. With
`as_of` (an event's `seq`) only the moves recorded up to it count: the approval a build
was made under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlprov.digest import Digest
from mlprov.governance.review import ReviewState, State, status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = ["Approval", "Reviewed", "approval_of", "reviewed"]

#: From weakest to strongest.
ORDER = ("rejected", "quarantined", "never_reviewed", "accepted_with_limits", "accepted")
Basis = Literal["dataset", "sources", "none"]


@dataclass(frozen=True)
class Reviewed:
    """Where one source or dataset stood: its state, and the review that put it there."""

    label: str
    state: str
    reviewer: str | None = None
    review: Digest | None = None
    limits: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()

    def phrase(self) -> str:
        """`support-chat-export@2026-05-22: accepted_with_limits by carol@example.com`."""
        return f"{self.label}: {self.state}" + (f" by {self.reviewer}" if self.reviewer else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "state": self.state,
            "reviewer": self.reviewer,
            "review": self.review,
            "limits": list(self.limits),
            "risks": list(self.risks),
        }


def reviewed(state: ReviewState) -> Reviewed:
    """The :class:`Reviewed` of a replayed review state."""
    review = state.review
    return Reviewed(
        label=state.label,
        state=state.state.value,
        reviewer=str(review.event.payload.get("reviewer") or "") or None if review else None,
        review=review.digest if review else None,
        limits=state.limits,
        risks=state.risks,
    )


@dataclass(frozen=True)
class Approval:
    """The reviewer status of a dataset and the reviews it rests on (see the module doc)."""

    status: str
    basis: Basis
    by: tuple[Reviewed, ...] = ()

    @property
    def limits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x for r in self.by for x in r.limits))

    @property
    def risks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x for r in self.by for x in r.risks))

    @property
    def reviewers(self) -> tuple[str, ...]:
        """Who recorded the reviews it rests on, each once."""
        return tuple(dict.fromkeys(r.reviewer for r in self.by if r.reviewer))

    def where_from(self) -> str:
        """Where the status comes from, in words."""
        if self.basis == "dataset":
            return "the dataset's own review"
        if self.basis == "sources":
            return "its sources' reviews; the dataset itself was never reviewed"
        return "no review of the dataset or its sources"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "basis": self.basis,
            "by": [r.to_json() for r in self.by],
            "limits": list(self.limits),
            "risks": list(self.risks),
        }


def approval_of(
    ledger: LedgerCore, dataset: Entry, sources: Sequence[Entry], *, as_of: int | None = None
) -> Approval:
    """The approval of `dataset` built from `sources` (see the module doc)."""
    own = status_of(ledger, dataset, as_of=as_of)
    if own.history:
        return Approval(own.state.value, "dataset", (reviewed(own),))
    if not sources:
        return Approval(State.NEVER_REVIEWED.value, "none")
    states = [reviewed(status_of(ledger, s, as_of=as_of)) for s in dict.fromkeys(sources)]
    worst = min((r.state for r in states), key=ORDER.index)
    return Approval(worst, "sources", tuple(states))
