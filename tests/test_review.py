"""The review and quarantine state table, on a real SQLite ledger: every legal move and
every illegal one, the rules on limits, evidence and separated duties, and signatures."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import mlprov.governance.review as review
from mlprov.digest import Digest
from mlprov.errors import ConflictError, InputError, NotFoundError, SignatureError
from mlprov.facade import Ledger
from mlprov.governance.review import (
    LAST_REVIEW,
    TRANSITIONS,
    Move,
    State,
    record_quarantine,
    record_release,
    record_review,
    status_of,
    target_of,
)
from mlprov.governance.signoff import check_review, reviewer_signer, verify_review
from mlprov.ledger import Entry, Event
from mlprov.ledger.keys import SignerKey, write_keypair

ROOT = Path(__file__).resolve().parents[1]
ALICE, CAROL = "alice@example.com", "carol@example.com"
SOURCE = "chats@2026-05-22"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger.init(tmp_path)
    led.append(Event.create("source", {"name": "chats", "version": "2026-05-22"}, actor=ALICE))
    return led


def note(ledger: Ledger, name: str = "opt-out-removal-v3") -> Entry:
    """An unrelated event, recorded now: evidence for a release."""
    return ledger.append(Event.create("transform", {"name": name}, actor=ALICE))


def quarantine(ledger: Ledger, target: str = SOURCE) -> Entry:
    return record_quarantine(
        ledger,
        target,
        "opt-out record found in model-review sample",
        "opt-out-removal evidence and reviewer status attached",
        blocked_use=["training", "benchmark-publication"],
        allowed_use=["incident-reproduction"],
        actor=ALICE,
    )


MOVES: dict[Move, Callable[[Ledger], Entry]] = {
    Move.ACCEPT: lambda led: record_review(led, SOURCE, "accepted", CAROL),
    Move.ACCEPT_WITH_LIMITS: lambda led: record_review(
        led, SOURCE, "accepted_with_limits", CAROL, limits=["English tickets only"]
    ),
    Move.REJECT: lambda led: record_review(led, SOURCE, "rejected", CAROL),
    Move.QUARANTINE: quarantine,
    Move.RELEASE: lambda led: record_release(led, SOURCE, [note(led)], actor=ALICE),
}

# How to reach each state; `quarantined` sits over an accepted_with_limits review.
PATHS: dict[State, tuple[Move, ...]] = {
    State.NEVER_REVIEWED: (),
    State.ACCEPTED: (Move.ACCEPT,),
    State.ACCEPTED_WITH_LIMITS: (Move.ACCEPT_WITH_LIMITS,),
    State.QUARANTINED: (Move.ACCEPT_WITH_LIMITS, Move.QUARANTINE),
    State.REJECTED: (Move.REJECT,),
}


def reach(ledger: Ledger, state: State) -> None:
    for move in PATHS[state]:
        MOVES[move](ledger)
    assert status_of(ledger, SOURCE).state is state


@pytest.mark.parametrize("move", list(Move))
@pytest.mark.parametrize("state", list(State))
def test_every_move_from_every_state(ledger: Ledger, state: State, move: Move) -> None:
    reach(ledger, state)
    expected = TRANSITIONS[state].get(move)
    size = ledger.size
    if expected is None:
        with pytest.raises(ConflictError, match=f"is {state.value}: the move {move.value}") as e:
            MOVES[move](ledger)
        assert e.value.exit_code == 5 and e.value.hint
        legal = ", ".join(m.value for m in TRANSITIONS[state]) or "none: it is final"
        assert f"(legal moves: {legal})" in e.value.message
        assert ledger.size == size + (move is Move.RELEASE)  # only the evidence was recorded
        assert status_of(ledger, SOURCE).state is state
        return
    entry = MOVES[move](ledger)
    after = status_of(ledger, SOURCE)
    want = State.ACCEPTED_WITH_LIMITS if expected == LAST_REVIEW else expected
    assert after.state is want
    assert after.history[-1] == entry and after.ignored == ()


def test_the_table_covers_every_state_and_matches_the_docs() -> None:
    assert set(TRANSITIONS) == set(State)
    rows: dict[str, list[str]] = {}
    for line in (review.__doc__ or "").splitlines():
        cells = line.split()
        if cells and cells[0] in {s.value for s in State}:
            rows[cells[0]] = cells[1:]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    md = {
        m[0]: [c.strip() for c in m[1].split("|")]
        for m in re.findall(r"^\| (\w+) \| (.+) \|$", readme, re.M)
        if m[0] in {s.value for s in State}
    }
    for state in State:
        for i, move in enumerate(Move):
            target = TRANSITIONS[state].get(move)
            doc = {None: "—", LAST_REVIEW: "last"}.get(target, target)
            assert rows[state.value][i] == doc, (state, move)
            readme_cell = {None: "—", LAST_REVIEW: "the newest review's state"}.get(target, target)
            assert md[state.value][i] == readme_cell, (state, move)
    with pytest.raises(TypeError):
        TRANSITIONS[State.REJECTED][Move.ACCEPT] = State.ACCEPTED  # type: ignore[index]


def test_a_release_goes_back_to_the_newest_review_even_one_made_during_quarantine(
    ledger: Ledger,
) -> None:
    q = quarantine(ledger)
    assert status_of(ledger, SOURCE).state is State.QUARANTINED
    pending = record_review(ledger, SOURCE, "accepted_with_limits", CAROL, limits=["English"])
    held = status_of(ledger, SOURCE)
    assert held.state is State.QUARANTINED and held.review == pending and held.quarantine == q
    assert not held.allows("training") and held.allows("incident-reproduction")
    released = record_release(ledger, SOURCE, [pending.digest.hex[:12]], note="removal re-run")
    assert set(released.event.parents) == {q.digest, pending.digest}
    after = status_of(ledger, SOURCE)
    assert after.state is State.ACCEPTED_WITH_LIMITS and after.limits == ("English",)
    assert after.release == released and after.quarantine is None and after.allows("training")


def test_a_release_without_a_review_is_no_approval(ledger: Ledger) -> None:
    quarantine(ledger)
    record_release(ledger, SOURCE, [note(ledger)])
    assert status_of(ledger, SOURCE).state is State.NEVER_REVIEWED


def test_a_release_needs_evidence_recorded_after_the_quarantine(ledger: Ledger) -> None:
    before = note(ledger, "opt-out-removal-v2")
    q = quarantine(ledger)
    size = ledger.size
    with pytest.raises(ConflictError, match="needs evidence"):
        record_release(ledger, SOURCE, [])
    with pytest.raises(ConflictError, match="not recorded after the quarantine"):
        record_release(ledger, SOURCE, [before])
    with pytest.raises(ConflictError, match="not recorded after the quarantine"):
        record_release(ledger, SOURCE, [q.digest])
    with pytest.raises(ConflictError, match="is not in the ledger") as missing:
        record_release(ledger, SOURCE, [Digest.of_bytes(b"nothing")])
    assert missing.value.exit_code == 5
    with pytest.raises(NotFoundError):  # an unknown prefix is a typo, as for parents
        record_release(ledger, SOURCE, ["abcdef123456"])
    assert ledger.size == size and status_of(ledger, SOURCE).state is State.QUARANTINED


def test_limits_belong_to_accepted_with_limits_only(ledger: Ledger) -> None:
    with pytest.raises(ConflictError, match="needs at least one limit"):
        record_review(ledger, SOURCE, "accepted_with_limits", CAROL)
    with pytest.raises(ConflictError, match="takes no limits"):
        record_review(ledger, SOURCE, "accepted", CAROL, limits=["English only"])
    with pytest.raises(InputError, match="empty limit"):
        record_review(ledger, SOURCE, "accepted_with_limits", CAROL, limits=[" "])
    with pytest.raises(InputError, match="not a review status"):
        record_review(ledger, SOURCE, "fine", CAROL)
    assert ledger.size == 1


def test_separated_duties_refuse_the_recorder_as_approver(ledger: Ledger) -> None:
    for status, limits in (("accepted", ()), ("accepted_with_limits", ("English",))):
        with pytest.raises(ConflictError, match="duties are separated"):
            record_review(ledger, SOURCE, status, ALICE, limits, separate_duties=True)
    record_review(ledger, SOURCE, "accepted", CAROL, actor=ALICE, separate_duties=True)
    record_review(ledger, SOURCE, "accepted", ALICE)  # not asked for: allowed
    record_review(ledger, SOURCE, "rejected", ALICE, separate_duties=True)  # may refuse own
    assert status_of(ledger, SOURCE).state is State.REJECTED


def test_the_reviewer_defaults_to_the_actor(ledger: Ledger) -> None:
    entry = record_review(ledger, SOURCE, "accepted", actor="bob@example.com")
    assert entry.event.payload["reviewer"] == "bob@example.com"
    assert entry.event.actor == "bob@example.com"
    assert entry.event.parents == (target_of(ledger, SOURCE).digest,)


def test_a_dataset_is_quarantined_by_review_and_released(ledger: Ledger) -> None:
    data = ledger.append(
        Event.create("dataset", {"name": "train", "sources": [SOURCE]}, actor=ALICE)
    )
    with pytest.raises(InputError, match="a quarantine record names a source"):
        quarantine(ledger, "train")
    held = record_review(ledger, "train", "quarantined", CAROL, risks=["opt-out leak"])
    state = status_of(ledger, data.digest)
    assert state.state is State.QUARANTINED and state.quarantine == held
    assert not state.allows("incident-reproduction")  # a quarantining review allows no use
    record_release(ledger, "train", [note(ledger)])
    assert status_of(ledger, "train").state is State.NEVER_REVIEWED
    assert status_of(ledger, SOURCE).state is State.NEVER_REVIEWED  # the source is its own


def test_quarantine_uses_are_checked(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="both blocked and allowed"):
        record_quarantine(ledger, SOURCE, "t", "e", ["training"], ["training"])
    with pytest.raises(InputError, match="no blocked use"):
        record_quarantine(ledger, SOURCE, "t", "e", [])
    with pytest.raises(InputError, match="not a use name"):
        record_quarantine(ledger, SOURCE, "t", "e", ["Training Runs"])
    with pytest.raises(InputError, match="empty trigger"):
        record_quarantine(ledger, SOURCE, "  ", "e")
    entry = record_quarantine(ledger, SOURCE, "t", "e")
    assert entry.event.payload["blocked_use"] == ("training",)
    assert entry.event.parents == (target_of(ledger, SOURCE).digest,)


def test_targets_are_found_by_name_version_dataset_name_or_digest(ledger: Ledger) -> None:
    source = target_of(ledger, SOURCE)
    data = ledger.append(Event.create("dataset", {"name": "train"}, actor=ALICE))
    assert target_of(ledger, source.digest) == source
    assert target_of(ledger, source.digest.hex[:10]) == source
    assert target_of(ledger, "train") == data
    with pytest.raises(NotFoundError, match="no source or dataset chats@9 in this ledger"):
        target_of(ledger, "chats@9")
    other = note(ledger)
    with pytest.raises(InputError, match="is a transform event, not a source or dataset"):
        record_review(ledger, other.digest, "accepted", CAROL)


def test_moves_recorded_by_hand_are_replayed_through_the_same_table(ledger: Ledger) -> None:
    source = target_of(ledger, SOURCE)

    def by_hand(kind: str, **payload: object) -> Entry:
        return ledger.append(Event.create(kind, payload, actor=ALICE))

    early = note(ledger, "opt-out-removal-v1")
    q = quarantine(ledger)
    hasty = by_hand("release", source=SOURCE, quarantine=q.digest, evidence=[early.digest])
    assert status_of(ledger, SOURCE).state is State.QUARANTINED
    evidence = note(ledger)
    record_release(ledger, SOURCE, [evidence])
    twice = by_hand("release", source=SOURCE, quarantine=q.digest, evidence=[evidence.digest])
    record_review(ledger, SOURCE, "rejected", CAROL)
    late = by_hand("review", target=source.digest, status="accepted", reviewer=ALICE)
    state = status_of(ledger, SOURCE)
    assert state.state is State.REJECTED and state.ignored == (hasty, twice, late)
    assert state.to_json()["ignored"] == [str(e.digest) for e in (hasty, twice, late)]


# -- signatures ------------------------------------------------------------------------------


def test_a_signed_review_verifies_and_a_tampered_one_fails(ledger: Ledger) -> None:
    key = SignerKey.generate(CAROL)
    assert ledger.location is not None and ledger.location.keys_dir is not None
    write_keypair(key, ledger.location.keys_dir)
    found = reviewer_signer(ledger, CAROL)
    assert found is not None and found.key_id == key.key_id
    assert reviewer_signer(ledger, "dave@example.com") is None
    signed = record_review(
        ledger, SOURCE, "accepted_with_limits", CAROL, limits=["English"], signer=found
    )
    keys = ledger.trusted_keys()
    assert check_review(signed, keys).verdict == "valid"
    assert verify_review(signed, keys) == key.key_id
    assert check_review(signed, []).verdict == "unknown_key"
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify_review(signed, [])
    # The same signature on another judgement: a new event, whose signature fails.
    forged = dict(signed.event.payload, status="accepted", limits=[])
    tampered = ledger.append(Event.create("review", forged, actor=ALICE))
    assert check_review(tampered, keys).verdict == "invalid"
    with pytest.raises(SignatureError, match="does not verify") as caught:
        verify_review(tampered, keys)
    assert caught.value.exit_code == 10
    unsigned = record_review(ledger, SOURCE, "accepted", CAROL)
    assert check_review(unsigned, keys).verdict == "unsigned"
    with pytest.raises(SignatureError, match="not signed"):
        verify_review(unsigned, keys)


def test_a_signature_needs_its_key_name(ledger: Ledger) -> None:
    signed = record_review(ledger, SOURCE, "accepted", CAROL, signer=SignerKey.generate(CAROL))
    half = {k: v for k, v in signed.event.payload.items() if k != "key_name"}
    with pytest.raises(InputError, match="both key_name and signature"):
        Event.create("review", half, actor=ALICE)
