"""The server's access list in the store: one row per token, holding its SHA-256 only.

The table (`schema.tokens`) is created on first use, so a ledger made before the server
existed gains it when its first token is made. Rows are never deleted (but for a grant
whose event could not be recorded): a revoked token keeps its row, so its name can never
be given to someone else (it is an actor in events).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

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


_COLUMNS = (
    schema.tokens.c.name,
    schema.tokens.c.role,
    schema.tokens.c.hash,
    schema.tokens.c.created_at,
    schema.tokens.c.expires_at,
    schema.tokens.c.revoked_at,
)


def _row(r: Any) -> TokenRow:
    return TokenRow(r[0], r[1], bytes(r[2]), r[3], r[4], r[5])


class TokenTable:
    """The tokens of one store."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        with store.transaction() as conn:
            schema.access.create_all(conn, checkfirst=True)

    def add(self, row: TokenRow) -> None:
        """Store a new token; a name already used (even by a revoked token) is refused."""
        with self._store.transaction() as conn:
            taken = conn.execute(
                sa.select(schema.tokens.c.name).where(schema.tokens.c.name == row.name)
            ).first()
            if taken is not None:
                raise DuplicateError(
                    f"a token named {row.name!r} already exists (names are never reused: each "
                    "is the actor of what its holder recorded)",
                    "choose another name; `mlprov tokens list` shows the names taken",
                )
            conn.execute(
                schema.tokens.insert().values(
                    name=row.name,
                    role=row.role,
                    hash=row.hash,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                    revoked_at=row.revoked_at,
                )
            )

    def discard(self, name: str) -> None:
        """Remove a token made a moment ago whose grant could not be recorded."""
        with self._store.transaction() as conn:
            conn.execute(schema.tokens.delete().where(schema.tokens.c.name == name))

    def by_hash(self, hashed: bytes) -> TokenRow | None:
        with self._store.transaction() as conn:
            found = conn.execute(sa.select(*_COLUMNS).where(schema.tokens.c.hash == hashed)).first()
        return None if found is None else _row(found)

    def rows(self) -> Iterator[TokenRow]:
        with self._store.transaction() as conn:
            found = conn.execute(sa.select(*_COLUMNS).order_by(schema.tokens.c.created_at)).all()
        return (_row(r) for r in found)

    def revoke(self, name: str, at: str) -> TokenRow:
        """Mark a token revoked from `at`; revoking a revoked token keeps its first time
        (so the row's `revoked_at` is `at` only for the call that revoked it)."""
        with self._store.transaction() as conn:
            found = conn.execute(sa.select(*_COLUMNS).where(schema.tokens.c.name == name)).first()
            if found is None:
                raise NotFoundError(
                    f"no token is named {name!r}", "`mlprov tokens list` shows the tokens"
                )
            row = _row(found)
            done = conn.execute(  # only the first revocation counts, however many race
                schema.tokens.update()
                .where(schema.tokens.c.name == name, schema.tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if done.rowcount == 1:
                row = replace(row, revoked_at=at)
        return row

