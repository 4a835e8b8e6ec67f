"""The reading routes: each calls the library function its command calls, and answers
the JSON that command's `--json` prints, so the server and the command line agree."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from mlprov.answers.audit import audit as run_audit
from mlprov.answers.explain import explain as run_explain
from mlprov.answers.triage import triage as run_triage
from mlprov.answers.why import to_json as why_json
from mlprov.answers.why import why as run_why
from mlprov.errors import InputError
from mlprov.governance.review import status_of
from mlprov.governance.signoff import check_review
from mlprov.ledger.events import Entry
from mlprov.ledger.names import find
from mlprov.ledger.payloads import EventType
from mlprov.server.auth import Caller, guarded
from mlprov.server.models import Health, TokenFacts, WhyBody
from mlprov.server.state import LedgerDep
from mlprov.server.tokens import Permission

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["read"])
READ = Permission.READ

RefPath = Annotated[
    str, Path(min_length=1, max_length=500, description="NAME, NAME@VERSION, or a digest")
]
RefQuery = Annotated[
    str, Query(min_length=1, max_length=500, description="NAME, NAME@VERSION, or a digest")
]
Json = dict[str, Any]


def _shown(ledger: LedgerDep, entry: Entry, note: str | None = None) -> Json:
    """An event as `mlprov show --json` prints it (and which version a bare NAME took)."""
    shown = {**entry.to_json(), "children": [str(c.digest) for c in ledger.children(entry.digest)]}
    return {**shown, "note": note} if note else shown


@guarded(router, "GET", "/health", Permission.PUBLIC, response_model=Health, tags=["public"])
def health(ledger: LedgerDep) -> Health:
    """Whether the server can read its store; the one route that needs no token."""
    ledger.size  # noqa: B018 - a read of the store, refused (503) when it cannot be used
    return Health(status="ok")


@guarded(router, "GET", "/whoami", READ, response_model=TokenFacts)
def whoami(caller: Caller) -> Json:
    """The calling token's name (the actor of what it records), role and permissions."""
    return caller.to_json()


@guarded(router, "GET", "/ledger", READ, response_model=Json)
def ledger_facts(ledger: LedgerDep) -> Json:
    """The ledger's origin (the name its checkpoints are signed for), id and size: what a
    ledger opened with `mlprov.open(URL)` reads first."""
    return {"origin": ledger.origin, "ledger_id": ledger.ledger_id, "size": ledger.size}


@guarded(router, "GET", "/events", READ, response_model=list[Json])
def events(
    ledger: LedgerDep,
    type: Annotated[str | None, Query(description="Only this event type.")] = None,
    name: Annotated[str | None, Query(max_length=500)] = None,
    since: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
    until: Annotated[str | None, Query(max_length=64, description="RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    oldest_first: bool = False,
) -> list[Json]:
    """Recorded events, newest first, as `mlprov log --json`."""
    if type is not None and type not in {t.value for t in EventType}:
        raise InputError(f"unknown event type {type!r}", "use one of " + ", ".join(EventType))
    found = ledger.entries(
        type=type, name=name, since=since, until=until, limit=limit, newest_first=not oldest_first
    )
    return [e.to_json() for e in found]


@guarded(router, "GET", "/events/{digest}", READ, response_model=Json)
def event(
    ledger: LedgerDep,
    digest: Annotated[str, Path(min_length=1, max_length=80, description="A digest or prefix")],
) -> Json:
    """One event with its parents and children, as `mlprov show --json`."""
    return _shown(ledger, ledger.get(digest))


def _named(kind: str) -> Any:
    def read(ledger: LedgerDep, ref: RefPath) -> Json:
        found = find(ledger, ref, (kind,))
        return _shown(ledger, found.entry, found.note)

    read.__doc__ = f"A {kind} by NAME, NAME@VERSION or digest, as `mlprov show --json`."
    read.__name__ = f"{kind}_by_ref"
    return read


for _kind in ("source", "dataset", "build"):
    guarded(router, "GET", f"/{_kind}s/{{ref:path}}", READ, response_model=Json)(_named(_kind))


@guarded(router, "POST", "/why", READ, response_model=Json)
def why(ledger: LedgerDep, body: WhyBody) -> Json:
    """`mlprov why --json`: in or out with its proofs, the path, the cause, the gaps. A
    POST, so a person's identity never appears in a URL or an access log."""
    answer = run_why(
        ledger,
        body.model,
        subject=body.subject,
        key=body.key,
        record=body.record,
        digest=body.digest,
    )
    return why_json(answer)


@guarded(router, "GET", "/triage", READ, response_model=Json)
def triage(ledger: LedgerDep, target: RefQuery) -> Json:
    """`mlprov triage TARGET --json`: the incident triage of a build or dataset."""
    return run_triage(ledger, target).to_json()


@guarded(router, "GET", "/explain", READ, response_model=Json)
def explain(ledger: LedgerDep, build: RefQuery) -> Json:
    """`mlprov explain BUILD --json`: the postmortem sentence of a build."""
    return run_explain(ledger, build).to_json()


@guarded(router, "GET", "/status", READ, response_model=Json)
def status(ledger: LedgerDep, target: RefQuery) -> Json:
    """`mlprov status TARGET --json`: the review state of a source or dataset."""
    state = status_of(ledger, find(ledger, target, ("source", "dataset")).entry)
    signature = check_review(state.review, ledger.trusted_keys()) if state.review else None
    return {**state.to_json(), "signature": signature.to_json() if signature else None}


@guarded(router, "GET", "/audit", READ, response_model=Json)
def audit(ledger: LedgerDep) -> Json:
    """`mlprov audit --json`: the completeness of the whole ledger."""
    return run_audit(ledger).to_json()


@guarded(router, "GET", "/verify", READ, response_model=Json)
def verify(ledger: LedgerDep) -> Json:
    """`mlprov verify --json`, with the newest stored checkpoint."""
    report = ledger.verify()
    stored = ledger.checkpoints()
    return {**report.to_json(), "checkpoint": stored[-1].to_json() if stored else None}


@guarded(router, "GET", "/checkpoints", READ, response_model=list[Json])
def checkpoints(ledger: LedgerDep) -> list[Json]:
    """`mlprov checkpoint --list --json`: the stored checkpoints, oldest first."""
    return [c.to_json() for c in ledger.checkpoints()]
