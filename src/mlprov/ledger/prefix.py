"""A store reader of the log's first `size` events: the ledger as it stood then.

The log only grows, so the ledger as it stood when it held `size` events is exactly what
the store holds below that position: the events, their parent links, the Merkle tiles
(read through a tree of `size` leaves, which takes only what lay below it) and the
checkpoints of at most `size` events. :class:`PrefixReader` wraps one reader snapshot and
leaves out everything recorded later, so that every read of
:meth:`mlprov.ledger.core.LedgerCore.at_size` goes through the code that reads the whole
ledger, and answers and exports computed from it are those of that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

from mlprov.errors import InputError
from mlprov.store.interface import CheckpointRow, EventFilter, EventRow, Reader

__all__ = ["PrefixReader"]


class PrefixReader:
    """A :class:`~mlprov.store.interface.Reader` that sees the first `size` events only."""

    def __init__(self, reader: Reader, size: int) -> None:
        self._reader = reader
        self._size = size
        self._hidden: int | None = None

    def _later(self) -> int:
        """How many events were recorded after the prefix (in this snapshot)."""
        if self._hidden is None:
            self._hidden = max(0, self._reader.size() - self._size)
        return self._hidden

    def _keep(self, rows: Iterable[EventRow]) -> list[EventRow]:
        return [r for r in rows if r.seq < self._size]

    def size(self) -> int:
        return min(self._size, self._reader.size())

    def meta(self) -> dict[str, str]:
        return self._reader.meta()

    def by_digest(self, digests: Iterable[bytes]) -> list[EventRow]:
        return self._keep(self._reader.by_digest(digests))

    def by_seq(self, seqs: Iterable[int]) -> list[EventRow]:
        return self._reader.by_seq(s for s in seqs if s < self._size)

    def digests(self, start: int, end: int) -> list[bytes]:
        return self._reader.digests(start, min(end, self._size))

    def by_hex_prefix(self, prefix: str, limit: int) -> list[EventRow]:
        # At most `_later()` of the matches are hidden, so asking for that many more finds
        # `limit` visible ones whenever there are.
        return self._keep(self._reader.by_hex_prefix(prefix, limit + self._later()))[:limit]

    def seqs_of(self, digests: Iterable[bytes]) -> dict[bytes, int]:
        found = self._reader.seqs_of(digests)
        return {d: s for d, s in found.items() if s < self._size}

    def parent_seqs(self, seqs: Iterable[int]) -> dict[int, list[int]]:
        return self._reader.parent_seqs(s for s in seqs if s < self._size)

    def child_seqs(self, seq: int) -> list[int]:
        return [c for c in self._reader.child_seqs(seq) if c < self._size]

    def ancestor_seqs(self, seq: int) -> list[int]:
        return [] if seq >= self._size else self._reader.ancestor_seqs(seq)

    def select(self, where: EventFilter) -> Iterator[EventRow]:
        if where.limit is None:
            rows = self._reader.select(where)
        else:  # as for by_hex_prefix: the hidden rows may come first (newest first)
            rows = self._reader.select(replace(where, limit=where.limit + self._later()))
        kept = (r for r in rows if r.seq < self._size)
        return kept if where.limit is None else islice(kept, where.limit)

    def scan_events(self, start: int = 0, end: int | None = None) -> Iterator[EventRow]:
        return self._reader.scan_events(start, self._size if end is None else min(end, self._size))

    def scan_edges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        return self._reader.scan_edges(start, self._size if end is None else min(end, self._size))

    def tiles(self, level: int, indices: Iterable[int]) -> dict[int, bytes]:
        return self._reader.tiles(level, indices)  # a TileReader of `size` leaves cuts them

    def checkpoints(self) -> list[CheckpointRow]:
        return [c for c in self._reader.checkpoints() if c.size <= self._size]

    # `verify` recomputes the store's own rows (the head, every tile), not a past of them.
    def scan_tiles(self) -> Iterator[tuple[int, int, bytes]]:
        raise _not_verified()

    def head_rows(self) -> list[tuple[int, int]]:
        raise _not_verified()


def _not_verified() -> InputError:
    return InputError(
        "the ledger as it stood at a past size is read, not verified",
        "verify the ledger itself: it checks every checkpoint's size and root",
    )
