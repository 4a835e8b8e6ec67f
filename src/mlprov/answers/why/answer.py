"""The answer to "why was this record (or this person's record) in model X's training set?".

:func:`why` finds the build's dataset and its record set, proves the record or subject in
or out of it (membership or non-membership proofs against the set root, checkable by a
third party with `mlprov check-proof`; for a key or subject, a pair proof of each record
that carries it, against the pairs root of the dataset or source event that names one,
ADR 0020), finds the record in its sources, follows it
through every step (see :mod:`mlprov.answers.why.trails`), and, for a record that reached the
dataset, names the causes the ledger shows (see :mod:`mlprov.answers.why.causes`): a stale opt-out
list, a step that ran before the list was loaded, a column an earlier step rewrote, no
exclusion at all, a near-duplicate kept in its place, or a source quarantined, rejected or
never reviewed at build time. It also lists the other builds whose training set holds it.
Evidence the ledger lacks is listed as missing, never filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from mlprov.answers.why.causes import Cause, Lists, causes_of, gate_causes, review_causes
from mlprov.answers.why.trails import (
    History,
    Row,
    Trail,
    rows_where,
    rows_where_any,
    unique,
    walk,
)
from mlprov.capture.build import trained_on
from mlprov.digest import Digest, shorten
from mlprov.errors import InputError
from mlprov.governance.review import ReviewState, status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.names import label
from mlprov.ledger.payloads import trained_dataset
from mlprov.records.pairs import PairProof
from mlprov.records.setproofs import MembershipProof, NonMembershipProof
from mlprov.records.setviews import SetView

__all__ = ["Answer", "Link", "Proof", "Query", "SourceState", "why"]

Kind = Literal["subject", "key", "record", "digest"]


@dataclass(frozen=True)
class Query:
    kind: Kind
    shown: str  # what the answer calls it: a subject only by its keyed hash
    digest: bytes | None = None  # record digest, or the subject's keyed hash
    key: str | None = None


@dataclass(frozen=True)
class Proof:
    about: str
    proof: MembershipProof | NonMembershipProof

    @property
    def present(self) -> bool:
        return isinstance(self.proof, MembershipProof)

    def to_json(self) -> dict[str, Any]:
        return {"about": self.about, "in": self.present, "proof": orjson.loads(self.proof.dumps())}


@dataclass(frozen=True)
class Link:
    """A proven link from the key or subject asked about to a record of a set: a pair
    proof against the pairs root of the event that recorded the set (ADR 0020)."""

    about: str
    event: Entry  # the source or dataset whose pairs root the proof is checked against
    proof: PairProof

    def to_json(self) -> dict[str, Any]:
        return {
            "about": self.about,
            "event": str(self.event.digest),
            "pairs_root": str(self.event.event.payload["pairs_root"]),
            "proof": orjson.loads(self.proof.dumps()),
        }


@dataclass(frozen=True)
class SourceState:
    """A source on a trail: its facts, and its review state when the build was recorded."""

    entry: Entry
    at_build: ReviewState

    def to_json(self) -> dict[str, Any]:
        p = self.entry.event.payload
        review = self.at_build.review
        return {
            "source": self.entry.event.name,
            "event": str(self.entry.digest),
            "rights_basis": p.get("rights_basis"),
            "license": p.get("license"),
            "status_at_build": self.at_build.state.value,
            "reviewer": review.event.payload["reviewer"] if review else None,
            "limits": list(self.at_build.limits),
            "risks": list(self.at_build.risks),
        }


@dataclass(frozen=True)
class Answer:
    build: Entry | None
    dataset: Entry
    query: Query
    present: bool | None  # None: the dataset's record set is not here to say
    proofs: tuple[Proof, ...]
    trails: tuple[Trail, ...]
    sources: dict[Digest, SourceState]
    causes: tuple[Cause, ...]
    other_builds: tuple[tuple[Entry, bool | None], ...]
    missing: tuple[str, ...] = field(default=())
    links: tuple[Link, ...] = field(default=())

    @property
    def manifest_digest(self) -> str | None:
        if self.build is None:
            return None
        value = self.build.event.payload.get("manifest_digest")
        return str(value) if value else None


def _query(
    ledger: LedgerCore, subject: str | None, key: str | None, record: Any, digest: str | None
) -> Query:
    given = [x is not None for x in (subject, key, record, digest)]
    if sum(given) != 1:
        raise InputError(
            "give exactly one of subject, key, record or digest",
            "ask about a person (--subject), or one record (--key, --record or --digest)",
        )
    if subject is not None:
        hashed = ledger.subject_hasher().hash(subject)
        return Query("subject", f"subject {shorten(hashed, 16)} (keyed hash)", hashed)
    if key is not None:
        return Query("key", f"key {key}", key=str(key))
    if record is not None:
        from mlprov.records.canonical import record_digest

        value = orjson.loads(record) if isinstance(record, str | bytes) else record
        if not isinstance(value, dict):
            raise InputError("the record must be a JSON object (one row)")
        d = record_digest(value)
        return Query("record", f"record {shorten(d, 16)}", d)
    assert digest is not None
    raw = Digest.parse(digest).raw
    return Query("digest", f"record {shorten(raw, 16)}", raw)


def _matches(records: SetView, query: Query) -> list[Row]:
    if query.kind == "subject":
        return rows_where(records, "subject", query.digest)
    if query.kind == "key":
        return rows_where(records, "key", query.key)
    return rows_where(records, "digest", query.digest)


def _origins(history: History, query: Query, final: list[Row]) -> list[tuple[Entry, Row]]:
    """The source rows the query names, and those the dataset's matching rows came from."""
    found: list[tuple[Entry, Row]] = []
    keys = {r.key for r in final if r.key is not None}
    for source in history.trained_sources:
        records = history.record_set(source)
        if records is None:
            continue
        found += [(source, r) for r in _matches(records, query)]
        by_key = rows_where_any(records, "key", sorted(keys)) if keys else []
        for key in sorted(keys):  # one look at the keys, for all of them
            found += [(source, r) for r in by_key if r.key == key]
    return unique(found)


def _proofs(records: SetView, query: Query, trails: list[Trail], final: list[Row]) -> list[Proof]:
    if query.kind == "subject":
        assert query.digest is not None
        return [Proof(query.shown, records.prove_subject(query.digest))]
    digests = dict.fromkeys(
        [r.digest for r in final]
        + [t.digest for t in trails]
        + ([query.digest] if query.digest is not None else [])
    )
    return [Proof(f"record {shorten(d, 16)}", records.prove(d)) for d in digests]


def _links(
    query: Query, sets: list[tuple[Entry, SetView | None, list[Row]]], missing: list[str]
) -> list[Link]:
    """Pair proofs of each row that carries the key, or names the subject, asked about,
    for the sets whose events name a pairs root (ledgers before ADR 0020 name none)."""
    links: list[Link] = []
    if query.kind not in ("key", "subject"):
        return links
    for entry, records, rows in sets:
        root = entry.event.payload.get("pairs_root")
        if records is None or not root:
            continue
        for row in dict.fromkeys(rows):
            other: str | bytes | None = query.key if query.kind == "key" else query.digest
            if other is None or other != (row.key if query.kind == "key" else row.subject):
                continue
            kind: Literal["key", "subject"] = "key" if query.kind == "key" else "subject"
            proof = records.prove_pair(kind, row.digest, other, Digest(root).raw)
            about = f"record {shorten(row.digest, 16)} in {label(entry)}"
            if proof is None:
                missing.append(
                    f"the link from the {query.shown} to {about} is the set file's word: "
                    "its rows of that shard are not those the pairs root commits"
                )
                continue
            links.append(Link(about, entry, proof))
    return links


def _others(
    ledger: LedgerCore, history: History, build: Entry | None, query: Query, digests: list[bytes]
) -> list[tuple[Entry, bool | None]]:
    found: list[tuple[Entry, bool | None]] = []
    for other in ledger.entries(type="build"):
        if build is not None and other.digest == build.digest:
            continue
        link = trained_dataset(other.event.payload)
        if link is None:
            continue
        records = history.record_set(ledger.get(link))
        if records is None:
            found.append((other, None))
        elif query.kind == "subject":
            assert query.digest is not None
            found.append((other, records.has_subject(query.digest)))
        else:
            found.append((other, any(d in records for d in digests)))
    return found


def _kept_instead(trail: Trail, records: SetView | None) -> tuple[list[Cause], list[Proof]]:
    """A record removed as a duplicate whose kept twin is in the set: the content lives on
    (the cause, and a membership proof of each twin)."""
    removed = trail.removed_by
    if removed is None or removed.duplicate_of is None or records is None:
        return [], []
    twins = rows_where(records, "key", removed.duplicate_of)
    if not twins:
        return [], []
    proofs = [
        Proof(f"record {shorten(t.digest, 16)} (key {t.key})", records.prove(t.digest))
        for t in twins
    ]
    who = "does not name this subject" if twins[0].subject != trail.subject else "names it"
    cause = Cause(
        "duplicate-kept",
        f"{removed.label} removed key {trail.key} as a duplicate of key "
        f"{removed.duplicate_of}, and key {removed.duplicate_of} is in the training set: "
        f"the content lives on in a record that {who}",
        (removed.step.digest,),
    )
    return [cause], proofs


def why(
    ledger: LedgerCore,
    target: Entry | Digest | str,
    *,
    subject: str | None = None,
    key: str | None = None,
    record: Any = None,
    digest: str | None = None,
) -> Answer:
    """Answer for a build (or a dataset): is the record or subject in its training set, how
    did it get there or where was it removed, and why (see the module doc)."""
    query = _query(ledger, subject, key, record, digest)
    build, dataset = trained_on(ledger, target)
    history = History(ledger, dataset)
    records = history.record_set(dataset)
    final = _matches(records, query) if records is not None else []
    origins = _origins(history, query, final)
    history.expect([r.key for _, r in origins], [r.digest for _, r in origins])
    trails = [walk(history, s, r) for s, r in origins]
    proofs = _proofs(records, query, trails, final) if records is not None else []
    present: bool | None
    if records is None:
        present = None
    elif query.kind == "subject" and records.size and not records.subject_count:
        present, proofs = None, []  # a set that names no subject cannot say whether it does
        history.missing.append(
            "the training set records no subjects (its pipeline named no subject column): "
            "whether it holds this person's records cannot be told"
        )
    elif query.kind == "subject":
        present = proofs[0].present
    else:
        present = bool(final) or any(p.present for p in proofs)
        if query.kind == "key" and not final:
            history.missing.append(
                "keys are kept beside the set, not committed to by its root: that no record "
                "has this key cannot be proven (ask by --record or --subject for a proof)"
            )
    as_of = build.seq if build is not None else dataset.seq
    sources = {
        t.source.digest: SourceState(t.source, status_of(ledger, t.source, as_of=as_of))
        for t in trails
    }
    lists = Lists(history)
    causes: list[Cause] = []
    for state in sources.values():
        causes += review_causes(state.entry, state.at_build)
    member = {r.digest for r in final}
    for trail in trails:
        if trail.removed_by is None and (trail.digest in member or records is None):
            subject_hash = query.digest if query.kind == "subject" else trail.subject
            causes += causes_of(trail, lists, subject_hash)
    for trail in trails:
        kept, twins = _kept_instead(trail, records)
        causes += kept
        proofs += twins
    if build is not None and present:
        causes += gate_causes(build)
    if not trails:
        history.missing.append(
            "the record was found in none of the dataset's source record sets"
            if history.sources
            else "the dataset's history records no source"
        )
    per_source: dict[Digest, tuple[Entry, list[Row]]] = {}
    for source, row in origins:
        per_source.setdefault(source.digest, (source, []))[1].append(row)
    sets = [(dataset, records, final)] + [
        (source, history.record_set(source), rows) for source, rows in per_source.values()
    ]
    links = _links(query, sets, history.missing)
    digests = list(dict.fromkeys([r.digest for r in final] + [t.digest for t in trails]))
    return Answer(
        build=build,
        dataset=dataset,
        query=query,
        present=present,
        proofs=tuple(proofs),
        trails=tuple(trails),
        sources=sources,
        causes=tuple(dict.fromkeys(causes)),
        other_builds=tuple(_others(ledger, history, build, query, digests)),
        missing=tuple(history.missing),
        links=tuple(links),
    )
