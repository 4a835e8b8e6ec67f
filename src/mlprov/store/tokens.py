"""The server's access list in the store: one row per token, holding its SHA-256 only.

The table (`schema.ACCESS_TABLES`) is created on first use, so a ledger made before the
server existed gains it when its first token is made. Rows are never deleted: a revoked
token keeps its row, so its name can never be given to someone else (it is an actor in
events).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mlprov.errors import DuplicateError, NotFoundError
from mlprov.store import schema
from mlprov.store.sql import SqlStore

__all__ = ["TokenRow", "TokenTable"]


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A token as stored: never the token itself, only its SHA-256."""

    name: str
    role: str
    hash: bytes
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None


_SELECT = "SELECT name, role, hash, created_at, expires_at, revoked_at FROM mlprov_tokens"


def _row(r: Sequence[Any]) -> TokenRow:
    return TokenRow(r[0], r[1], bytes(r[2]), r[3], r[4], r[5])


class TokenTable:
    """The tokens of one store."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        with store.transaction() as session:
            for statement in schema.access_ddl(store.dialect):
                session._raw(statement)

    def add(self, row: TokenRow) -> None:
        """Store a new token; a name already used (even by a revoked token) is refused."""
        with self._store.transaction() as session:
            if session._raw("SELECT name FROM mlprov_tokens WHERE name = ?", (row.name,)):
                raise DuplicateError(
                    f"a token named {row.name!r} already exists (names are never reused: each "
                    "is the actor of what its holder recorded)",
                    "choose another name; `mlprov tokens list` shows the names taken",
                )
            session._raw(
                "INSERT INTO mlprov_tokens (name, role, hash, created_at, expires_at, "
                "revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                (row.name, row.role, row.hash, row.created_at, row.expires_at, row.revoked_at),
            )

    def discard(self, name: str) -> None:
        """Remove a token made a moment ago whose grant could not be recorded."""
        with self._store.transaction() as session:
            session._raw("DELETE FROM mlprov_tokens WHERE name = ?", (name,))

    def by_hash(self, hashed: bytes) -> TokenRow | None:
        with self._store.reader() as session:
            found = session._raw(f"{_SELECT} WHERE hash = ?", (hashed,))
        return _row(found[0]) if found else None

    def rows(self) -> Iterator[TokenRow]:
        with self._store.reader() as session:
            found = session._raw(f"{_SELECT} ORDER BY created_at, name")
        return (_row(r) for r in found)

    def revoke(self, name: str, at: str) -> TokenRow:
        """Mark a token revoked from `at`; revoking a revoked token keeps its first time."""
        with self._store.transaction() as session:
            found = session._raw(f"{_SELECT} WHERE name = ?", (name,))
            if not found:
                raise NotFoundError(
                    f"no token is named {name!r}", "`mlprov tokens list` shows the tokens"
                )
            row = _row(found[0])
            done = session._raw(  # only the first revocation counts, however many race
                "UPDATE mlprov_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
                "RETURNING name",
                (at, name),
            )
            if done:
                row = replace(row, revoked_at=at)
            else:  # revoked before, or a moment ago by another caller: its time stands
                row = _row(session._raw(f"{_SELECT} WHERE name = ?", (name,))[0])
        return row
