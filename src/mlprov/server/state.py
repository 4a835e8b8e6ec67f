"""What the server holds while it runs: the store, the ledger's folder, the access list.

A request gets a `Ledger` of its own over the one shared store (its connection pool),
so no cache is shared between the threads that serve requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mlprov.errors import NotFoundError
from mlprov.facade import Ledger
from mlprov.store import Location, SqlStore, find
from mlprov.store.tokens import TokenTable

__all__ = ["LedgerDep", "ServerState", "signing"]


@dataclass(frozen=True)
class ServerState:
    store: SqlStore
    location: Location
    tokens: TokenTable
    origin: str

    @classmethod
    def open(cls, store: str | None) -> ServerState:
        location = find(store)
        sql = SqlStore.open(location.url)
        origin = Ledger(sql, location).origin  # refuses a store that is not a ledger
        return cls(sql, location, TokenTable(sql), origin)

    def ledger(self) -> Ledger:
        return Ledger(self.store, self.location)

    def close(self) -> None:
        self.store.close()


def _ledger(request: Request) -> Ledger:
    state: ServerState = request.app.state.mlprov
    return state.ledger()


#: The request's ledger (its store shared with every other request).
LedgerDep = Annotated[Ledger, Depends(_ledger)]


@contextmanager
def signing(ledger: Ledger) -> Iterator[None]:
    """Sign a checkpoint covering what the block recorded, as every recording command
    does (a ledger without a signing key keeps its events uncovered until one is made)."""
    before = ledger.size
    yield
    if ledger.size > before:
        with suppress(NotFoundError):
            ledger.checkpoint()
