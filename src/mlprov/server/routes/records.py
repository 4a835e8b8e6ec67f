"""The recording routes. Every event is recorded under the calling token's name, and a
checkpoint covering it is signed before the answer, as the recording commands do; a
refused request records nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mlprov.governance.review import record_quarantine, record_release, record_review
from mlprov.governance.signoff import reviewer_signer
from mlprov.ledger.events import Event
from mlprov.server.auth import Caller, guarded
from mlprov.server.models import EventBody, QuarantineBody, ReleaseBody, ReviewBody
from mlprov.server.state import LedgerDep, signing
from mlprov.server.tokens import Permission

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
Json = dict[str, Any]


@guarded(
    router, "POST", "/events", Permission.RECORD, response_model=Json, status_code=201,
    tags=["record"],
)
def record(ledger: LedgerDep, caller: Caller, body: EventBody) -> Json:
    """`mlprov record TYPE --payload JSON --parent D...`: one event, its payload checked
    against its type. Reviews, quarantines and releases go through their own routes."""
    with signing(ledger):
        parents = [ledger.resolve(p) for p in body.parents]
        event = Event.create(body.type, body.payload, actor=caller.name, parents=parents)
        entry = ledger.append(event)
    return entry.to_json()


@guarded(
    router, "POST", "/reviews", Permission.REVIEW, response_model=Json, status_code=201,
    tags=["review"],
)
def review(ledger: LedgerDep, caller: Caller, body: ReviewBody) -> Json:
    """`mlprov review`: the token's name is the reviewer; the review is signed with the
    key of that name in the ledger's keys folder when the server holds one."""
    with signing(ledger):
        entry = record_review(
            ledger,
            body.target,
            body.status,
            caller.name,
            limits=body.limits,
            risks=body.risks,
            note=body.note,
            signer=reviewer_signer(ledger, caller.name),
            actor=caller.name,
            separate_duties=body.separate_duties,
        )
    return entry.to_json()


@guarded(
    router, "POST", "/quarantines", Permission.REVIEW, response_model=Json, status_code=201,
    tags=["review"],
)
def quarantine(ledger: LedgerDep, caller: Caller, body: QuarantineBody) -> Json:
    """`mlprov quarantine`: every use but the allowed ones is blocked until a release."""
    with signing(ledger):
        entry = record_quarantine(
            ledger,
            body.source,
            body.trigger,
            body.exit_condition,
            blocked_use=body.blocked_use,
            allowed_use=body.allowed_use,
            actor=caller.name,
        )
    return entry.to_json()


@guarded(
    router, "POST", "/releases", Permission.REVIEW, response_model=Json, status_code=201,
    tags=["review"],
)
def release(ledger: LedgerDep, caller: Caller, body: ReleaseBody) -> Json:
    """`mlprov release`: lift a quarantine, citing evidence recorded after it."""
    with signing(ledger):
        entry = record_release(
            ledger, body.source, body.evidence, note=body.note, actor=caller.name
        )
    return entry.to_json()


@guarded(
    router, "POST", "/checkpoints", Permission.ADMIN, response_model=Json, status_code=201,
    tags=["admin"],
)
def checkpoint(ledger: LedgerDep) -> Json:
    """`mlprov checkpoint --json`: sign the current tree head with the ledger's key."""
    return ledger.checkpoint().to_json()
