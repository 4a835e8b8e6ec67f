"""The recording routes. Every event is recorded under the calling token's name, and a
checkpoint covering it is signed before the answer, as the recording commands do; a
refused request records nothing.

`POST /events` takes one event to make (`mlprov record`) or a list of events made by a
served ledger on another machine (ADR 0019): recorded as sent, atomically, each checked
against its type, its actor the token's name, every file it names held by the server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from mlprov.digest import Digest, canonical_json
from mlprov.errors import ConflictError, InputError, IntegrityError
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_release, record_review
from mlprov.governance.signoff import reviewer_signer
from mlprov.ledger.blobrefs import by_bytes, named_blobs
from mlprov.ledger.events import Event
from mlprov.server.auth import Caller, guarded
from mlprov.server.models import EventBody, QuarantineBody, ReleaseBody, ReviewBody
from mlprov.server.state import LedgerDep, signing
from mlprov.server.tokens import Permission, Token

__all__ = ["MAX_BATCH", "SentEvent", "router"]

router = APIRouter(prefix="/api/v1")
Json = dict[str, Any]
#: The most events one request records.
MAX_BATCH = 5000


class SentEvent(BaseModel):
    """An event as made on another machine: its exact JSON (`Event.to_json`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["source", "transform", "dataset", "build", "evaluation", "prediction", "run"]
    schema_version: int
    payload: dict[str, Any]
    parents: list[str] = Field(max_length=1000)
    actor: str = Field(min_length=1, max_length=200)
    recorded_at: str = Field(min_length=1, max_length=40)


Batch = Annotated[list[SentEvent], Field(min_length=1, max_length=MAX_BATCH)]


def _made(sent: SentEvent, place: str, caller: Token) -> Event:
    """The event `sent` describes, checked: its payload against its type, its bytes as
    sent, its actor the token's name."""
    if sent.actor != caller.name:
        raise InputError(
            f"{place} is by {sent.actor}, but the token is {caller.name}'s",
            "the server records an event under its token's name: leave the actor out "
            "(a served ledger fills it in) or give that name",
        )
    event = Event.create(
        sent.type,
        sent.payload,
        actor=sent.actor,
        parents=[Digest(p) for p in sent.parents],
        recorded_at=sent.recorded_at,
    )
    if event.encode() != canonical_json(sent.model_dump()):
        raise InputError(
            f"{place} is not in its canonical form (fields left empty, or another schema version)",
            "send the event as Event.to_json() gives it",
        )
    return event


def check_blobs(ledger: Ledger, events: Sequence[Event]) -> None:
    """Refuse a batch naming a file the server does not hold (ConflictError, 409), or one
    that no longer matches its name (IntegrityError)."""
    for i, event in enumerate(events, 1):
        for name in named_blobs(event):
            path = ledger.blobs_dir / name
            if not path.is_file():
                raise ConflictError(
                    f"event {i} of the batch names {name}, which the server does not hold; "
                    "nothing was recorded",
                    "send the file first with PUT /api/v1/blobs/NAME, then the event; a "
                    "ledger opened with mlprov.open(URL) does both",
                )
            if by_bytes(name) and Digest.of_bytes(path.read_bytes()).hex != name[:64]:
                raise IntegrityError(
                    f"the server's {name} does not match its name",
                    "the file was altered on the server; restore it from a trusted copy",
                )


@guarded(
    router,
    "POST",
    "/events",
    Permission.RECORD,
    response_model=Json | list[Json],
    status_code=201,
    tags=["record"],
)
def record(
    ledger: LedgerDep,
    caller: Caller,
    body: Annotated[EventBody | Batch, Body()],
) -> Json | list[Json]:
    """`mlprov record TYPE --payload JSON --parent D...`: one event, its payload checked
    against its type; or a list of events made elsewhere, recorded as sent, all or none.
    Reviews, quarantines and releases go through their own routes."""
    if isinstance(body, list):
        events = [_made(s, f"event {i} of the batch", caller) for i, s in enumerate(body, 1)]
        check_blobs(ledger, events)
        with signing(ledger):
            entries = ledger.append_many(events)
        return [e.to_json() for e in entries]
    with signing(ledger):
        parents = [ledger.resolve(p) for p in body.parents]
        event = Event.create(body.type, body.payload, actor=caller.name, parents=parents)
        check_blobs(ledger, [event])
        entry = ledger.append(event)
    return entry.to_json()


@guarded(
    router,
    "POST",
    "/reviews",
    Permission.REVIEW,
    response_model=Json,
    status_code=201,
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
    router,
    "POST",
    "/quarantines",
    Permission.REVIEW,
    response_model=Json,
    status_code=201,
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
    router,
    "POST",
    "/releases",
    Permission.REVIEW,
    response_model=Json,
    status_code=201,
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
    router,
    "POST",
    "/checkpoints",
    Permission.ADMIN,
    response_model=Json,
    status_code=201,
    tags=["admin"],
)
def checkpoint(ledger: LedgerDep) -> Json:
    """`mlprov checkpoint --json`: sign the current tree head with the ledger's key."""
    return ledger.checkpoint().to_json()
