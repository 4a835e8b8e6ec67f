"""How the audit reads the ledger: the log's verification, then one event type at a time.

Each pass iterates `ledger.entries(type=...)` and keeps only what later passes need
(digests, names, counts), never the events themselves; release, evaluation and prediction
events, which the audit only counts, are counted as stored rows without being decoded.
See :mod:`mlprov.answers.audit` for the checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mlprov.answers.audit.findings import Finding, Subject
from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.governance.gates import optout_lists
from mlprov.governance.lint import lint, vague_rights_basis
from mlprov.governance.manifest import from_ledger
from mlprov.governance.manifest_files import frozen
from mlprov.governance.review import State, status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import EventType
from mlprov.ledger.verify import VerifyReport
from mlprov.store import EventFilter

__all__ = ["Tally", "integrity", "scan"]

_ACCEPTING = (State.ACCEPTED, State.ACCEPTED_WITH_LIMITS)
_MAX_INTEGRITY = 20  # verify's first problems; `mlprov verify` lists them all
_COUNTED_ONLY = (EventType.RELEASE, EventType.EVALUATION, EventType.PREDICTION)
_finding = Finding.of


@dataclass
class Tally:
    """What the scan counts as it goes."""

    events: dict[str, int] = field(default_factory=lambda: {t.value: 0 for t in EventType})
    sources_complete: int = 0
    builds_frozen: int = 0
    read_whole: bool = True


def integrity(ledger: LedgerCore, report: VerifyReport, subject: Subject) -> Iterator[Finding]:
    """What the log's verification found: problems (AU015, the first few), and events no
    verified signed checkpoint covers (AU014)."""
    for p in report.problems[:_MAX_INTEGRITY]:
        where = subject if p.seq is None else Subject(f"event at position {p.seq}")
        yield _finding("AU015", where, f"{p.code}: {p.message}")
    if len(report.problems) > _MAX_INTEGRITY:
        more = len(report.problems) - _MAX_INTEGRITY
        yield _finding("AU015", subject, f"and {more} more problems: see `mlprov verify`")
    if report.covered >= report.size:
        return
    uncovered = report.size - report.covered
    if not report.checkpoints:
        message = f"no checkpoint: none of the {report.size} events is covered"
    elif not ledger.trusted_keys():
        message = "no trusted verifier key, so no checkpoint signature could be checked"
    else:
        message = (
            f"the newest {uncovered} of {report.size} events are not covered by a verified "
            "signed checkpoint"
        )
        if report.covered:
            message += f" (one covers the first {report.covered})"
    with ledger.store.reader() as r:
        rows = r.by_seq([report.covered])
    first = Subject(
        f"event at position {report.covered}",
        Digest.from_raw(rows[0].digest) if rows else None,
    )
    yield _finding("AU014", first, message)


def scan(ledger: LedgerCore, tally: Tally, found: list[Finding]) -> None:
    """Read each event type in turn, appending findings to `found` as they come: what was
    found before a damaged event stops the scan (IntegrityError) is kept."""
    found += _runs_and_steps(ledger, tally)
    rejected: dict[str, Subject] = {}
    found += _sources(ledger, tally, rejected)
    datasets, newest = _dataset_digests(ledger, tally)
    built_on: dict[str, None] = {}
    found += _builds(ledger, tally, datasets, built_on)
    # of the datasets builds were recorded on, the one of each name built on last: a dataset
    # whose name a later build trained on a newer version of is superseded history
    last_built: dict[str, str] = {}
    for digest in built_on:
        last_built[ledger.get(digest).event.payload.get("name", digest)] = digest
    current = dict.fromkeys([*newest.values(), *last_built.values()])
    found += _datasets(ledger, current, rejected)
    with ledger.store.reader() as r:
        for kind in _COUNTED_ONLY:  # rows only, never decoded: predictions may be millions
            tally.events[kind.value] = sum(1 for _ in r.select(EventFilter(type=kind.value)))


def _entries(ledger: LedgerCore, kind: EventType, tally: Tally) -> Iterator[Entry]:
    for entry in ledger.entries(type=kind.value):
        tally.events[kind.value] += 1
        yield entry


def _runs_and_steps(ledger: LedgerCore, tally: Tally) -> Iterator[Finding]:
    for step in _entries(ledger, EventType.TRANSFORM, tally):
        if step.event.payload.get("status") == "failed":
            error = step.event.payload.get("error") or "no error recorded"
            yield _finding("AU013", Subject.of(step), f"step failed: {error}")
    started: dict[str, Entry] = {}
    for run in _entries(ledger, EventType.RUN, tally):
        if run.event.payload["status"] == "started":
            started[run.event.payload["run_id"]] = run
        else:  # in log order, so only a later end closes a start
            started.pop(run.event.payload["run_id"], None)
    for run in started.values():
        yield _finding(
            "AU012",
            Subject.of(run),
            f"run {run.event.payload['run_id']} started and never ended",
            (("started", run.event.recorded_at),),
        )


def _sources(ledger: LedgerCore, tally: Tally, rejected: dict[str, Subject]) -> Iterator[Finding]:
    # Only a source with a review or quarantine needs its moves replayed.
    moved = {e.event.payload["target"] for e in _entries(ledger, EventType.REVIEW, tally)}
    held = {e.event.name for e in _entries(ledger, EventType.QUARANTINE, tally)}
    lists = {e.event.payload["name"] for e in optout_lists(ledger)}
    for entry in _entries(ledger, EventType.SOURCE, tally):
        subject, payload = Subject.of(entry), entry.event.payload
        is_list = payload["name"] in lists  # used as one, or named as one (is_opt_out)
        basis = (payload.get("rights_basis") or "").strip()
        if not is_list and not basis:
            yield _finding("AU001", subject, "the source has no rights basis")
        elif not is_list and vague_rights_basis(basis):
            yield _finding("AU002", subject, f"the rights basis {basis!r} names nothing to check")
        touched = entry.digest in moved or entry.event.name in held
        state = status_of(ledger, entry) if touched else None
        now = state.state if state is not None else State.NEVER_REVIEWED
        history = state.history if state is not None else ()
        if not any(e.event.type is EventType.REVIEW for e in history):  # a quarantine is none
            what = "the opt-out list" if is_list else "the source"
            yield _finding("AU003", subject, f"{what} was never reviewed")
        if state is not None and state.quarantine is not None and now is State.QUARANTINED:
            yield _quarantine(subject, state.quarantine)
        elif now is State.REJECTED:
            rejected[entry.digest] = subject
        if now in _ACCEPTING and (is_list or not vague_rights_basis(basis)):
            tally.sources_complete += 1


def _quarantine(subject: Subject, held: Entry) -> Finding:
    p = held.event.payload
    if held.event.type is EventType.QUARANTINE:
        trigger, exit_when = p["trigger"], p["exit_condition"]
        blocked = ", ".join(p.get("blocked_use", ())) or "none"
        allowed = ", ".join(p.get("allowed_use", ())) or "none"
    else:  # a review with status quarantined blocks every use
        trigger = p.get("note") or f"review by {p['reviewer']}"
        exit_when, blocked, allowed = "a release citing evidence", "every use", "none"
    facts = (
        ("trigger", trigger),
        ("blocked uses", blocked),
        ("allowed uses", allowed),
        ("exit condition", exit_when),
        ("since", held.event.recorded_at),
        ("quarantine", str(held.digest)),
    )
    return _finding(
        "AU004", subject, f"quarantined since {held.event.recorded_at[:10]}: {trigger}", facts
    )


def _dataset_digests(ledger: LedgerCore, tally: Tally) -> tuple[set[str], dict[str, str]]:
    """Every dataset's digest, and the newest dataset of each name."""
    every: set[str] = set()
    newest: dict[str, str] = {}
    for entry in _entries(ledger, EventType.DATASET, tally):
        every.add(entry.digest)
        newest[entry.event.payload["name"]] = entry.digest
    return every, newest


def _builds(
    ledger: LedgerCore, tally: Tally, datasets: set[str], built_on: dict[str, None]
) -> Iterator[Finding]:
    for build in _entries(ledger, EventType.BUILD, tally):
        subject, p = Subject.of(build), build.event.payload
        dataset = p.get("dataset")
        if dataset is None:
            yield _finding("AU007", subject, "the build names no dataset")
        elif dataset not in datasets:
            yield _finding(
                "AU007", subject, f"the build's dataset {Digest(dataset).short} is not recorded"
            )
        else:
            built_on[dataset] = None
        if p.get("forced"):
            gate = tuple(
                (f"gate finding {i}", f) for i, f in enumerate(p.get("findings", ()), start=1)
            )
            yield _finding("AU011", subject, "the build was forced past a blocking gate", gate)
        digest = p.get("manifest_digest")
        if digest is None:
            yield _finding("AU008", subject, "the build recorded no frozen manifest")
            continue
        try:
            frozen(ledger, digest)
        except NotFoundError as exc:
            yield _finding("AU009", subject, exc.message)
        except IntegrityError as exc:
            yield _finding("AU010", subject, f"the frozen manifest {exc.message}")
        else:
            tally.builds_frozen += 1


def _datasets(
    ledger: LedgerCore, current: Mapping[str, None], rejected: Mapping[str, Subject]
) -> Iterator[Finding]:
    users: dict[str, list[str]] = {}
    for digest in current:
        entry = ledger.get(digest)
        subject = Subject.of(entry)
        try:
            manifest = from_ledger(ledger, entry)
            errors = [f for f in lint(manifest, ledger) if f.severity == "error"]
        except InputError as exc:
            yield _finding("AU006", subject, f"its manifest cannot be read: {exc.message}")
            continue
        if errors:
            facts: dict[str, list[str]] = {}
            for f in errors:
                facts.setdefault(f.rule, []).append(f.message)
            yield _finding(
                "AU006",
                subject,
                f"the manifest fails lint with {_counted(len(errors), 'error')}",
                tuple((rule, "; ".join(messages)) for rule, messages in facts.items()),
                hint=f"see `mlprov lint {entry.digest}` and fix each error",
            )
        for s in manifest.source_records:
            if s.event is not None and s.event in rejected:
                users.setdefault(s.event, []).append(str(subject))
    for source, names in users.items():
        yield _finding(
            "AU005",
            rejected[source],
            "the source was rejected, but " + ", ".join(names) + " still uses it",
            (("used by", ", ".join(names)),),
        )


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
