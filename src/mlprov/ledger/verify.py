"""`verify`: recompute everything the store claims, from the event bodies up.

One pass over the events in log order checks each digest against its exact bytes, each
index column against the body, each parent link (the parent exists and comes earlier),
and feeds the Merkle log. Then the stored tiles are compared with the recomputed ones,
and every checkpoint is checked: its signature, its root against the recomputed root at
its size, and its consistency with the checkpoint before it. The columns nothing signs
(the head row, each checkpoint row's number, size and time, the ledger's settings) are
compared with what the notes and events say (`mlprov.ledger.columns`).

Nothing is trusted but the trusted verifier keys: a checkpoint signed by any other key is
a problem, since whoever can write the store can also add their own key and checkpoints.
Every signed review is checked against the same keys (`mlprov.ledger.reviewsigs`): a
signature that does not verify is a problem, one by a key not trusted here a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlprov import merkle
from mlprov.digest import Digest
from mlprov.errors import MlprovError
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.columns import check_columns
from mlprov.ledger.events import Entry, Event
from mlprov.ledger.keys import VerifierKey
from mlprov.ledger.log import FULL_TILE, TileReader, memory_tiles, split_hashes, store_tiles
from mlprov.ledger.reviewsigs import check_review
from mlprov.ledger.scan import CHUNK, scan_log
from mlprov.store.interface import EventFilter, Reader

__all__ = ["Problem", "VerifyReport", "verify_ledger"]

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
    reviews: int = 0  # signed reviews whose signature verified
    covered: int = 0  # events covered by a verified signed checkpoint
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(Problem(code, message, seq))

    def summary(self) -> str:
        """The one wording of what was checked, for `mlprov verify` and the demo alike."""
        return (
            f"{self.events} events, {self.edges} parent links, {self.tiles} tiles, "
            f"{self.checkpoints} checkpoints ({self.signatures} signatures), "
            f"{self.reviews} signed reviews; {self.covered} of {self.size} events covered "
            f"by a verified signed checkpoint; root {self.root.hex()}"
        )

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
            "review_signatures": self.reviews,
            "covered": self.covered,
            "problems": [p.to_json() for p in self.problems],
            "warnings": self.warnings,
        }


def _levels(leaves: bytes, tops: bytes | None) -> list[bytes]:
    """The recomputed tree as tile levels: level L holds every node of height 8L.

    `tops`, when the scan could give them, are level 1 already (hashed by the workers).
    """
    levels = [leaves]
    if tops is not None:
        levels.append(tops)
    while len(levels[-1]) >= FULL_TILE:
        data = levels[-1]
        levels.append(
            b"".join(
                merkle.root_of(split_hashes(data[i : i + FULL_TILE]))
                for i in range(0, len(data) - FULL_TILE + 1, FULL_TILE)
            )
        )
    return levels


def _check_tiles(reader: Reader, report: VerifyReport, levels: list[bytes]) -> bool:
    # Every full tile is stored, and every partial edge tile above level 0.
    expected = {
        (lv, i // FULL_TILE): data[i : i + FULL_TILE]
        for lv, data in enumerate(levels)
        for i in range(0, len(data), FULL_TILE)
        if lv > 0 or len(data) - i >= FULL_TILE
    }
    ok = True
    for level, idx, hashes in reader.scan_tiles():
        report.tiles += 1
        want = expected.pop((level, idx), None)
        if want is None or want != hashes:
            report.add("tile", f"Merkle tile {level}/{idx} does not match the events")
            ok = False
    for level, idx in sorted(expected):
        report.add("tile", f"Merkle tile {level}/{idx} is missing")
        ok = False
    return ok


def _check_checkpoints(
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


def _check_reviews(reader: Reader, report: VerifyReport, keys: Sequence[VerifierKey]) -> None:
    """Check the signature of every signed review against the trusted keys."""
    untrusted: set[str] = set()
    for row in reader.select(EventFilter(type="review")):
        try:
            event = Event.decode(row.body)
        except MlprovError:
            continue  # a damaged body: the scan has reported it
        entry = Entry(row.seq, Digest.from_raw(row.digest), event, row.body)
        found = check_review(entry, keys)
        if found.verdict == "valid":
            report.reviews += 1
        elif found.verdict == "invalid":
            report.add(
                "review-signature",
                f"review {entry.digest.short} (event {row.seq}) carries a signature by "
                f"{found.key_id} that does not verify: it was not made over this review",
                row.seq,
            )
        elif found.verdict == "unknown_key" and found.key_id is not None:
            untrusted.add(found.key_id)
    if untrusted:
        report.warnings.append(
            "reviews signed by keys not trusted here were not checked: "
            + ", ".join(sorted(untrusted))
            + " (put the reviewers' .pub files in the ledger's keys folder, or pass --key)"
        )


def verify_ledger(
    reader: Reader,
    origin: str,
    keys: Sequence[VerifierKey],
    external: Sequence[SignedCheckpoint],
    progress: Callable[[int, int], None] | None,
    *,
    url: str,
    workers: int | None = None,
    chunk: int = CHUNK,
) -> VerifyReport:
    """Verify everything one reader snapshot holds; see the module docstring.

    `url` lets worker processes open the store themselves for a large log's scan.
    """
    report = VerifyReport(size=reader.size())
    stored: list[tuple[int, SignedCheckpoint]] = []
    rows = reader.checkpoints()
    for n, row in enumerate(rows, start=1):
        try:
            stored.append((n, SignedCheckpoint.parse(row.note)))
        except MlprovError as exc:
            report.add("checkpoint", f"checkpoint {n} is malformed: {exc.message}")
    check_columns(
        reader, report.size, origin, rows, dict(stored), report.add, report.warnings.append
    )
    scan = scan_log(reader, url, report.size, progress, workers=workers, chunk=chunk)
    for code, message, seq in scan.problems:
        report.add(code, message, seq)
    report.events, report.edges = scan.events, scan.edges
    if report.events != report.size:
        report.add("size", f"the log holds {report.events} events but its head says {report.size}")
    levels = _levels(bytes(scan.leaves), bytes(scan.tops) if scan.aligned else None)
    recomputed = TileReader(memory_tiles(levels), scan.events)
    report.root = recomputed.root()
    sizes = {cp.checkpoint.size for _, cp in stored} | {cp.checkpoint.size for cp in external}
    roots = {n: recomputed.root(n) for n in sizes if n <= scan.events}
    tiles_ok = _check_tiles(reader, report, levels)
    # Consistency proofs come from the stored tiles (what outsiders are served), fresh.
    tiles = TileReader(store_tiles(reader, report.size), report.size) if tiles_ok else None
    _check_checkpoints(report, origin, keys, stored, external, roots, tiles)
    _check_reviews(reader, report, keys)
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
