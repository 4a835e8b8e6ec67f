"""Tokens and roles of `mlprov serve` (ADR 0015).

A token is `mlp_` and 43 characters of URL-safe base64 (256 random bits). It is shown
once, when made; the store keeps only its SHA-256, which is enough to recognise it and
useless for making one. Each token has a name, which is the actor of every event its
holder records through the server, and one role:

    role       may                                             permission
    reader     read everything but secrets                     read
    recorder   read; record events (sources, steps, ...)       read, record
    reviewer   read; record reviews, quarantines, releases     read, review
    admin      read; manage tokens, sign checkpoints           read, admin

This module needs no web framework: `mlprov tokens` uses it without the server extra.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from mlprov.errors import InputError
from mlprov.identity import default_actor
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import parse_time, utc_now
from mlprov.store.sql import SqlStore
from mlprov.store.tokens import TokenRow, TokenTable
from mlprov.validation import check_token_name

__all__ = [
    "PERMISSIONS",
    "RECHECK_SECONDS",
    "Permission",
    "RecentTokens",
    "Role",
    "Token",
    "TokenLookup",
    "authenticate",
    "create_token",
    "list_tokens",
    "parse_expiry",
    "revoke_token",
]

PREFIX = "mlp_"
_TOKEN_RE = re.compile(r"mlp_[A-Za-z0-9_-]{43}")
_DURATION_RE = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
#: How long a server trusts a token it has read from the store (a revocation's delay).
RECHECK_SECONDS = 1.0


class Role(StrEnum):
    READER = "reader"
    RECORDER = "recorder"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Permission(StrEnum):
    """What a route needs; `public` is the health route's alone."""

    PUBLIC = "public"
    READ = "read"
    RECORD = "record"
    REVIEW = "review"
    ADMIN = "admin"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.READER: frozenset({Permission.READ}),
    Role.RECORDER: frozenset({Permission.READ, Permission.RECORD}),
    Role.REVIEWER: frozenset({Permission.READ, Permission.REVIEW}),
    Role.ADMIN: frozenset({Permission.READ, Permission.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Token:
    """A token's facts, as shown by `tokens list`: never the token, never its hash."""

    name: str
    role: Role
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, row: TokenRow) -> Token:
        return cls(row.name, Role(row.role), row.created_at, row.expires_at, row.revoked_at)

    def state(self, now: str | None = None) -> str:
        """`active`, `revoked` or `expired` (at `now`, default the current time)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utc_now()):
            return "expired"
        return "active"

    def allows(self, permission: Permission) -> bool:
        return permission is Permission.PUBLIC or permission in PERMISSIONS[self.role]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "permissions": sorted(p.value for p in PERMISSIONS[self.role]),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "state": self.state(),
        }


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def check_role(role: object) -> Role:
    try:
        return Role(str(role))
    except ValueError:
        raise InputError(
            f"{role!r} is not a role", "use one of " + ", ".join(r.value for r in Role)
        ) from None


def parse_expiry(text: str, now: datetime | None = None) -> str:
    """When a token given `--expires TEXT` expires: a duration from now (`90m`, `12h`,
    `30d`) or a time (`2026-12-31`, RFC 3339). A time already past is refused."""
    start = now or datetime.now(UTC)
    found = _DURATION_RE.fullmatch(text.strip())
    if found:
        span = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        if not span:
            raise InputError("an expiry of zero makes a token that never works", "use e.g. 30d")
        return (start + span).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        when = parse_time(text)
    except InputError:
        raise InputError(
            f"{text!r} is neither a duration nor a time",
            "use a duration such as 90m, 12h or 30d, or a time such as 2026-12-31",
        ) from None
    if when <= start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"):
        raise InputError(f"the expiry {text!r} is already past", "give a time in the future")
    return when


def _record(ledger: LedgerCore, token: Token, action: str, actor: str | None) -> None:
    payload = {
        "token": token.name,
        "action": action,
        "role": token.role.value,
        "expires_at": token.expires_at,
    }
    ledger.record("access", payload, actor=actor or default_actor())


def create_token(
    ledger: LedgerCore,
    name: str,
    role: str,
    expires: str | None = None,
    *,
    actor: str | None = None,
) -> tuple[str, Token]:
    """Make a token: the token itself (shown once, never stored) and its facts. The grant
    is recorded as an `access` event by `actor` (its name, role and expiry; no secret)."""
    name = check_token_name(name)
    chosen = check_role(role)
    expires_at = parse_expiry(expires) if expires else None
    token = PREFIX + secrets.token_urlsafe(32)
    row = TokenRow(name, chosen.value, _hash(token), utc_now(), expires_at)
    table = TokenTable(ledger.store)
    table.add(row)  # refuses a name taken, before anything is recorded
    try:
        _record(ledger, Token.of(row), "granted", actor)
    except BaseException:
        table.discard(name)  # no token without the event that grants it
        raise
    return token, Token.of(row)


def list_tokens(store: SqlStore) -> list[Token]:
    return [Token.of(r) for r in TokenTable(store).rows()]


def revoke_token(ledger: LedgerCore, name: str, *, actor: str | None = None) -> Token:
    """Refuse a token from now on (its row, and its name, are kept); the revocation is
    recorded as an `access` event by `actor` (a second revocation records nothing)."""
    at = utc_now()
    token = Token.of(TokenTable(ledger.store).revoke(check_token_name(name), at))
    if token.revoked_at == at:  # this call revoked it
        _record(ledger, token, "revoked", actor)
    return token


class TokenLookup(Protocol):
    def by_hash(self, hashed: bytes) -> TokenRow | None: ...


class RecentTokens:
    """The access list as a server reads it: a token found in the store is remembered for
    `ttl` seconds, so most requests are checked without reading the store.

    A revocation recorded through this server is refused at once (it is `forget`-ten); one
    made elsewhere (`mlprov tokens revoke`, another server) within `ttl`; an expiry at once
    (each use compares it with the time); a new token at once (a token not found is never
    remembered)."""

    def __init__(self, table: TokenTable, ttl: float = RECHECK_SECONDS) -> None:
        self._table = table
        self._ttl = ttl
        self._rows: dict[bytes, tuple[TokenRow, float]] = {}

    def fresh(self, presented: str) -> bool:
        """Whether `presented` can be checked from memory, without reading the store."""
        held = self._rows.get(_hash(presented))
        return held is not None and time.monotonic() - held[1] < self._ttl

    def forget(self, name: str) -> None:
        """Read the token `name` from the store again at its next use (its access changed:
        a revocation recorded through this server takes effect at once)."""
        for hashed, (row, _) in list(self._rows.items()):
            if row.name == name:
                self._rows.pop(hashed, None)

    def by_hash(self, hashed: bytes) -> TokenRow | None:
        held = self._rows.get(hashed)
        now = time.monotonic()
        if held is not None and now - held[1] < self._ttl:
            return held[0]
        row = self._table.by_hash(hashed)
        if row is None:
            self._rows.pop(hashed, None)
        else:
            self._rows[hashed] = (row, now)
        return row


def authenticate(table: TokenLookup, presented: str) -> tuple[Token | None, str]:
    """The token's facts if `presented` is an active token; else None and why not (said
    without echoing what was presented)."""
    if not _TOKEN_RE.fullmatch(presented):
        return None, "the token is not an mlprov token"
    row = table.by_hash(_hash(presented))
    if row is None:
        return None, "the token is not known here"
    token = Token.of(row)
    state = token.state()
    if state != "active":
        return None, f"the token {token.name!r} is {state}"
    return token, "active"
