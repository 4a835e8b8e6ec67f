"""The store's columns that no digest or signature covers, compared by `verify`.

The event scan checks every column of the events and edges against the event bodies, and
the tiles against the recomputed tree. What is left is checked here: the head row, each
checkpoint row's number, size and time beside its signed note, and the ledger's settings
(its keys, origin and id). `tests/test_verify_columns.py` edits every column of the
schema in turn and expects `verify` (or opening the store) to object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.store.interface import CheckpointRow, Reader

__all__ = ["check_columns"]

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_LEDGER_ID = re.compile(r"[0-9a-f]{16}")
Add = Callable[[str, str], None]
#: The keys of the store's settings table (`mlprov_meta`).
SETTINGS = frozenset({"format", "schema_version", "origin", "ledger_id"})
#: Kept by stores made before 0.1.0's checks, never read: `verify` warns of it.
LEGACY = "created_at"


def _recorded_at(reader: Reader, seq: int) -> str | None:
    rows = reader.by_seq([seq]) if seq >= 0 else []
    return rows[0].recorded_at if rows else None


def _check_head(reader: Reader, size: int, add: Add) -> None:
    rows = reader.head_rows()
    if rows != [(1, size)]:
        add("head", f"the head table should hold one row (1, {size}), not {rows}")


def _check_meta(meta: Mapping[str, str], origin: str, add: Add) -> None:
    # format and schema_version are checked when the store is opened; the origin against
    # every signed checkpoint; nothing else is kept, so nothing else can go unchecked.
    for key in sorted(meta.keys() - SETTINGS - {LEGACY}):
        add("settings", f"the store's settings hold an unknown key {key!r}")
    ledger_id = meta.get("ledger_id", "")
    if not _LEDGER_ID.fullmatch(ledger_id):
        add("settings", f"the ledger id {ledger_id!r} is not 16 hex digits")
    elif origin.startswith("mlprov/") and origin != f"mlprov/{ledger_id}":
        add("settings", f"the origin {origin} does not name the ledger id {ledger_id}")


def _check_checkpoint_rows(
    reader: Reader,
    rows: Sequence[CheckpointRow],
    parsed: Mapping[int, SignedCheckpoint],
    add: Add,
) -> None:
    previous = ""
    for n, row in enumerate(rows, start=1):
        label = f"checkpoint {n}"
        if row.id != n:
            add("checkpoint", f"{label} is stored as number {row.id}: a checkpoint was removed")
        signed = parsed.get(n)
        if signed is not None and signed.checkpoint.size != row.size:
            add(
                "checkpoint",
                f"{label}: its size column says {row.size} but its signed note says "
                f"{signed.checkpoint.size}",
            )
        if not _TIME.fullmatch(row.created_at):
            add("checkpoint", f"{label}: its time {row.created_at!r} is not an RFC 3339 UTC time")
            continue
        if row.created_at < previous:
            add("checkpoint", f"{label} is dated {row.created_at}, before the checkpoint before it")
        last = _recorded_at(reader, row.size - 1)
        if last is not None and row.created_at < last:
            add(
                "checkpoint",
                f"{label} is dated {row.created_at}, before the last event it covers ({last})",
            )
        previous = row.created_at


def check_columns(
    reader: Reader,
    size: int,
    origin: str,
    rows: Sequence[CheckpointRow],
    parsed: Mapping[int, SignedCheckpoint],
    add: Add,
    warn: Callable[[str], None],
) -> None:
    """Compare the head row, the settings and each checkpoint row (numbered from 1, as in
    `parsed`) with what the signed notes and the events say; `add(code, message)` each
    problem."""
    _check_head(reader, size, add)
    meta = reader.meta()
    _check_meta(meta, origin, add)
    if LEGACY in meta:
        warn(
            f"the store's settings keep a creation time ({meta[LEGACY]!r}) that nothing signs, "
            f"reads or checks: delete the {LEGACY!r} row of mlprov_meta"
        )
    _check_checkpoint_rows(reader, rows, parsed, add)
