"""What the server holds while it runs: the store, the ledger's folder, the access list,
the store's settings and the checkpoint signer.

A request gets a `Ledger` of its own over the one shared store (its connection pool),
so no cache is shared between the threads that serve requests; what they share never
changes while the server runs (the store's settings) or is made for sharing (the pool,
the signer).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mlprov.errors import NotFoundError
from mlprov.facade import Ledger
from mlprov.ledger.core import RightEdge
from mlprov.ledger.events import Entry, Event
from mlprov.server.checkpoints import Checkpointer
from mlprov.server.tokens import RecentTokens
from mlprov.store import Location, SqlStore, find
from mlprov.store.tokens import TokenTable

__all__ = ["LedgerDep", "ServedLedger", "ServerState", "signing"]

#: Connections kept open: one for each of the threads that run the routes (AnyIO's default).
THREADS = 40


class ServedLedger(Ledger):
    """A request's ledger: it knows the server's signer, and how far the log reached after
    what it recorded."""

    def __init__(self, state: ServerState) -> None:
        super().__init__(state.store, state.location, meta=state.meta, edge=state.edge)
        self.checkpointer = state.checkpoints
        self._tokens = state.tokens
        self.reached = 0  # the log's size just after this ledger's last append

    def append_many(self, events: Sequence[Event]) -> list[Entry]:
        entries = super().append_many(events)
        if entries:
            self.reached = max(self.reached, entries[-1].seq + 1)
        for entry in entries:  # a grant or revocation made here takes effect at once
            if entry.event.type.value == "access":
                self._tokens.forget(str(entry.event.payload.get("token")))
        return entries


@dataclass(frozen=True)
class ServerState:
    store: SqlStore
    location: Location
    tokens: RecentTokens
    origin: str
    meta: Mapping[str, str]
    checkpoints: Checkpointer
    edge: RightEdge

    @classmethod
    def open(cls, store: str | None) -> ServerState:
        """The state of a server over the ledger `store` names (see `store.find`)."""
        return cls.over(find(store))

    @classmethod
    def over(cls, location: Location) -> ServerState:
        sql = SqlStore.open(location.url, keep=THREADS)
        with sql.reader() as r:
            meta = r.meta()
        signer = Ledger(sql, location, meta=meta)  # refuses a store that is not a ledger
        # The signer's own ledger: its tile cache is its alone, used by its one thread.
        checkpoints = Checkpointer(signer.checkpoint)
        tokens = RecentTokens(TokenTable(sql))
        return cls(sql, location, tokens, signer.origin, meta, checkpoints, RightEdge())

    def ledger(self) -> ServedLedger:
        """A request's ledger: its own caches, over what the server shares."""
        return ServedLedger(self)

    def close(self) -> None:
        """Sign a last checkpoint covering what was recorded, then close the store."""
        try:
            self.checkpoints.close()
        finally:
            self.store.close()


async def _ledger(request: Request) -> Ledger:
    # Opening one reads nothing (the settings are the state's), so it is done on the event
    # loop rather than handed to a worker thread and back.
    state: ServerState = request.app.state.mlprov
    return state.ledger()


#: The request's ledger (its store shared with every other request).
LedgerDep = Annotated[Ledger, Depends(_ledger)]


@contextmanager
def signing(ledger: Ledger) -> Iterator[None]:
    """See a checkpoint cover what the block recorded, as every recording command does:
    through the server's signer for a request's ledger (at its pace: before the answer,
    or within `mlprov serve --checkpoint-every`), else signed here. A ledger without a
    signing key keeps its events uncovered until one is made."""
    if isinstance(ledger, ServedLedger):
        before = ledger.reached
        yield
        if ledger.reached > before:
            ledger.checkpointer.cover(ledger.reached)
        return
    before = ledger.size
    yield
    if ledger.size > before:
        with suppress(NotFoundError):
            ledger.checkpoint()
