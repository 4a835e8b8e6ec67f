"""The gates: each asks one question of a source or dataset before a use, such as training.

A gate has an id, a name, a message (what it blocks) and a hint (how to clear it), and
`check(ledger, target, use)` returns its findings; none means it passes. Compose gates
with :func:`mlprov.governance.policy.all_of` and :func:`mlprov.governance.policy.any_of`.

======  ================  ====================================================================
id      name              blocks when
======  ================  ====================================================================
MPG001  never-reviewed    a source of the target was never reviewed, or is named but not
                          recorded here (a dataset without sources must be reviewed itself)
MPG002  quarantined       the target or a source is quarantined, and the use is not among the
                          quarantine's allowed uses
MPG003  rejected          the target or a source was rejected
MPG004  byte-drift        a source's recorded `byte_digest` no longer matches the file at its
                          `uri`; *unknown* when that file cannot be read here
MPG005  opt-out           a subject on the newest recorded version of an opt-out list is in
                          the target; *unknown* when a set is not here or records no subjects
MPG006  review-signature  the signature of a review that counts (the newest review, the open
                          quarantine, the last move) does not verify (*unknown*: its key is
                          not trusted here)
MPG007  separate-duties   the review that accepted the target or a source is by whoever
                          recorded it (not among the default gates)
MPG008  lint-errors       the dataset's generated manifest (`manifest.from_ledger`) has
                          an error-severity lint finding (`governance.lint`), other than those
                          the gates above judge (MP007, MP008, MP010, MP012, and findings on
                          a source the ledger does not hold)
======  ================  ====================================================================

An *unknown* finding blocks like any other: a gate that cannot see says so, never guesses.

**Opt-out lists.** A source is an opt-out list when an exclusion step used it with the role
`using` (the recorded role), or when its name contains `opt-out`, `optout` or `opt_out` — a
list that no step used is exactly the failure to catch. For each list name, the newest
recorded version is checked, so a dataset built with an older list is blocked by subjects
that opted out since. A relative `uri` is read relative to the folder that holds `.mlprov/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import unquote, urlparse

from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.governance.manifest import is_opt_out
from mlprov.governance.review import State, status_of, target_of
from mlprov.governance.signoff import check_review
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = ["GATES", "LINT_JUDGED_ELSEWHERE", "Finding", "Rule", "Verdict"]

Verdict = Literal["blocked", "unknown"]


@dataclass(frozen=True)
class Finding:
    """One reason a gate blocks: which gate, what, how to fix it, and the event it is about."""

    gate: str
    name: str
    message: str
    hint: str
    subject: Digest | None = None
    verdict: Verdict = "blocked"

    def __str__(self) -> str:
        return f"{self.gate} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "name": self.name,
            "verdict": self.verdict,
            "message": self.message,
            "hint": self.hint,
            "subject": None if self.subject is None else str(self.subject),
        }


@dataclass(frozen=True)
class _Found:
    message: str
    subject: Digest | None = None
    verdict: Verdict = "blocked"
    hint: str | None = None  # a hint for this finding, else the gate's


Test = Callable[[LedgerCore, Entry, str], Iterator[_Found]]


@dataclass(frozen=True)
class Rule:
    """A gate: an id, a name, what it blocks, how to clear it, and its test."""

    id: str
    name: str
    message: str
    hint: str
    test: Test = field(repr=False, compare=False)

    def check(self, ledger: LedgerCore, target: Entry, use: str) -> list[Finding]:
        return [
            Finding(self.id, self.name, f.message, f.hint or self.hint, f.subject, f.verdict)
            for f in self.test(ledger, target, use)
        ]


# -- what a target is made of ----------------------------------------------------------------


def _label(entry: Entry) -> str:
    return f"{entry.event.type.value} {names.label(entry)}"


def _sources(ledger: LedgerCore, target: Entry) -> list[tuple[str, Entry | None]]:
    """The target's sources by `name@version`, each with its event (None: not recorded)."""
    if target.event.type.value == "source":
        return [(target.event.name or "", target)]
    found: list[tuple[str, Entry | None]] = []
    for label in target.event.payload.get("sources", ()):
        try:
            entry: Entry | None = target_of(ledger, label)
        except (InputError, NotFoundError):
            entry = None
        found.append((label, entry if entry and entry.event.type.value == "source" else None))
    return found


def _governed(ledger: LedgerCore, target: Entry) -> list[Entry]:
    """The target and its recorded sources: each one's review state counts."""
    parts = [e for _, e in _sources(ledger, target) if e is not None]
    return [target, *(e for e in parts if e.digest != target.digest)]


# -- the tests -------------------------------------------------------------------------------


def _never_reviewed(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    parts = _sources(ledger, target) or [(target.event.name or "", target)]
    for label, entry in parts:
        if entry is None:
            yield _Found(
                f"source {label} of {_label(target)} is not recorded in this ledger",
                target.digest,
                hint="record the source (mlprov fingerprint, or p.source in a pipeline)",
            )
        elif status_of(ledger, entry).state is State.NEVER_REVIEWED:
            yield _Found(
                f"{_label(entry)} has never been reviewed",
                entry.digest,
                hint=f"record a review: mlprov review {entry.event.name} --status accepted",
            )


def _quarantined(ledger: LedgerCore, target: Entry, use: str) -> Iterator[_Found]:
    for entry in _governed(ledger, target):
        state = status_of(ledger, entry)
        held = state.quarantine
        if state.state is not State.QUARANTINED or held is None or state.allows(use):
            continue
        payload = held.event.payload
        why = payload.get("trigger") or f"review by {payload.get('reviewer')}"
        allowed = ", ".join(payload.get("allowed_use", ())) or "none"
        exit_condition = payload.get("exit_condition", "the reviewer's conditions")
        yield _Found(
            f"{_label(entry)} is quarantined ({why}); {use} is not an allowed use "
            f"(allowed: {allowed})",
            held.digest,
            hint=f"meet its exit condition ({exit_condition}), then record a release: "
            f"mlprov release {entry.event.name} --evidence EVENT",
        )


def _rejected(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    for entry in _governed(ledger, target):
        state = status_of(ledger, entry)
        if state.state is State.REJECTED and state.history:
            last = state.history[-1]
            yield _Found(
                f"{_label(entry)} was rejected by {last.event.payload.get('reviewer')}",
                last.digest,
            )


def _local_file(ledger: LedgerCore, uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) > 1:  # s3://, https://...; a one-letter scheme is a drive
        return None
    path = Path(uri).expanduser()
    home = ledger.location.home if ledger.location else None
    return path if path.is_absolute() else (home.parent if home else Path.cwd()) / path


def _byte_drift(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    for _, entry in _sources(ledger, target):
        payload = entry.event.payload if entry is not None else {}
        uri, recorded = payload.get("uri"), payload.get("byte_digest")
        if entry is None or not uri or not recorded:
            continue
        path = _local_file(ledger, uri)
        if path is None:
            yield _Found(f"{_label(entry)}: {uri} cannot be read here", entry.digest, "unknown")
            continue
        try:
            now = digest_file(path)
        except (InputError, NotFoundError) as exc:
            yield _Found(
                f"{_label(entry)}: byte drift unknown, {exc.message}", entry.digest, "unknown"
            )
            continue
        if now != recorded:
            yield _Found(
                f"{_label(entry)}: the file {path} has changed since it was recorded "
                f"(recorded {Digest(recorded).short}, now {now.short})",
                entry.digest,
            )


def optout_lists(ledger: LedgerCore) -> list[Entry]:
    """The newest recorded version of each opt-out list (see the module doc)."""
    used: set[str] = set()
    for step in ledger.entries(type="transform"):
        payload = step.event.payload
        if payload.get("kind") == "exclusion":
            used.update(u["event"] for u in payload.get("used", ()) if u.get("role") == "using")
    sources = list(ledger.entries(type="source"))
    names = {e.event.payload["name"] for e in sources if e.digest in used}
    newest = {
        e.event.payload["name"]: e
        for e in sources
        if e.event.payload["name"] in names or is_opt_out(e.event.payload["name"])
    }
    return list(newest.values())


def _opt_out(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    lists = optout_lists(ledger)
    if target.event.type.value == "source" and any(
        e.event.payload["name"] == target.event.payload["name"] for e in lists
    ):
        return  # an opt-out list holds its own subjects
    if not lists:
        return
    try:
        held = ledger.open_record_set(Digest(target.event.payload["record_root"]).hex)
    except (KeyError, InputError, NotFoundError) as exc:
        why = exc.message if isinstance(exc, InputError) else "it records no record set"
        yield _Found(
            f"{_label(target)}: opt-outs cannot be checked: {why}", target.digest, "unknown"
        )
        return
    except IntegrityError as exc:
        yield _Found(f"{_label(target)}: {exc.message}", target.digest)
        return
    for listing in lists:
        name = listing.event.name
        try:
            listed = ledger.record_set(Digest(listing.event.payload["record_root"]).hex)
        except (KeyError, InputError, NotFoundError):
            why = f"the record set of opt-out list {name} is not here"
            yield _Found(
                f"{_label(target)}: opt-outs cannot be checked: {why}", listing.digest, "unknown"
            )
            continue
        except IntegrityError as exc:
            yield _Found(f"opt-out list {name}: {exc.message}", listing.digest)
            continue
        subjects = listed.subjects()
        if not listed.size:
            continue  # an empty list: nobody to look for
        if not subjects or (held.size and not held.subject_count):
            what = f"opt-out list {name}" if not subjects else _label(target)
            yield _Found(
                f"{_label(target)} cannot be checked against {name}: {what} records no subjects",
                listing.digest,
                "unknown",
            )
            continue
        try:  # the shards of the target it reads are checked as they are read
            present = held.subjects_in(subjects)
        except IntegrityError as exc:
            yield _Found(f"{_label(target)}: {exc.message}", target.digest)
            return
        if present:
            yield _Found(
                f"{len(present)} "
                + (
                    "subject on the opt-out list"
                    if len(present) == 1
                    else "subjects on the opt-out list"
                )
                + f" {name} {'is' if len(present) == 1 else 'are'} still in {_label(target)}",
                listing.digest,
            )


def _review_signature(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    keys = ledger.trusted_keys()
    for entry in _governed(ledger, target):
        state = status_of(ledger, entry)
        counted = (state.review, state.quarantine, *state.history[-1:])
        for event in dict.fromkeys(e for e in counted if e is not None):
            if event.event.type.value != "review":
                continue
            found = check_review(event, keys)
            if found.verdict == "invalid":
                yield _Found(
                    f"the review {event.digest.short} of {_label(entry)} claims a signature "
                    f"by {found.key_id} that does not verify",
                    event.digest,
                )
            elif found.verdict == "unknown_key":
                yield _Found(
                    f"the review {event.digest.short} of {_label(entry)} is signed by "
                    f"{found.key_id}, a key not trusted here",
                    event.digest,
                    "unknown",
                    hint="put the reviewer's .pub file in the ledger's keys folder",
                )


def _separate_duties(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    for entry in _governed(ledger, target):
        state = status_of(ledger, entry)
        approving = (State.ACCEPTED, State.ACCEPTED_WITH_LIMITS)
        if state.review is None or state.state not in approving:
            continue
        reviewer = state.review.event.payload["reviewer"]
        if reviewer == entry.event.actor:
            yield _Found(
                f"{_label(entry)} was accepted by {reviewer}, who recorded it",
                state.review.digest,
            )


#: Lint rules the lint gate leaves to another gate, which judges the same question with
#: more evidence: a newer opt-out list (MPG005 looks for its subjects), reviewer status
#: (MPG001), quarantine or rejection (MPG002, MPG003), and the bytes (MPG004 re-reads the
#: sources' files, MPG005 reports a missing record set).
LINT_JUDGED_ELSEWHERE: Final = frozenset({"MP007", "MP008", "MP010", "MP012"})


def _lint_errors(ledger: LedgerCore, target: Entry, _use: str) -> Iterator[_Found]:
    if target.event.type.value != "dataset":
        return  # a source has no manifest; its own gates judge it
    from mlprov.governance.lint import lint
    from mlprov.governance.manifest import from_ledger

    manifest = from_ledger(ledger, target)
    # A source the ledger does not hold is MPG001's finding, not one per field it lacks.
    unrecorded = {s.ref for s in manifest.source_records if s.event is None}
    for f in lint(manifest, ledger):
        if f.severity != "error" or f.rule in LINT_JUDGED_ELSEWHERE or f.value in unrecorded:
            continue
        yield _Found(f"{_label(target)}: {f.rule} {f.message}", target.digest, hint=f.hint)


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({r.id: r for r in rules})


#: Every gate, by id.
GATES: Final[Mapping[str, Rule]] = _rules(
    Rule(
        "MPG001",
        "never-reviewed",
        "every source must be reviewed",
        "record a review with mlprov review",
        _never_reviewed,
    ),
    Rule(
        "MPG002",
        "quarantined",
        "a quarantined source or dataset blocks every use but its allowed ones",
        "release it with evidence that meets its exit condition",
        _quarantined,
    ),
    Rule(
        "MPG003",
        "rejected",
        "a rejected source or dataset blocks every use",
        "a rejection is final: record fixed data as a new version and review it",
        _rejected,
    ),
    Rule(
        "MPG004",
        "byte-drift",
        "a source's file must still have the bytes recorded",
        "restore the recorded file, or record the changed data as a new source version",
        _byte_drift,
    ),
    Rule(
        "MPG005",
        "opt-out",
        "no subject on the newest opt-out list may be in the data",
        "run the exclusion again with the newest opt-out list, and use the new dataset",
        _opt_out,
    ),
    Rule(
        "MPG006",
        "review-signature",
        "a signed review must verify",
        "do not rely on this review: record a new one, signed by the reviewer's key",
        _review_signature,
    ),
    Rule(
        "MPG007",
        "separate-duties",
        "whoever recorded a source or dataset cannot be the one who accepted it",
        "have another reviewer record the review",
        _separate_duties,
    ),
    Rule(
        "MPG008",
        "lint-errors",
        "the dataset's manifest must have no lint errors",
        "see `mlprov lint DATASET` and fix each finding",
        _lint_errors,
    ),
)
