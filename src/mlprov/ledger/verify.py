"""`verify`: recompute everything the store claims, from the event bodies up.

One pass over the events in log order checks each digest against its exact bytes, each
index column against the body, each parent link (the parent exists and comes earlier),
and feeds the Merkle log. Then the stored tiles are compared with the recomputed ones,
and every checkpoint is checked: its signature, its root against the recomputed root at
its size, and its consistency with the checkpoint before it.

Nothing is trusted but the trusted verifier keys: a checkpoint signed by any other key is
a problem, since whoever can write the store can also add their own key and checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlprov import merkle
from mlprov.errors import InputError, MlprovError
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.events import Event
from mlprov.ledger.keys import VerifierKey
from mlprov.ledger.log import TILE_HEIGHT, TILE_WIDTH, TileCache, TileReader
from mlprov.store.interface import Reader

__all__ = ["Problem", "VerifyReport", "verify_ledger"]

_PROGRESS_EVERY = 20000
_MAX_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify. `seq` is the log position, when there is one."""

    code: str
    message: str
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "seq": self.seq}


@dataclass
class VerifyReport:
    """What `verify` checked and what it found."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    events: int = 0
    edges: int = 0
    tiles: int = 0
    checkpoints: int = 0
    signatures: int = 0
    covered: int = 0  # events covered by a verified signed checkpoint
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(Problem(code, message, seq))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root.hex(),
            "events": self.events,
            "edges": self.edges,
            "tiles": self.tiles,
            "checkpoints": self.checkpoints,
            "signatures": self.signatures,
            "covered": self.covered,
            "problems": [p.to_json() for p in self.problems],
            "warnings": self.warnings,
        }


class _Levels:
    """Collects the recomputed tile contents: leaf hashes, and nodes at heights 8, 16, ..."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    def on_node(self, height: int, _index: int, node: bytes) -> None:
        if height % TILE_HEIGHT == 0:
            level = height // TILE_HEIGHT
            while len(self.levels) <= level:
                self.levels.append(bytearray())
            self.levels[level] += node


def _edges_by_child(edges: Iterator[tuple[int, int]]) -> Iterator[tuple[int, list[int]]]:
    current, parents = -1, list[int]()
    for child, parent in edges:
        if child != current:
            if parents:
                yield current, parents
            current, parents = child, []
        parents.append(parent)
    if parents:
        yield current, parents


def _scan(
    reader: Reader,
    report: VerifyReport,
    sizes: set[int],
    roots: dict[int, bytes],
    levels: _Levels,
    progress: Callable[[int, int], None] | None,
) -> None:
    total = report.size
    seen: dict[bytes, int] = {}
    frontier = merkle.Frontier(on_node=levels.on_node)
    leaves = levels.levels[0]
    sha256, leaf_hash = hashlib.sha256, merkle.leaf_hash
    edge_rows = _edges_by_child(reader.scan_edges())
    pending = next(edge_rows, None)
    expected = count = 0
    if 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT
    for row in reader.scan_events():
        seq = row.seq
        if seq != expected:
            report.add("log-gap", f"expected event {expected} next, found {seq}", seq)
            expected = seq
        expected += 1
        count += 1
        if sha256(row.body).digest() != row.digest:
            report.add("digest", f"event {seq}: its bytes do not hash to its digest", seq)
        if row.digest in seen:
            report.add("duplicate", f"event {seq} repeats event {seen[row.digest]}", seq)
        seen[row.digest] = seq
        parents: list[int] = []
        try:
            event = Event.decode(row.body)
        except InputError as exc:
            report.add("body", f"event {seq}: {exc}", seq)
        else:
            if (event.type.value, event.name, event.recorded_at) != (
                row.type,
                row.name,
                row.recorded_at,
            ):
                report.add("index", f"event {seq}: its index columns disagree with its body", seq)
            for p in event.parents:
                pseq = seen.get(p.raw)
                if pseq is None or pseq >= seq:
                    report.add("parent", f"event {seq}: parent {p} is not an earlier event", seq)
                else:
                    parents.append(pseq)
        stored: list[int] = []
        while pending is not None and pending[0] <= seq:
            if pending[0] < seq:
                report.add("edge", f"link from missing event {pending[0]}", pending[0])
            else:
                stored = pending[1]
            pending = next(edge_rows, None)
        report.edges += len(stored)
        if sorted(parents) != stored:
            report.add("edge", f"event {seq}: stored parent links disagree with its body", seq)
        lh = leaf_hash(row.digest)
        leaves += lh
        frontier.append(lh)
        if seq + 1 in sizes:
            roots[seq + 1] = frontier.root()
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(count, total)
    if pending is not None:
        report.add("edge", f"links from events past the end of the log ({pending[0]})")
    report.events = count
    if count != total:
        report.add("size", f"the log holds {count} events but its head says {total}")
    report.root = frontier.root()
    if progress is not None:
        progress(count, total)


def _check_tiles(reader: Reader, report: VerifyReport, levels: _Levels) -> bool:
    full = TILE_WIDTH * merkle.HASH_SIZE
    expected = {
        (lv, i // full): data[i : i + full]
        for lv, data in enumerate(levels.levels)
        for i in range(0, len(data), full)
    }
    ok = True
    for level, idx, hashes in reader.scan_tiles():
        report.tiles += 1
        want = expected.pop((level, idx), None)
        if want is None or bytes(want) != hashes:
            report.add("tile", f"Merkle tile {level}/{idx} does not match the events")
            ok = False
    for level, idx in sorted(expected):
        report.add("tile", f"Merkle tile {level}/{idx} is missing")
        ok = False
    return ok


def _check_checkpoints(
    reader: Reader,
    report: VerifyReport,
    origin: str,
    keys: Sequence[VerifierKey],
    stored: list[tuple[int, SignedCheckpoint]],
    external: Sequence[SignedCheckpoint],
    roots: dict[int, bytes],
    tiles: TileReader | None,
) -> None:
    named = [(f"checkpoint {n}", cp) for n, cp in stored]
    named += [(f"given checkpoint {i + 1}", cp) for i, cp in enumerate(external)]
    previous: tuple[str, SignedCheckpoint] | None = None
    for label, signed in named:
        report.checkpoints += 1
        cp = signed.checkpoint
        valid = True
        if cp.origin != origin:
            report.add("checkpoint", f"{label} is for log {cp.origin!r}, not {origin!r}")
            valid = False
        if keys:
            try:
                report.signatures += len(signed.verify(keys))
            except MlprovError as exc:
                report.add("signature", f"{label}: {exc.message}")
                valid = False
        if cp.size > report.size:
            report.add(
                "checkpoint",
                f"{label} covers {cp.size} events but the log has {report.size}: "
                "events were removed",
            )
            valid = False
        elif roots.get(cp.size) != cp.root:
            report.add("checkpoint", f"{label}: the log at size {cp.size} has another root")
            valid = False
        if valid and keys:
            report.covered = max(report.covered, cp.size)
        if previous is not None and label.startswith("checkpoint"):
            _check_consistency(report, previous, (label, signed), tiles)
        if label.startswith("checkpoint"):
            previous = (label, signed)


def _check_consistency(
    report: VerifyReport,
    a: tuple[str, SignedCheckpoint],
    b: tuple[str, SignedCheckpoint],
    tiles: TileReader | None,
) -> None:
    old, new = a[1].checkpoint, b[1].checkpoint
    if new.size < old.size:
        report.add("consistency", f"{b[0]} is smaller than {a[0]}: the log was rolled back")
        return
    if tiles is None or new.size > report.size:
        return  # already reported: the tiles or the log itself do not verify
    try:
        proof = tiles.consistency_proof(old.size, new.size) if old.size else []
        merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    except MlprovError as exc:
        report.add("consistency", f"{a[0]} and {b[0]} are not consistent: {exc.message}")


def verify_ledger(
    reader: Reader,
    origin: str,
    keys: Sequence[VerifierKey],
    external: Sequence[SignedCheckpoint],
    progress: Callable[[int, int], None] | None,
) -> VerifyReport:
    """Verify everything one reader snapshot holds; see the module docstring."""
    report = VerifyReport(size=reader.size())
    stored: list[tuple[int, SignedCheckpoint]] = []
    for n, row in enumerate(reader.checkpoints(), start=1):
        try:
            stored.append((n, SignedCheckpoint.parse(row.note)))
        except MlprovError as exc:
            report.add("checkpoint", f"checkpoint {n} is malformed: {exc.message}")
    sizes = {cp.checkpoint.size for _, cp in stored} | {cp.checkpoint.size for cp in external}
    roots: dict[int, bytes] = {}
    levels = _Levels()
    _scan(reader, report, sizes, roots, levels, progress)
    tiles_ok = _check_tiles(reader, report, levels)
    # A fresh tile cache: verify trusts nothing remembered from earlier reads.
    tiles = TileReader(reader, report.size, TileCache()) if tiles_ok and report.ok else None
    _check_checkpoints(reader, report, origin, keys, stored, external, roots, tiles)
    if not keys and (stored or external):
        report.warnings.append(
            "no trusted verifier key: checkpoint signatures were not checked "
            "(pass --key, or keep the ledger's .pub in its keys folder)"
        )
    elif report.size > report.covered:
        report.warnings.append(
            f"{report.size - report.covered} of {report.size} events are not yet covered by a "
            "verified signed checkpoint: run `mlprov checkpoint`"
        )
    return report
