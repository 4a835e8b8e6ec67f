"""Ledger benchmark: each figure beside a baseline measured in the same run.

    python bench/ledger.py [--events 1000000] [--durable 2000] [--json]

- append, batched (1,000 events a transaction) against raw `sqlite3` inserts of the very
  same rows (events and parent links, same schema and pragmas) in batches of 1,000. The
  ledger's time includes canonical encoding, hashing and the Merkle tiles; the baseline
  gets its rows ready-made.
- append, one durable commit per event (synchronous=FULL) against raw `sqlite3` at the
  same sync level, one transaction per event.
- verify: events per second over the whole ledger.
- trace of a 20-deep ancestry: median latency.
- inclusion proof: median latency to generate (from the store) and to verify.

Targets (from the issue): batched append >= 50% of raw, durable append >= 50% of raw,
verify >= 200,000 events/s, trace median < 5 ms, proof generate and verify < 1 ms each.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlprov.digest import Digest
from mlprov.facade import Ledger
from mlprov.ledger import Event
from mlprov.store import schema
from mlprov.store.sql import CACHE_KIB

CHAIN = 21  # a source and 20 transforms: traces from a chain's end are 20 deep
BATCH = 1000


def events(count: int, seed: int = 7) -> Iterator[Event]:
    """~300-byte events in chains of CHAIN: a source, then transforms each on the previous."""
    rnd = random.Random(seed)
    prev: Digest | None = None
    for i in range(count):
        minute, second = (i // 60_000_000) % 60, (i // 1_000_000) % 60
        stamp = f"2026-05-22T09:{minute:02d}:{second:02d}.{i % 1_000_000:06d}Z"
        if i % CHAIN == 0:
            ev = Event.create(
                "source",
                {
                    "name": f"support-chat-export-{i // CHAIN}",
                    "version": "2026-05-22",
                    "rights_basis": "contract-2024-17",
                    "license": "LicenseRef-proprietary",
                    "personal_data": True,
                },
                actor="ingest@example.com",
                recorded_at=stamp,
            )
        else:
            ev = Event.create(
                "transform",
                {
                    "name": f"dedupe-v{i % 7}",
                    "params": {"threshold": 0.84, "seed": rnd.randrange(1000)},
                    "counts": {"in": 1000, "out": 990 - i % 13},
                },
                actor="pipeline@example.com",
                parents=[prev] if prev else [],
                recorded_at=stamp,
            )
        prev = Digest.of_bytes(ev.encode())
        yield ev


Row = tuple[int, bytes, str, str | None, str, bytes]


def rows_of(evs: list[Event]) -> tuple[list[Row], list[list[tuple[int, int]]]]:
    """The exact rows the ledger stores for these events (and each one's parent links)."""
    index: dict[bytes, int] = {}
    rows: list[Row] = []
    links: list[list[tuple[int, int]]] = []
    for seq, ev in enumerate(evs):
        body = ev.encode()
        raw = Digest.of_bytes(body).raw
        index[raw] = seq
        rows.append((seq, raw, ev.type.value, ev.name, ev.recorded_at, body))
        links.append([(seq, index[p.raw]) for p in ev.parents])
    return rows, links


def fresh(evs: list[Event]) -> list[Event]:
    """Copies without the cached canonical bytes, so the ledger's time includes encoding."""
    copies = [dataclasses.replace(e) for e in evs]
    gc.collect()
    gc.freeze()
    return copies


def raw_db(path: Path, synchronous: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    for statement in schema.ddl("sqlite"):  # the store's own tables
        con.execute(statement)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # the same pragmas as the store
    return con


def raw_insert(
    con: sqlite3.Connection, rows: list[Row], links: list[list[tuple[int, int]]]
) -> None:
    con.execute("BEGIN")
    con.executemany("INSERT INTO mlprov_events VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO mlprov_edges VALUES (?, ?)", [x for ls in links for x in ls])
    con.execute("COMMIT")


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def bench_batched(work: Path, evs: list[Event]) -> dict[str, float]:
    rows, links = rows_of(evs)
    con = raw_db(work / "raw-batched.db", "NORMAL")
    t = time.perf_counter()
    for k in range(0, len(evs), BATCH):
        raw_insert(con, rows[k : k + BATCH], links[k : k + BATCH])
    raw_rate = len(evs) / (time.perf_counter() - t)
    con.close()

    evs = fresh(evs)
    ledger = Ledger.init(work / "batched")
    t = time.perf_counter()
    for k in range(0, len(evs), BATCH):
        ledger.append_many(evs[k : k + BATCH])
    ours = len(evs) / (time.perf_counter() - t)
    ledger.close()
    return {"append_batched_per_s": ours, "raw_batched_per_s": raw_rate, "ratio": ours / raw_rate}


def bench_durable(work: Path, evs: list[Event]) -> dict[str, float]:
    rows, links = rows_of(evs)
    con = raw_db(work / "raw-durable.db", "FULL")
    t = time.perf_counter()
    for row, link in zip(rows, links, strict=True):
        raw_insert(con, [row], [link])
    raw_rate = len(evs) / (time.perf_counter() - t)
    con.close()

    evs = fresh(evs)
    home = work / "durable"
    Ledger.init(home).close()
    ledger = Ledger.open(f"sqlite:///{home / '.mlprov' / 'ledger.db'}?synchronous=FULL")
    t = time.perf_counter()
    for ev in evs:
        ledger.append(ev)
    ours = len(evs) / (time.perf_counter() - t)
    ledger.close()
    return {"append_durable_per_s": ours, "raw_durable_per_s": raw_rate, "ratio": ours / raw_rate}


def bench_reads(work: Path, count: int) -> dict[str, float]:
    ledger = Ledger.open(str(work / "batched" / ".mlprov" / "ledger.db"))
    ledger.checkpoint()
    t = time.perf_counter()
    report = ledger.verify()
    verify_rate = report.events / (time.perf_counter() - t)
    assert report.ok, report.problems

    rnd = random.Random(1)
    chain_ends = [c * CHAIN + CHAIN - 1 for c in range(count // CHAIN)]
    sample = [rnd.choice(chain_ends) for _ in range(200)]
    digests = {}
    with ledger.store.reader() as r:
        for row in r.by_seq(sorted(set(sample))):
            digests[row.seq] = Digest.from_raw(row.digest)
    depth = len(ledger.trace(digests[sample[0]])) - 1
    it = iter(sample * 2)
    trace_ms = median_ms(lambda: ledger.trace(digests[next(it)]), 200)

    proofs = []
    it = iter(sample * 2)

    def generate() -> None:
        proofs.append(ledger.inclusion_proof(digests[next(it)]))

    generate_ms = median_ms(generate, 200)
    pit = iter(proofs * 2)
    verify_proof_ms = median_ms(lambda: next(pit).verify(), 200)
    ledger.close()
    return {
        "verify_events_per_s": verify_rate,
        "trace_depth": depth,
        "trace_median_ms": trace_ms,
        "proof_generate_median_ms": generate_ms,
        "proof_verify_median_ms": verify_proof_ms,
        "proof_hashes": len(proofs[0].hashes),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--durable", type=int, default=2000, help="events for the durable run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlprov-bench-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        evs = list(events(args.events))
        made = time.perf_counter() - t
        # A million events held in memory at once is this harness's doing, not a pipeline's:
        # keep the collector from re-scanning them during every timed section, both sides.
        size = sum(len(e.encode()) for e in evs[:1000]) / min(1000, len(evs))
        out: dict[str, object] = {
            "events": len(evs),
            "mean_event_bytes": round(size),
            "event_create_per_s": len(evs) / made,
            "cpus": os.cpu_count(),
        }
        out["batched"] = bench_batched(work, evs)
        out["durable"] = bench_durable(work, evs[: args.durable])
        count = len(evs)
        # verify forks its workers: measure it as `mlprov verify` runs, in a process that
        # does not hold a million events of this harness in memory.
        del evs
        gc.unfreeze()
        gc.collect()
        out["reads"] = bench_reads(work, count)

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    b, d, r = out["batched"], out["durable"], out["reads"]
    assert isinstance(b, dict) and isinstance(d, dict) and isinstance(r, dict)
    print(f"ledger of {out['events']:,} events, ~{out['mean_event_bytes']} bytes each")
    print(
        f"append, batched 1,000:  {b['append_batched_per_s']:>10,.0f}/s   raw SQLite "
        f"{b['raw_batched_per_s']:>10,.0f}/s   ratio {b['ratio']:.2f}  (target >= 0.50)"
    )
    print(
        f"append, durable each:   {d['append_durable_per_s']:>10,.0f}/s   raw SQLite "
        f"{d['raw_durable_per_s']:>10,.0f}/s   ratio {d['ratio']:.2f}  (target >= 0.50)"
    )
    print(
        f"verify:                 {r['verify_events_per_s']:>10,.0f} events/s        "
        f"(target >= 200,000)"
    )
    print(
        f"trace, {r['trace_depth']}-deep:         {r['trace_median_ms']:>10.2f} ms median   "
        f"(target < 5)"
    )
    print(
        f"inclusion proof:        {r['proof_generate_median_ms']:>10.3f} ms to generate, "
        f"{r['proof_verify_median_ms']:.3f} ms to verify, {r['proof_hashes']} hashes "
        f"(target < 1 each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
