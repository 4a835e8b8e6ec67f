"""Causes: why a record of an opted-out subject is in a training set, from recorded evidence.

For a record that reached the dataset, each cause names what the ledger shows:

- `not-on-list` — the subject is on no recorded opt-out list;
- `no-subject` — the record names no subject, so no list could match it;
- `never-ran` — no exclusion step with an opt-out list ran on the record's path;
- `stale-list` — the exclusion step used an older version of the list, though a newer one
  listing the subject had been recorded before the step ran;
- `list-after-step` — the step ran before the version listing the subject was loaded;
- `column-rewritten` — the step matched on a column's value, and an earlier step had
  rewritten that column in this record (redaction made it unmatchable);
- `value-mismatch` — the step matched on a column's value and this record's value was not
  on the list, though its subject is;
- `other-list` — the subject is on a list the step did not use;
- `near-duplicate` — a step removed a record of an opted-out subject as a duplicate of this
  one, so the content lives on in a record that does not name the subject;
- `source-quarantined`, `source-rejected`, `source-unreviewed` — the source's review state
  when the build was recorded;
- `build-forced`, `gates-not-run` — the build was recorded past the gates that blocked it,
  or ran none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlprov.answers.why.trails import History, Trail, removed_as_duplicates_of, rows_where
from mlprov.digest import Digest
from mlprov.governance.gates import optout_lists
from mlprov.governance.review import ReviewState, State
from mlprov.ledger.events import Entry

__all__ = ["Cause", "Lists", "causes_of", "gate_causes", "review_causes"]


@dataclass(frozen=True)
class Cause:
    code: str
    text: str
    evidence: tuple[Digest, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "text": self.text, "evidence": [str(e) for e in self.evidence]}


class Lists:
    """Every recorded version of every opt-out list, and which of them name a subject."""

    def __init__(self, history: History) -> None:
        self.history = history
        names = {e.event.payload["name"] for e in optout_lists(history.ledger)}
        self.versions = [
            e for e in history.ledger.entries(type="source") if e.event.payload["name"] in names
        ]

    def naming(self, subject: bytes) -> list[Entry]:
        found = []
        for entry in self.versions:
            records = self.history.record_set(entry)
            if records is not None and records.has_subject(subject):
                found.append(entry)
        return found

    def names(self, entry_digest: Digest, subject: bytes) -> bool | None:
        entry = next((e for e in self.versions if e.digest == entry_digest), None)
        if entry is None:
            entry = self.history.ledger.get(entry_digest)
        records = self.history.record_set(entry)
        return None if records is None else records.has_subject(subject)


def _time(stamp: str) -> str:
    """A recorded time to the millisecond: steps and lists are often seconds apart."""
    return stamp[:23].replace("T", " ")


def _when(entry: Entry) -> str:
    return _time(entry.event.recorded_at)


def _exclusions(trail: Trail) -> list[tuple[Entry, dict[str, object]]]:
    steps: list[tuple[Entry, dict[str, object]]] = []
    for fate in trail.fates:
        payload = fate.step.event.payload
        using = [u for u in payload.get("used", ()) if u.get("role") == "using"]
        if payload.get("kind") == "exclusion" and using:
            steps.extend((fate.step, u) for u in using)
    return steps


def _step_label(step: Entry) -> str:
    p = step.event.payload
    return f"{p['name']} (step {p['step']})" if p.get("step") else str(p["name"])


def _unmatched(trail: Trail, step: Entry, listing: Entry) -> Cause:
    """The list named the subject, yet the step kept the record."""
    params = step.event.payload.get("params", {})
    column = params.get("on")
    if params.get("matched_on") != "value" or column is None:
        return Cause(
            "inconsistent",
            f"{_step_label(step)} matched by subject hash with {listing.event.name}, which names "
            "this subject, yet kept the record: the recorded evidence is inconsistent",
            (step.digest, listing.digest),
        )
    for fate in trail.fates:
        if fate.step.digest == step.digest:
            break
        if fate.did != "changed":
            continue
        if fate.columns is None or column in fate.columns:
            how = "" if fate.columns is not None else " (which columns it changed is not recorded)"
            return Cause(
                "column-rewritten",
                f"{_step_label(step)} matched on the value of column {column!r}, which "
                f"{fate.label} had already rewritten in this record{how}, so the value no "
                f"longer matched {listing.event.name}",
                (step.digest, fate.step.digest, listing.digest),
            )
    return Cause(
        "value-mismatch",
        f"{_step_label(step)} matched on the value of column {column!r}; this record's value "
        f"was not on {listing.event.name}, though its subject is",
        (step.digest, listing.digest),
    )


def causes_of(trail: Trail, lists: Lists, subject: bytes | None) -> Iterator[Cause]:
    """Why a record that reached the dataset was not removed by an opt-out exclusion."""
    history = lists.history
    yield from _near_duplicates(trail, lists)
    if subject is None:
        yield Cause(
            "no-subject",
            "this record names no subject, so no opt-out list could match it",
            (trail.source.digest,),
        )
        return
    naming = lists.naming(subject)
    if not naming:
        names = sorted({e.event.payload["name"] for e in lists.versions})
        yield Cause(
            "not-on-list",
            "the subject is on no recorded opt-out list"
            + (f" (lists recorded: {', '.join(names)})" if names else " (none is recorded)"),
        )
        return
    steps = _exclusions(trail)
    if not steps:
        newest = naming[-1]
        yield Cause(
            "never-ran",
            f"no exclusion step with an opt-out list ran on this record's path, though "
            f"{newest.event.name} (recorded {_when(newest)}) names the subject",
            (newest.digest,),
        )
        return
    for step, used in steps:
        listing = history.ledger.get(str(used["event"]))
        if lists.names(listing.digest, subject):
            yield _unmatched(trail, step, listing)
            continue
        started = str(step.event.payload.get("started_at") or step.event.recorded_at)
        same = [e for e in naming if e.event.payload["name"] == listing.event.payload["name"]]
        earlier = [e for e in same if e.event.recorded_at <= started]
        if earlier:
            newer = earlier[-1]
            yield Cause(
                "stale-list",
                f"{_step_label(step)} used {listing.event.name}, an older version of the list: "
                f"{newer.event.name}, which names the subject, had been recorded "
                f"({_when(newer)}) before the step ran ({_time(started)})",
                (step.digest, listing.digest, newer.digest),
            )
        elif same:
            later = same[0]
            yield Cause(
                "list-after-step",
                f"{_step_label(step)} ran ({_time(started)}) before "
                f"{later.event.name}, which names the subject, was loaded ({_when(later)})",
                (step.digest, listing.digest, later.digest),
            )
        else:
            other = naming[-1]
            yield Cause(
                "other-list",
                f"{_step_label(step)} used {listing.event.name}; the subject is on "
                f"{other.event.name}, which it did not use",
                (step.digest, other.digest),
            )


def _near_duplicates(trail: Trail, lists: Lists) -> Iterator[Cause]:
    if trail.key is None:
        return
    history = lists.history
    for step, removed in removed_as_duplicates_of(history, trail.key):
        for source, subject in _subjects_of_key(history, removed):
            if subject is None or subject == trail.subject or not lists.naming(subject):
                continue
            yield Cause(
                "near-duplicate",
                f"{_step_label(step)} removed key {removed} of {source.event.name}, a record of "
                f"an opted-out subject, as a duplicate of this record and kept this one; this "
                "record does not name that subject, so opt-out removal could not match it",
                (step.digest, source.digest),
            )


def _subjects_of_key(history: History, key: str) -> Iterator[tuple[Entry, bytes | None]]:
    for source in history.sources:
        records = history.record_set(source)
        if records is None:
            continue
        for row in rows_where(records, "key", key):
            yield source, row.subject


def review_causes(source: Entry, state: ReviewState) -> Iterator[Cause]:
    """The source's review state when the build was recorded, as a cause where it blocks."""
    label = source.event.name
    if state.state is State.QUARANTINED and state.quarantine is not None:
        q = state.quarantine.event.payload
        trigger = q.get("trigger") or q.get("note") or "a quarantining review"
        yield Cause(
            "source-quarantined",
            f"{label} was quarantined when the build was recorded ({trigger})",
            (state.quarantine.digest,),
        )
    elif state.state is State.REJECTED:
        yield Cause("source-rejected", f"{label} was rejected when the build was recorded")
    elif state.state is State.NEVER_REVIEWED:
        yield Cause(
            "source-unreviewed", f"{label} had never been reviewed when the build was recorded"
        )


def gate_causes(build: Entry) -> Iterator[Cause]:
    """A build recorded past gates that blocked it, or without running any."""
    p = build.event.payload
    if p.get("forced"):
        yield Cause(
            "build-forced",
            f"build {p['name']} was recorded past the gates that blocked it: "
            + "; ".join(p.get("findings", ())),
            (build.digest,),
        )
    elif p.get("gate") == "not_run":
        yield Cause("gates-not-run", f"build {p['name']} ran no gates", (build.digest,))
