"""The small interface every store implements: rows in, rows out, one writer at a time.

A store knows nothing of digests, trees or signatures; the ledger does. A store only
persists rows and guarantees two things: reads inside one `reader()` see one consistent
snapshot, and `writer()` holds the one write lock, so concurrent appenders queue rather
than fork the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["CheckpointRow", "EventFilter", "EventRow", "Reader", "Store", "Writer"]


class EventRow(NamedTuple):
    """One stored event: its log position, raw digest, index columns and canonical body."""

    seq: int
    digest: bytes
    type: str
    name: str | None
    recorded_at: str
    body: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    id: int
    size: int
    note: bytes
    created_at: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a listing returns; every field narrows it."""

    type: str | None = None
    name: str | None = None
    since: str | None = None  # recorded_at >= since (RFC 3339 text compares in time order)
    until: str | None = None  # recorded_at < until
    limit: int | None = None
    newest_first: bool = False


class Reader(Protocol):
    """Reads inside one consistent snapshot."""

    def size(self) -> int: ...
    def meta(self) -> dict[str, str]: ...
    def by_digest(self, digests: Iterable[bytes]) -> list[EventRow]: ...
    def by_seq(self, seqs: Iterable[int]) -> list[EventRow]: ...
    def digests(self, start: int, end: int) -> list[bytes]: ...
    def by_hex_prefix(self, prefix: str, limit: int) -> list[EventRow]: ...
    def seqs_of(self, digests: Iterable[bytes]) -> dict[bytes, int]: ...
    def parent_seqs(self, seqs: Iterable[int]) -> dict[int, list[int]]: ...
    def child_seqs(self, seq: int) -> list[int]: ...
    def ancestor_seqs(self, seq: int) -> list[int]: ...
    def select(self, where: EventFilter) -> Iterator[EventRow]: ...
    def scan_events(self, start: int = 0, end: int | None = None) -> Iterator[EventRow]: ...
    def scan_edges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]: ...
    def tiles(self, level: int, indices: Iterable[int]) -> dict[int, bytes]: ...
    def scan_tiles(self) -> Iterator[tuple[int, int, bytes]]: ...
    def checkpoints(self) -> list[CheckpointRow]: ...
    def head_rows(self) -> list[tuple[int, int]]: ...


class Writer(Reader, Protocol):
    """Reads and writes under the store's single write lock; commits on clean exit."""

    def insert(self, rows: Sequence[EventRow], edges: Sequence[tuple[int, int]]) -> None: ...
    def put_tiles(self, tiles: Sequence[tuple[int, int, bytes]]) -> None: ...
    def set_size(self, size: int) -> None: ...
    def add_checkpoint(self, size: int, note: bytes, created_at: str) -> None: ...


class Store(Protocol):
    """A ledger store: SQLite by default, PostgreSQL for teams."""

    @property
    def url(self) -> str:
        """Where the store is, with any password masked."""
        ...

    def reader(self) -> AbstractContextManager[Reader]: ...
    def writer(self) -> AbstractContextManager[Writer]: ...
    def close(self) -> None: ...
