"""What a pipeline knows of the data it tracks: each object's lineage (found by the follow
worker), its event and root once recorded, and the checks that need them — a source's
facts against its earlier recording, and which rows an exclusion removes."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.capture import frames
from mlprov.capture.lineage import Changes, Snapshot
from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.records.pairs import Pairs
from mlprov.records.setfiles import read_pairs

__all__ = ["Lineage", "Step", "Tracked", "matches", "pairs_root", "saved_set"]


@dataclass
class Lineage:
    """What the follow worker found for one data object."""

    snapshot: Snapshot
    changes: Changes | None = None


@dataclass
class Tracked:
    """One data object of the pipeline."""

    lineage: Future[Lineage]  # resolved by the follow worker
    rows: int
    key: str | None
    subject: str | None
    label: str
    sources: tuple[str, ...]
    steps: tuple[str, ...]
    event: Digest | None = None  # set when its event is appended
    root: Digest | None = None  # None: a step's set not built (step_sets=False)
    hold: Any = None  # the data itself, when it cannot be weakly referenced
    columns: list[dict[str, str]] | None = None  # name and Arrow type of each column

    def snapshot(self) -> Snapshot:
        """Its snapshot, waiting for the follow worker if need be."""
        return self.lineage.result().snapshot

    def content(self) -> pa.Table | None:
        """The content the follow worker holds of it, if that is at hand already."""
        if not self.lineage.done() or self.lineage.exception() is not None:
            return None
        return self.lineage.result().snapshot.table


@dataclass
class Step:
    """A step's event as far as it is known when the step starts, and the data it used."""

    payload: dict[str, Any]
    used: list[tuple[str, Tracked]]


def matches(
    before: Tracked, data: Any, other: Tracked, using: Any, on: str, matched_on: str
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The rows of `data` whose `on` value (or subject hash) appears in `using`."""
    if matched_on == "subject_hash":  # whom each row concerns: wait for the follow worker
        wanted = other.snapshot().subjects.drop_null()
        found = pc.is_in(before.snapshot().subjects, value_set=wanted)
    else:
        mine = before.content() or frames.to_table(data)
        theirs = other.content() or frames.to_table(using)
        for table, what in ((mine, "the data"), (theirs, "the `using` list")):
            if on not in table.column_names:
                raise InputError(
                    f"{what} has no column {on!r} to match on",
                    "its columns are: " + ", ".join(table.column_names),
                )
        left, right = mine.column(on), theirs.column(on)
        if left.type != right.type:
            left, right = pc.cast(left, pa.string()), pc.cast(right, pa.string())
        found = pc.is_in(left, value_set=right.combine_chunks())
    return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)


def saved_set(snap: Snapshot, blobs: Path) -> Digest:
    """The root of `snap`'s record set, saved in `blobs` (before any event names it)."""
    records = snap.record_set()
    records.save(blobs)
    return Digest.from_raw(records.root)


def pairs_root(snap: Snapshot, blobs: Path, root: Digest) -> Digest:
    """The pairs root (ADR 0020) of `snap`'s record set, saved under `root`: read from the
    set file's index when it lists the pairs of one set (the one saved from `snap` just
    before), computed from `snap` otherwise."""
    listed = read_pairs(blobs / f"{root.hex}.parquet")
    if len(listed) == 1:
        try:
            return Digest.from_raw(Pairs.from_index(listed[0]).root)
        except ValueError:
            pass  # computed below
    return Digest.from_raw(snap.record_set().pairs.root)
