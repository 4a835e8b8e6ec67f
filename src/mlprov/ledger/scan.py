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
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from typing import Any

import orjson

from mlprov.digest import sha256_raw
from mlprov.ledger.events import envelope_problem
from mlprov.ledger.payloads import PAYLOADS, EventType
from mlprov.store.interface import Reader

__all__ = ["CHUNK", "ChunkScan", "LogScan", "scan_chunk", "scan_log"]

CHUNK = 100_000
PARALLEL_MIN = 200_000  # below this, starting workers costs more than it saves
MAX_PROBLEMS = 1000
_LABELS = {t.value: PAYLOADS[t].label_of for t in EventType}

ProblemTuple = tuple[str, str, int | None]


@dataclass
class ChunkScan:
    """What one chunk of the log says of itself, in compact form."""

    start: int
    end: int
    seqs: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    digests: bytearray = field(default_factory=bytearray)
    parent_counts: array = field(default_factory=lambda: array("I"))  # type: ignore[type-arg]
    parents: bytearray = field(default_factory=bytearray)
    edges: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    problems: list[ProblemTuple] = field(default_factory=list)

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((code, message, seq))


def scan_chunk(reader: Reader, start: int, end: int) -> ChunkScan:
    """Check the events at log positions [start, end) that need no other chunk."""
    out = ChunkScan(start, end)
    sha256, loads, fromhex = sha256_raw, orjson.loads, bytes.fromhex
    seqs, digests, counts, parents = out.seqs, out.digests, out.parent_counts, out.parents
    expected = start
    for seq, digest, type_, name, recorded_at, body in reader.scan_events(start, end):
        if seq != expected:
            out.add("log-gap", f"expected event {expected} next, found {seq}", seq)
        expected = seq + 1
        seqs.append(seq)
        digests += digest
        if sha256(body) != digest:
            out.add("digest", f"event {seq}: its bytes do not hash to its digest", seq)
        try:
            data: Any = loads(body)
        except orjson.JSONDecodeError:
            data = None
        problem = envelope_problem(data)
        if problem is not None:
            out.add("body", f"event {seq}: {problem}", seq)
            counts.append(0)
            continue
        kind = data["type"]
        if (kind, _LABELS[kind](data["payload"]), data["recorded_at"]) != (
            type_,
            name,
            recorded_at,
        ):
            out.add("index", f"event {seq}: its index columns disagree with its body", seq)
        refs = data["parents"]
        counts.append(len(refs))
        for p in refs:
            parents += fromhex(p[7:])
    if expected < end:
        out.add("log-gap", f"events {expected} to {end - 1} are missing", expected)
    for child, parent in reader.scan_edges(start, end):
        out.edges.append(child)
        out.edges.append(parent)
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
    """The merged scan: the log's leaves (raw digests) and every problem found."""

    digests: list[bytes] = field(default_factory=list)
    problems: list[ProblemTuple] = field(default_factory=list)
    edges: int = 0

    def add(self, code: str, message: str, seq: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((code, message, seq))


def _edges_by_child(flat: array) -> Iterator[tuple[int, list[int]]]:  # type: ignore[type-arg]
    current, found = -1, list[int]()
    for i in range(0, len(flat), 2):
        child, parent = flat[i], flat[i + 1]
        if child != current:
            if found:
                yield current, found
            current, found = child, []
        found.append(parent)
    if found:
        yield current, found


def _merge(chunk: ChunkScan, seen: dict[bytes, int], out: LogScan) -> None:
    out.problems.extend(chunk.problems[: MAX_PROBLEMS - len(out.problems)])
    digests = chunk.digests
    blob, at = chunk.parents, 0
    links = _edges_by_child(chunk.edges)
    pending = next(links, None)
    for i, seq in enumerate(chunk.seqs):
        d = bytes(digests[32 * i : 32 * i + 32])
        if d in seen:
            out.add("duplicate", f"event {seq} repeats event {seen[d]}", seq)
        resolved = []
        for _ in range(chunk.parent_counts[i]):
            pseq = seen.get(bytes(blob[at : at + 32]))
            if pseq is None:
                out.add(
                    "parent",
                    f"event {seq}: parent sha256:{blob[at : at + 32].hex()} "
                    "is not an earlier event",
                    seq,
                )
            else:
                resolved.append(pseq)
            at += 32
        seen[d] = seq
        out.digests.append(d)
        stored: list[int] = []
        while pending is not None and pending[0] <= seq:
            if pending[0] < seq:
                out.add("edge", f"link from missing event {pending[0]}", pending[0])
            else:
                stored = pending[1]
            pending = next(links, None)
        out.edges += len(stored)
        if sorted(resolved) != stored:
            out.add("edge", f"event {seq}: stored parent links disagree with its body", seq)
    if pending is not None:
        out.add("edge", f"links from events outside the log ({pending[0]})")


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
    chunks: Iterator[ChunkScan] = (scan_chunk(reader, a, b) for a, b in ranges)
    if workers > 1 and len(ranges) > 1 and "fork" in get_all_start_methods():
        # fork, not spawn: workers start in milliseconds and need no importable __main__.
        # They use nothing inherited but code; each opens its own connection.
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))
        chunks = pool.map(_scan_chunk_at, *zip(*[(url, a, b) for a, b in ranges], strict=True))
    merged = 0
    try:
        for part in chunks:
            _merge(part, seen, out)
            merged += 1
            if progress is not None:
                progress(part.end, size)
    except BrokenProcessPool:  # a worker died (out of memory, killed): finish in-process
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
