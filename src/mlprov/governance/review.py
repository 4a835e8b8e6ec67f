"""Review and quarantine: the state of a source or dataset, computed from recorded events.

A *target* is a source (`name@version`) or a dataset event. Its reviews (`review` events
whose `target` is its digest), its quarantines (`quarantine` events naming the source, or
reviews with status `quarantined`) and the releases citing them move it, in log order,
through one explicit table, :data:`TRANSITIONS`:

====================  ===========  ====================  ========  ===========  ===========
state / move          accept       accept_with_limits    reject    quarantine   release
====================  ===========  ====================  ========  ===========  ===========
never_reviewed        accepted     accepted_with_limits  rejected  quarantined  —
accepted              accepted     accepted_with_limits  rejected  quarantined  —
accepted_with_limits  accepted     accepted_with_limits  rejected  quarantined  —
quarantined           quarantined  quarantined           rejected  —            last review
rejected              —            —                     —         —            —
====================  ===========  ====================  ========  ===========  ===========

- A move marked — is illegal: `record_review`, `record_quarantine` and `record_release`
  refuse it with ConflictError naming the state and the legal moves. Events recorded by
  hand are replayed through the same table; one it refuses changes nothing and is listed
  in :attr:`ReviewState.ignored`.
- While quarantined, a review is recorded but lifts nothing: it is the reviewer status an
  exit condition may ask for, and the state a release goes back to.
- `released` is a move, not a resting state: a release cites the open quarantine and
  evidence recorded after it, and the target goes back to the state of its newest review
  (one recorded during the quarantine included), or to `never_reviewed` if it has none.
  Lifting a quarantine is not an approval.
- `rejected` is final for that content: record fixed data as a new version.
- A `quarantine` event blocks every use but its `allowed_use`; a review with status
  `quarantined` (the way to quarantine a dataset) allows none.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal

from mlprov.digest import Digest
from mlprov.errors import ConflictError, InputError, NotFoundError
from mlprov.governance.signoff import sign_review
from mlprov.identity import default_actor
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, Event
from mlprov.ledger.keys import SignerKey
from mlprov.ledger.kinds import ReviewStatus

__all__ = [
    "LAST_REVIEW",
    "TRANSITIONS",
    "Move",
    "ReviewState",
    "State",
    "allowed_uses",
    "check_use",
    "record_quarantine",
    "record_release",
    "record_review",
    "status_of",
    "target_of",
]


class State(StrEnum):
    NEVER_REVIEWED = "never_reviewed"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_LIMITS = "accepted_with_limits"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


class Move(StrEnum):
    ACCEPT = "accept"
    ACCEPT_WITH_LIMITS = "accept_with_limits"
    REJECT = "reject"
    QUARANTINE = "quarantine"
    RELEASE = "release"


#: Where a release goes: the state of the newest review, or never_reviewed.
LAST_REVIEW: Final = "last_review"
Next = State | Literal["last_review"]

_OPEN: Final[Mapping[Move, Next]] = MappingProxyType(
    {
        Move.ACCEPT: State.ACCEPTED,
        Move.ACCEPT_WITH_LIMITS: State.ACCEPTED_WITH_LIMITS,
        Move.REJECT: State.REJECTED,
        Move.QUARANTINE: State.QUARANTINED,
    }
)
TRANSITIONS: Final[Mapping[State, Mapping[Move, Next]]] = MappingProxyType(
    {
        State.NEVER_REVIEWED: _OPEN,
        State.ACCEPTED: _OPEN,
        State.ACCEPTED_WITH_LIMITS: _OPEN,
        State.QUARANTINED: MappingProxyType(
            {
                Move.ACCEPT: State.QUARANTINED,
                Move.ACCEPT_WITH_LIMITS: State.QUARANTINED,
                Move.REJECT: State.REJECTED,
                Move.RELEASE: LAST_REVIEW,
            }
        ),
        State.REJECTED: MappingProxyType({}),
    }
)
_MOVE_OF_STATUS: Final = {
    ReviewStatus.ACCEPTED: Move.ACCEPT,
    ReviewStatus.ACCEPTED_WITH_LIMITS: Move.ACCEPT_WITH_LIMITS,
    ReviewStatus.REJECTED: Move.REJECT,
    ReviewStatus.QUARANTINED: Move.QUARANTINE,
}
_USE = re.compile(r"[a-z][a-z0-9-]{0,63}")


@dataclass(frozen=True)
class ReviewState:
    """Where a target stands: its state and the events that put it there."""

    target: Entry
    state: State
    review: Entry | None = None  # the newest review that counts (not a quarantining one)
    quarantine: Entry | None = None  # the open quarantine: a quarantine event or a review
    release: Entry | None = None  # the release that lifted the last quarantine
    limits: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    history: tuple[Entry, ...] = field(default=(), repr=False)  # every move, in log order
    ignored: tuple[Entry, ...] = ()  # recorded moves the table refuses

    @property
    def label(self) -> str:
        return names.label(self.target)

    @property
    def moves(self) -> tuple[Move, ...]:
        """The legal moves from here."""
        return tuple(TRANSITIONS[self.state])

    def allows(self, use: str) -> bool:
        """Whether the open quarantine (if any) allows `use`; rejection allows nothing."""
        if self.state is State.REJECTED:
            return False
        return self.quarantine is None or use in allowed_uses(self.quarantine)

    def to_json(self) -> dict[str, Any]:
        def ref(e: Entry | None) -> str | None:
            return None if e is None else str(e.digest)

        return {
            "target": str(self.target.digest),
            "name": self.label,
            "type": self.target.event.type.value,
            "state": self.state.value,
            "review": ref(self.review),
            "reviewer": self.review.event.payload["reviewer"] if self.review else None,
            "limits": list(self.limits),
            "risks": list(self.risks),
            "quarantine": ref(self.quarantine),
            "release": ref(self.release),
            "moves": [m.value for m in self.moves],
            "history": [ref(e) for e in self.history],
            "ignored": [ref(e) for e in self.ignored],
        }


def allowed_uses(quarantine: Entry) -> tuple[str, ...]:
    """The uses a quarantining event allows: a quarantine's `allowed_use`; a review, none."""
    if quarantine.event.type.value != "quarantine":
        return ()
    return tuple(quarantine.event.payload.get("allowed_use", ()))


def check_use(use: str) -> str:
    """`use` if it is a well-formed use name (`training`, `benchmark-publication`)."""
    if not _USE.fullmatch(use):
        raise InputError(
            f"{use!r} is not a use name", "use lower-case words joined by '-', e.g. training"
        )
    return use


# -- finding the target and its events -----------------------------------------------------


def target_of(ledger: LedgerCore, ref: Entry | Digest | str) -> Entry:
    """The source or dataset `ref` names: an Entry, NAME (the newest), NAME@VERSION, or a
    digest or prefix (one resolver for every command: `mlprov.ledger.names`)."""
    return ledger.find(ref, ("source", "dataset")).entry


# Each ledger's reviews by target, and the log size they were read at: one scan serves
# every status asked while nothing is appended (an audit asks one per source).
_REVIEWS: weakref.WeakKeyDictionary[LedgerCore, tuple[int, dict[str, list[Entry]]]] = (
    weakref.WeakKeyDictionary()
)


def _reviews_of(ledger: LedgerCore, target: Digest) -> list[Entry]:
    size = ledger.size
    cached = _REVIEWS.get(ledger)
    if cached is None or cached[0] != size:
        index: dict[str, list[Entry]] = {}
        for e in ledger.entries(type="review"):
            index.setdefault(e.event.payload["target"], []).append(e)
        cached = _REVIEWS[ledger] = (size, index)
    return list(cached[1].get(str(target), ()))


def _events(ledger: LedgerCore, target: Entry, as_of: int | None = None) -> list[Entry]:
    """The target's reviews, quarantines and releases, in log order (up to seq `as_of`)."""
    found = _reviews_of(ledger, target.digest)
    label = target.event.name
    if label is not None:
        if target.event.type.value == "source":
            found += ledger.entries(type="quarantine", name=label)
        held = {e.digest for e in found}  # a release of another target of this name is not ours
        found += (
            e
            for e in ledger.entries(type="release", name=label)
            if e.event.payload["quarantine"] in held
        )
    return sorted((e for e in found if as_of is None or e.seq <= as_of), key=lambda e: e.seq)


def _move(entry: Entry) -> Move:
    kind = entry.event.type.value
    if kind == "review":
        return _MOVE_OF_STATUS[ReviewStatus(entry.event.payload["status"])]
    return Move.QUARANTINE if kind == "quarantine" else Move.RELEASE


def status_of(
    ledger: LedgerCore, target: Entry | Digest | str, *, as_of: int | None = None
) -> ReviewState:
    """Replay the target's recorded moves through :data:`TRANSITIONS` (see the module doc);
    with `as_of`, only the moves recorded up to that log position (an event's `seq`): the
    state when that event was recorded."""
    entry = target_of(ledger, target)
    state, review, quarantine, release = State.NEVER_REVIEWED, None, None, None
    history: list[Entry] = []
    ignored: list[Entry] = []
    for event in _events(ledger, entry, as_of):
        move = _move(event)
        after = TRANSITIONS[state].get(move)
        if after is None or (
            move is Move.RELEASE
            and (quarantine is None or _evidence_problem(ledger, event, quarantine) is not None)
        ):
            ignored.append(event)
            continue
        history.append(event)
        if move is Move.QUARANTINE:
            quarantine, release = event, None
        elif move is Move.RELEASE:
            quarantine, release = None, event
        else:
            review = event
        if after == LAST_REVIEW:
            state = State(review.event.payload["status"]) if review else State.NEVER_REVIEWED
        else:
            state = State(after)
    payload = review.event.payload if review else {}
    return ReviewState(
        entry,
        state,
        review,
        quarantine,
        release,
        tuple(payload.get("limits", ())),
        tuple(payload.get("risks", ())),
        tuple(history),
        tuple(ignored),
    )


def _evidence_problem(ledger: LedgerCore, release: Entry, quarantine: Entry) -> str | None:
    payload = release.event.payload
    if payload["quarantine"] != quarantine.digest:
        return f"it cites {Digest(payload['quarantine']).short}, not the open quarantine"
    for ref in payload["evidence"]:
        try:
            seq = ledger.get(ref).seq
        except NotFoundError:
            return f"its evidence {Digest(ref).short} is not in the ledger"
        if seq <= quarantine.seq:
            return f"its evidence {Digest(ref).short} was not recorded after the quarantine"
    return None


# -- recording moves -------------------------------------------------------------------------


def _refuse(current: ReviewState, move: Move) -> ConflictError:
    legal = ", ".join(m.value for m in current.moves) or "none: it is final"
    hint = {
        State.QUARANTINED: "a quarantine is lifted only by a release citing evidence "
        f"(mlprov release {current.label} --evidence EVENT)",
        State.REJECTED: "a rejection is final; record fixed data as a new version",
    }.get(current.state, f"legal moves from {current.state.value}: {legal}")
    return ConflictError(
        f"{current.label} is {current.state.value}: the move {move.value} is not allowed "
        f"(legal moves: {legal})",
        hint,
    )


def _guard(ledger: LedgerCore, target: Entry | Digest | str, move: Move) -> ReviewState:
    current = status_of(ledger, target)
    if move not in TRANSITIONS[current.state]:
        raise _refuse(current, move)
    return current


def _texts(values: Iterable[str], what: str) -> list[str]:
    found = [v.strip() for v in values]
    if any(not v for v in found):
        raise InputError(f"an empty {what} was given", f"say what each {what} is")
    return found


def record_review(
    ledger: LedgerCore,
    target: Entry | Digest | str,
    status: ReviewStatus | str,
    reviewer: str | None = None,
    limits: Sequence[str] = (),
    risks: Sequence[str] = (),
    note: str | None = None,
    signer: SignerKey | None = None,
    actor: str | None = None,
    *,
    separate_duties: bool = False,
) -> Entry:
    """Record `reviewer`'s judgement of a source or dataset (default reviewer: the actor).

    `accepted_with_limits` needs `limits`, and only it takes them. With `signer` the review
    is signed (`mlprov.governance.signoff`). With `separate_duties` whoever recorded the
    target cannot accept it. Illegal moves raise ConflictError (see the module doc).
    """
    try:
        verdict = ReviewStatus(status)
    except ValueError:
        raise InputError(
            f"{status!r} is not a review status", "use one of " + ", ".join(ReviewStatus)
        ) from None
    actor = actor or default_actor()
    reviewer = reviewer or actor
    move = _MOVE_OF_STATUS[verdict]
    current = _guard(ledger, target, move)
    limits, risks = _texts(limits, "limit"), _texts(risks, "risk")
    if (verdict is ReviewStatus.ACCEPTED_WITH_LIMITS) != bool(limits):
        raise ConflictError(
            f"status {verdict.value} "
            + ("needs at least one limit" if not limits else "takes no limits"),
            "give the limits the model owner must carry (--limit), with accepted_with_limits"
            if not limits
            else "use accepted_with_limits to accept with limits",
        )
    recorder = current.target.event.actor
    if separate_duties and move in (Move.ACCEPT, Move.ACCEPT_WITH_LIMITS) and reviewer == recorder:
        raise ConflictError(
            f"{reviewer} recorded {current.label} (event {current.target.digest.short}) and so "
            "cannot approve it: duties are separated",
            "have another reviewer record the review",
        )
    payload: dict[str, Any] = {
        "target": current.target.digest,
        "status": verdict.value,
        "reviewer": reviewer,
        "limits": limits,
        "risks": risks,
        "note": note,
    }
    if signer is not None:
        payload = sign_review(payload, signer)
    return _append(ledger, "review", payload, actor, [current.target.digest])


def record_quarantine(
    ledger: LedgerCore,
    source: Entry | Digest | str,
    trigger: str,
    exit_condition: str,
    blocked_use: Sequence[str] = ("training",),
    allowed_use: Sequence[str] = (),
    actor: str | None = None,
) -> Entry:
    """Quarantine a source: it blocks every use but `allowed_use` until a release citing
    evidence for `exit_condition`. (Quarantine a dataset with a `quarantined` review.)"""
    entry = target_of(ledger, source)
    if entry.event.type.value != "source":
        raise InputError(
            f"{entry.event.name} is a dataset; a quarantine record names a source",
            "quarantine a dataset with: mlprov review DATASET --status quarantined",
        )
    blocked = [check_use(u) for u in dict.fromkeys(blocked_use)]
    allowed = [check_use(u) for u in dict.fromkeys(allowed_use)]
    both = sorted(set(blocked) & set(allowed))
    if not blocked or both:
        raise InputError(
            f"use {both[0]!r} is both blocked and allowed" if both else "no blocked use given",
            "name the blocked uses (e.g. training) and the allowed ones, each once",
        )
    current = _guard(ledger, entry, Move.QUARANTINE)
    payload = {
        "source": current.label,
        "trigger": _texts([trigger], "trigger")[0],
        "blocked_use": blocked,
        "allowed_use": allowed,
        "exit_condition": _texts([exit_condition], "exit condition")[0],
    }
    return _append(ledger, "quarantine", payload, actor, [entry.digest])


def record_release(
    ledger: LedgerCore,
    source: Entry | Digest | str,
    evidence: Sequence[Entry | Digest | str],
    note: str | None = None,
    actor: str | None = None,
) -> Entry:
    """Lift the open quarantine of a source (or dataset), citing `evidence`: events
    recorded after the quarantine that meet its exit condition."""
    current = _guard(ledger, source, Move.RELEASE)
    quarantine = current.quarantine
    assert quarantine is not None  # the table allows a release only from quarantined
    if not evidence:
        raise ConflictError(
            f"releasing {current.label} needs evidence",
            f"cite the events that meet its exit condition: "
            f"{quarantine.event.payload.get('exit_condition', 'see the quarantine')}",
        )
    cited = list(
        dict.fromkeys(e.digest if isinstance(e, Entry) else ledger.resolve(e) for e in evidence)
    )
    payload = {
        "source": current.label,
        "quarantine": quarantine.digest,
        "evidence": cited,
        "note": note,
    }
    event = Event.create("release", payload, actor=actor or default_actor(), parents=())
    problem = _evidence_problem(ledger, Entry(-1, event.digest, event, b""), quarantine)
    if problem is not None:
        raise ConflictError(
            f"cannot release {current.label}: {problem}",
            "cite events recorded after the quarantine (a new exclusion, a review, ...)",
        )
    return _append(ledger, "release", payload, actor, [quarantine.digest, *cited])


def _append(
    ledger: LedgerCore,
    kind: str,
    payload: Mapping[str, Any],
    actor: str | None,
    parents: list[Digest],
) -> Entry:
    return ledger.record(kind, payload, actor=actor, parents=parents)
