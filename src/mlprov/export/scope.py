"""Which events an export covers: a build's, a dataset's, or the whole ledger's.

An export covers the ledger as it stood at a size (the first `size` events of the log), so
that what it says can be produced again, byte for byte, from a ledger that has grown since:

- a **build** or **dataset**: the target and every ancestor (sources, steps, the runs that
  ran them, and each run's closing event), the reviews, quarantines and releases of each
  source and dataset among them, and a build's evaluations;
- the **ledger**: every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.governance.review import status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = ["Kind", "Scope", "scope_of"]

Kind = Literal["build", "dataset", "ledger"]


@dataclass(frozen=True)
class Scope:
    """The events one export covers, in log order, and the log size it was taken at."""

    kind: Kind
    target: Entry | None  # None: the whole ledger
    size: int
    entries: tuple[Entry, ...]

    held: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", frozenset(str(e.digest) for e in self.entries))

    def holds(self, digest: Digest | str) -> bool:
        return str(digest) in self.held


def scope_of(
    ledger: LedgerCore, ref: Entry | Digest | str | None, size: int | None = None
) -> Scope:
    """The events covered by an export of `ref` (a build or dataset: NAME, NAME@VERSION or
    a digest; None for the whole ledger) at log size `size` (default: now)."""
    now = ledger.size
    if size is None:
        size = now
    if not 0 <= size <= now:
        raise InputError(f"log size {size} is out of range", f"the log has {now} events")
    if ref is None:
        return Scope("ledger", None, size, tuple(e for e in ledger.entries() if e.seq < size))
    target = ledger.find(ref, ("build", "dataset")).entry
    if target.seq >= size:
        raise InputError(
            f"{target.event.name} ({target.digest}) was recorded after the first {size} events",
            "export it from the ledger as it is now",
        )
    found = {e.digest: e for e in ledger.trace(target.digest)}
    if target.event.type.value == "build":
        for e in ledger.entries(type="evaluation"):
            if e.event.payload.get("build") == target.digest:
                found[e.digest] = e
    for e in list(found.values()):
        kind = e.event.type.value
        if kind == "run" and e.event.payload.get("status") == "started":
            for child in ledger.children(e.digest):
                if child.event.type.value == "run":
                    found[child.digest] = child
        elif kind in ("source", "dataset"):
            state = status_of(ledger, e, as_of=size - 1)
            for move in (*state.history, *state.ignored):
                found[move.digest] = move
    entries = sorted((e for e in found.values() if e.seq < size), key=lambda e: e.seq)
    kind_of: Kind = "build" if target.event.type.value == "build" else "dataset"
    return Scope(kind_of, target, size, tuple(entries))
