"""Triage: the incident table for a dataset or build, answered from recorded evidence only.

The five questions of an incident ("why was my record in the training set of model X?"):

1. Did the final file change?  (the dataset's record set, and its file if one is named)
2. Was the source allowed?  (each source's review state and rights basis)
3. Did exclusion run?  (exclusion steps, the opt-out list version each used, and whether it
   is the newest recorded)
4. Who approved the manifest?  (the dataset's approval: its own review, else its sources')
5. Can the model build be explained?  (dataset, config, code version, artifact, eval set)

Every answer about reviews reads :func:`mlprov.answers.view.view`, as the postmortem and the
model card do, at build time (and says what changed since). Each answer is `yes`, `no`,
`partially` or `unknown`, with the evidence it rests on (event digests, whole: a reader
may shorten them for display, never the answer) and the risk it leaves. Where the ledger
holds no evidence the answer is `unknown` — never a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from mlprov.answers.view import LedgerView, view
from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.governance.approval import Reviewed
from mlprov.governance.gates import optout_lists
from mlprov.governance.lint import vague_rights_basis
from mlprov.governance.review import State
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = ["Answer", "Triage", "TriageRow", "triage"]

Answer = Literal["yes", "no", "partially", "unknown"]
_ALLOWED = (State.ACCEPTED, State.ACCEPTED_WITH_LIMITS)


@dataclass(frozen=True)
class TriageRow:
    question: str
    answer: Answer
    evidence: str
    risk: str

    def to_json(self) -> dict[str, str]:
        return {
            "question": self.question,
            "answer": self.answer,
            "evidence": self.evidence,
            "risk": self.risk,
        }


@dataclass(frozen=True)
class Triage:
    target: Entry
    dataset: Entry
    rows: tuple[TriageRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target.digest),
            "name": self.target.event.name,
            "type": self.target.event.type.value,
            "dataset": str(self.dataset.digest),
            "rows": [r.to_json() for r in self.rows],
        }


def triage(ledger: LedgerCore, ref: Entry | Digest | str) -> Triage:
    """The triage table of a build or dataset (by name or digest)."""
    v = view(ledger, ref)
    rows = (
        _file_changed(ledger, v.dataset),
        _sources_allowed(ledger, v),
        _exclusion_ran(ledger, v.dataset),
        _approved(v),
        _build_explained(ledger, v.target),
    )
    return Triage(v.target, v.dataset, rows)


def _file_changed(ledger: LedgerCore, dataset: Entry) -> TriageRow:
    q = "Did the final file change?"
    payload = dataset.event.payload
    uri, recorded_bytes = payload.get("uri"), payload.get("byte_digest")
    if uri and recorded_bytes:
        path = Path(uri)
        if path.is_file():
            now = digest_file(path)
            if now != recorded_bytes:
                return TriageRow(
                    q,
                    "yes",
                    f"{uri} is now {now}, recorded {Digest(recorded_bytes)}",
                    "byte drift: the file trained on is not the one recorded",
                )
    root = payload.get("record_root")
    if root is None:
        return TriageRow(q, "unknown", "no record set was recorded", "nothing to compare")
    try:
        held = ledger.record_set(Digest(root).hex)
    except NotFoundError:
        return TriageRow(q, "unknown", f"record set {Digest(root)} is not here", "cannot re-check")
    except (IntegrityError, InputError) as exc:  # altered, or no longer readable
        return TriageRow(q, "yes", exc.message, "the stored record set was altered")
    return TriageRow(
        q,
        "no",
        f"the stored record set still gives root {Digest(root)} ({held.size:,} records)",
        "byte identity is not the issue",
    )


def _sources_allowed(ledger: LedgerCore, v: LedgerView) -> TriageRow:
    q = "Was the source allowed?"
    if not v.sources:
        return TriageRow(q, "unknown", "no source recorded", "rights review missing")
    notes, answers = [], []
    for s in v.sources:
        if s.at_build is None or s.now is None:
            notes.append(f"{s.ref}: not recorded here")
            answers.append("unknown")
            continue
        note = f"{s.at_build.phrase()}{_when(v)}"
        if s.now.state != s.at_build.state:
            note += f" (now {s.now.state})"
        # An opt-out list is consulted, not trained on: it needs a review, not a rights basis.
        if not s.opt_out or s.rights_basis:
            note += f"; rights basis {s.rights_basis or 'none recorded'}"
        notes.append(note)
        state = State(s.at_build.state)
        if state in (State.QUARANTINED, State.REJECTED):
            answers.append("no")
        elif state not in _ALLOWED or (vague_rights_basis(s.rights_basis) and not s.opt_out):
            answers.append("unknown")
        else:
            answers.append("yes")
    answer: Answer = "no" if "no" in answers else "unknown" if "unknown" in answers else "yes"
    if answer == "no":
        risk = "a source is quarantined or rejected"
    elif answer == "unknown":
        risk = "rights review missing or vague"
    else:
        risk = _carried([r for s in v.sources if s.at_build for r in (s.at_build,)])
    return TriageRow(q, answer, "; ".join(notes), risk)


def _when(v: LedgerView) -> str:
    return " at build time" if v.build is not None else ""


def _carried(reviews: list[Reviewed]) -> str:
    """The risks and limits the reviews record, or `none recorded`."""
    risks = list(dict.fromkeys(x for r in reviews for x in r.risks))
    limits = list(dict.fromkeys(x for r in reviews for x in r.limits))
    parts = []
    if risks:
        parts.append("unresolved risks: " + ", ".join(risks))
    if limits:
        parts.append("limits: " + ", ".join(limits))
    return "; ".join(parts) or "none recorded"


def _steps(ledger: LedgerCore, dataset: Entry) -> Iterator[Entry]:
    for entry in ledger.trace(dataset.digest):
        if entry.event.type.value == "transform":
            yield entry


def _exclusion_ran(ledger: LedgerCore, dataset: Entry) -> TriageRow:
    q = "Did exclusion run?"
    newest = {e.event.payload["name"]: e for e in optout_lists(ledger)}
    ran, notes, stale, unshown = [], [], [], []
    for step in _steps(ledger, dataset):
        payload = step.event.payload
        lists = [u for u in payload.get("used", ()) if u.get("role") == "using"]
        if payload.get("kind") != "exclusion" or payload.get("status") != "succeeded" or not lists:
            continue  # a removal by mask (a dedupe) honours no opt-out list
        ran.append(step)
        for used in payload.get("used", ()):
            if used.get("role") != "using":
                continue
            label = str(used.get("name"))
            base = label.partition("@")[0]
            latest = newest.get(base)
            current = latest is None or latest.digest == used["event"]
            if not current:
                assert latest is not None
                stale.append(f"{label} (newest: {latest.event.name})")
            removed = payload.get("counts", {}).get("removed", "?")
            written = payload.get("recorded_from") == "manifest"
            if written and "changes" not in payload:
                unshown.append(str(payload["name"]))
            notes.append(
                f"{payload['name']} (step {payload.get('step', '?')}, event "
                f"{step.digest}) removed {removed} using {label}"
                + ("" if current else " — an older version")
                + (" — described by a hand-written manifest" if written else "")
            )
    if not ran:
        if newest:
            names = ", ".join(e.event.name or "?" for e in newest.values())
            return TriageRow(
                q,
                "no",
                f"no exclusion step in the dataset's history; opt-out lists recorded: {names}",
                "opted-out records may be in",
            )
        return TriageRow(
            q,
            "unknown",
            "no exclusion step and no opt-out list recorded",
            "opt-out process may be absent",
        )
    if stale:
        return TriageRow(
            q, "partially", "; ".join(notes), "used an older opt-out list: " + ", ".join(stale)
        )
    if unshown:
        return TriageRow(
            q,
            "partially",
            "; ".join(notes),
            f"which records {', '.join(unshown)} removed is not shown by any file: give its "
            "removed_keys file in the manifest and record it again",
        )
    return TriageRow(q, "yes", "; ".join(notes), "none recorded")


def _approved(v: LedgerView) -> TriageRow:
    q = "Who approved the manifest?"
    a = v.approval
    label = names.label(v.dataset)
    if a.basis == "none":
        return TriageRow(
            q, "unknown", f"{label}: never reviewed, nor its sources", "reviewer status missing"
        )
    reviews = "; ".join(r.phrase() + (f" (review {r.review})" if r.review else "") for r in a.by)
    now = "" if v.approval_now.status == a.status else f"; now {v.approval_now.status}"
    when = _when(v)
    if a.basis == "sources":
        return TriageRow(
            q,
            "partially" if State(a.status) in _ALLOWED else _unapproved(a.status),
            f"{label} was never reviewed itself; its reviewer status{when} is {a.status}, "
            f"from its sources' reviews: {reviews}{now}",
            _RISK.get(a.status, "the dataset itself was never reviewed")
            + ("" if _carried(list(a.by)) == "none recorded" else "; " + _carried(list(a.by))),
        )
    answer: Answer = "yes" if State(a.status) in _ALLOWED else _unapproved(a.status)
    own = a.by[0]
    review = f" (review {own.review})" if own.review else ""
    return TriageRow(
        q,
        answer,
        f"{own.reviewer or 'no named reviewer'}: {a.status}{when}{review}{now}",
        _carried(list(a.by)) if answer == "yes" else _RISK.get(a.status, a.status),
    )


_RISK = {State.NEVER_REVIEWED.value: "reviewer status missing"}


def _unapproved(status: str) -> Answer:
    """Not approved: `unknown` when nobody judged it, `no` when a judgement refused it."""
    return "unknown" if status == State.NEVER_REVIEWED.value else "no"


def _build_explained(ledger: LedgerCore, target: Entry) -> TriageRow:
    q = "Can the model build be explained?"
    if target.event.type.value != "build":
        builds = [e for e in ledger.children(target.digest) if e.event.type.value == "build"]
        if not builds:
            return TriageRow(
                q, "unknown", "no build recorded on this dataset", "cannot link a model to it"
            )
        target = builds[-1]
    payload = target.event.payload
    wanted = {
        "dataset": "dataset",
        "config_digest": "training config",
        "code_version": "code version",
        "artifact_digest": "artifact digest",
        "eval_set": "eval set",
    }
    missing = [label for key, label in wanted.items() if not payload.get(key)]
    shown = dict(payload)
    for key, link in (("dataset", "dataset"), ("eval_set", "eval_event")):
        if event := payload.get(link):  # a dataset or eval set as NAME@VERSION and its exact event
            shown[key] = f"{names.label(ledger.get(event))} ({event})"
    have = [f"{label} {_value(shown[key])}" for key, label in wanted.items() if payload.get(key)]
    caveats = []
    if payload.get("code_dirty"):
        caveats.append("the code had uncommitted changes")
    if payload.get("forced"):
        caveats.append("a blocking gate was overridden: " + "; ".join(payload.get("findings", ())))
    evidence = f"build {target.event.name} ({target.digest}): " + ", ".join(have)
    if missing:
        return TriageRow(
            q,
            "partially",
            evidence,
            "missing: " + ", ".join(missing) + ("; " + "; ".join(caveats) if caveats else ""),
        )
    if caveats:
        return TriageRow(q, "partially", evidence, "; ".join(caveats))
    return TriageRow(q, "yes", evidence, "none recorded")


def _value(value: Any) -> str:
    """A value as it reads: text as it is, anything else as JSON (never a Python repr);
    digests whole, for the reader to shorten on display."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()
