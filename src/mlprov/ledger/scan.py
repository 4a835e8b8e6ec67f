"""The event scan behind `verify`: chunks of the log checked in parallel, merged in order.

Each chunk is checked on its own, by a worker process with its own connection when the
log is large: every row's digest against its exact bytes, its envelope, its index columns,
and the log positions' contiguity. A chunk sends back only compact facts (digests, parent
digests, stored links, problems). The merge then walks the whole log in order, which is
what the checks that span chunks need: duplicates, and parents that must be earlier
events whose links match the stored ones.

Events are immutable once written, so a worker's later snapshot holds the same rows below
the head size the main snapshot read; it never reads past that size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from mlprov import merkle
from mlprov.digest import sha256_raw
from mlprov.ledger.events import envelope_problem
from mlprov.ledger.kinds import label_of
from mlprov.ledger.log import FULL_TILE, TILE_WIDTH, split_hashes
from mlprov.store.interface import Reader

__all__ = ["CHUNK", "ChunkScan", "LogScan", "scan_chunk", "scan_log"]

CHUNK = 400 * TILE_WIDTH  # chunks start on tile edges, so workers can hash whole tiles
PARALLEL_MIN = 200_000  # below this, starting workers costs more than it saves
MAX_PROBLEMS = 1000

ProblemTuple = tuple[str, str, int | None]


@dataclass
class ChunkScan:
    """What one chunk of the log says of itself, in compact form."""

    start: int
    end: int
    seqs: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)
    children: list[int] = field(default_factory=list)  # one entry per parent reference...
    parents: list[bytes] = field(default_factory=list)  # ...naming that parent's digest
    edges: list[tuple[int, int]] = field(default_factory=list)  # stored links, sorted
    problems: list[ProblemTuple] = field(default_factory=list)
    leaves: bytes = b""  # the leaf hashes
    tops: bytes = b""  # the roots of the chunk's full level-0 tiles (nodes of height 8)

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((code, message, seq))

    @property
    def whole(self) -> bool:
        """Tile-aligned and without gaps: its tops are the tree's nodes at their places."""
        return self.start % TILE_WIDTH == 0 and len(self.seqs) == self.end - self.start


def scan_chunk(reader: Reader, start: int, end: int) -> ChunkScan:
    """Check the events at log positions [start, end) that need no other chunk."""
    out = ChunkScan(start, end)
    sha256, loads, fromhex, leaf = sha256_raw, orjson.loads, bytes.fromhex, merkle.leaf_hash
    seqs, digests, children, parents = out.seqs, out.digests, out.children, out.parents
    leaves = bytearray()
    expected = start
    for seq, digest, type_, name, recorded_at, body in reader.scan_events(start, end):
        if seq != expected:
            out.add("log-gap", f"expected event {expected} next, found {seq}", seq)
        expected = seq + 1
        seqs.append(seq)
        digests.append(digest)
        leaves += leaf(digest)
        if sha256(body) != digest:
            out.add("digest", f"event {seq}: its bytes do not hash to its digest", seq)
        try:
            data: Any = loads(body)
        except orjson.JSONDecodeError:
            data = None
        problem = envelope_problem(data)
        if problem is not None:
            out.add("body", f"event {seq}: {problem}", seq)
            continue
        kind = data["type"]
        if (kind, label_of(kind, data["payload"]), data["recorded_at"]) != (
            type_,
            name,
            recorded_at,
        ):
            out.add("index", f"event {seq}: its index columns disagree with its body", seq)
        for p in data["parents"]:
            children.append(seq)
            parents.append(fromhex(p[7:]))
    if expected < end:
        out.add("log-gap", f"events {expected} to {end - 1} are missing", expected)
    out.edges = [(int(c), int(p)) for c, p in reader.scan_edges(start, end)]
    out.leaves = bytes(leaves)
    out.tops = b"".join(
        merkle.root_of(split_hashes(out.leaves[i : i + FULL_TILE]))
        for i in range(0, len(out.leaves) - FULL_TILE + 1, FULL_TILE)
    )
    return out


def _scan_chunk_at(url: str, start: int, end: int) -> ChunkScan:
    from mlprov.store.sql import SqlStore  # a worker process opens its own connection

    store = SqlStore.open(url)
    try:
        with store.reader() as reader:
            return scan_chunk(reader, start, end)
    finally:
        store.close()


@dataclass
class LogScan:
    """The merged scan: the log's leaf hashes, the nodes above them, and every problem."""

    events: int = 0
    leaves: bytearray = field(default_factory=bytearray)
    tops: bytearray = field(default_factory=bytearray)  # nodes of height 8, while aligned
    aligned: bool = True
    problems: list[ProblemTuple] = field(default_factory=list)
    edges: int = 0

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((code, message, seq))


def _merge(chunk: ChunkScan, seen: dict[bytes, int], out: LogScan) -> None:
    """Fold a chunk into the whole, in log order. The common case runs at C speed (dict
    updates, map, sorted); only a chunk with a problem is walked event by event."""
    out.problems.extend(chunk.problems[: MAX_PROBLEMS - len(out.problems)])
    fresh = set(chunk.digests)
    clash = seen.keys() & fresh
    if clash or len(fresh) != len(chunk.digests):
        _report_duplicates(chunk, {d: seen[d] for d in clash}, out)
    seen.update(zip(chunk.digests, chunk.seqs, strict=True))
    resolved = list(map(seen.get, chunk.parents))
    if None in resolved:
        _report_links(chunk, resolved, out)
    else:
        links = sorted(zip(chunk.children, cast(list[int], resolved), strict=True))
        if links != chunk.edges or any(p >= c for c, p in links):
            _report_links(chunk, resolved, out)
    out.edges += len(chunk.edges)
    out.events += len(chunk.seqs)
    out.leaves += chunk.leaves
    if out.aligned and chunk.whole:
        out.tops += chunk.tops
    else:
        out.aligned = False


def _report_duplicates(chunk: ChunkScan, first_seen: dict[bytes, int], out: LogScan) -> None:
    earlier = dict(first_seen)
    for d, seq in zip(chunk.digests, chunk.seqs, strict=True):
        if d in earlier:
            out.add("duplicate", f"event {seq} repeats event {earlier[d]}", seq)
        else:
            earlier[d] = seq


def _report_links(chunk: ChunkScan, resolved: list[int | None], out: LogScan) -> None:
    body: dict[int, list[int]] = {}
    for child, ref, pseq in zip(chunk.children, chunk.parents, resolved, strict=True):
        if pseq is None or pseq >= child:
            out.add(
                "parent", f"event {child}: parent sha256:{ref.hex()} is not an earlier event", child
            )
        else:
            body.setdefault(child, []).append(pseq)
    stored: dict[int, list[int]] = {}
    for child, parent in chunk.edges:
        stored.setdefault(child, []).append(parent)
    known = set(chunk.seqs)
    for child in sorted(set(body) | set(stored)):
        if child not in known:
            out.add("edge", f"link from missing event {child}", child)
        elif sorted(body.get(child, [])) != stored.get(child, []):
            out.add("edge", f"event {child}: stored parent links disagree with its body", child)


def scan_log(
    reader: Reader,
    url: str,
    size: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    workers: int | None = None,
    chunk: int = CHUNK,
) -> LogScan:
    """Scan log positions [0, size): in worker processes when the log is large."""
    ranges = [(a, min(a + chunk, size)) for a in range(0, size, chunk)]
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if size >= PARALLEL_MIN else 1
    out = LogScan()
    seen: dict[bytes, int] = {}
    pool = None
    broken: tuple[type[BaseException], ...] = ()
    chunks: Iterator[ChunkScan] = (scan_chunk(reader, a, b) for a, b in ranges)
    if workers > 1 and len(ranges) > 1:
        # Imported here: a small ledger's `verify` (and every other read) needs no processes.
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool
        from multiprocessing import get_all_start_methods, get_context

        if "fork" in get_all_start_methods():
            # fork, not spawn: workers start in milliseconds and need no importable __main__.
            # They use nothing inherited but code; each opens its own connection.
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))
            args = zip(*[(url, a, b) for a, b in ranges], strict=True)
            chunks = pool.map(_scan_chunk_at, *args)
            broken = (BrokenProcessPool,)
    merged = 0
    try:
        for part in chunks:
            _merge(part, seen, out)
            merged += 1
            if progress is not None:
                progress(part.end, size)
    except broken:  # a worker died (out of memory, killed): finish in-process
        for a, b in ranges[merged:]:
            _merge(scan_chunk(reader, a, b), seen, out)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    # Rows past the head size, and links from them, are history the head does not admit.
    for seq, *_ in reader.scan_events(size, None):
        out.add("size", f"event {seq} lies past the log's head size {size}", seq)
        break
    for child, _parent in reader.scan_edges(size, None):
        out.add("edge", f"links from events outside the log ({child})", child)
        break
    return out
