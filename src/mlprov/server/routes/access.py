"""Token management (admin): the same functions `mlprov tokens` calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from mlprov.server.auth import Caller, guarded
from mlprov.server.models import TokenBody, TokenCreated, TokenFacts
from mlprov.server.state import LedgerDep, ServerState, signing
from mlprov.server.tokens import Permission, create_token, list_tokens, revoke_token

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["admin"])
ADMIN = Permission.ADMIN


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.mlprov
    return state


@guarded(router, "GET", "/tokens", ADMIN, response_model=list[TokenFacts])
def tokens(request: Request) -> list[dict[str, Any]]:
    """Every token's facts (never a token, never a hash), oldest first."""
    return [t.to_json() for t in list_tokens(_state(request).store)]


@guarded(router, "POST", "/tokens", ADMIN, response_model=TokenCreated, status_code=201)
def create(ledger: LedgerDep, caller: Caller, body: TokenBody) -> dict[str, Any]:
    """Make a token; the answer holds it, this once. Only its SHA-256 is stored; the grant
    is recorded as an `access` event by the calling admin."""
    with signing(ledger):
        token, facts = create_token(ledger, body.name, body.role, body.expires, actor=caller.name)
    return {**facts.to_json(), "token": token}


@guarded(router, "DELETE", "/tokens/{name}", ADMIN, response_model=TokenFacts)
def revoke(
    ledger: LedgerDep, caller: Caller, name: Annotated[str, Path(min_length=1, max_length=100)]
) -> dict[str, Any]:
    """Revoke a token: refused from now on; its name stays taken. Recorded as an `access`
    event by the calling admin."""
    with signing(ledger):
        facts = revoke_token(ledger, name, actor=caller.name)
    return facts.to_json()
