"""Server benchmark: clients recording and reading through `mlprov serve`, beside the same
work done in-process, in the same run.

    python bench/server.py [--clients 16] [--seconds 10] [--store URL] [--json]

A ledger is made in a temporary folder (or in the PostgreSQL database `--store` names),
with a recorder token and a reader token. Then, for `seconds` each:

- **server**: `mlprov serve` runs in its own process on a loopback port; `clients` threads,
  each with its own HTTP connection, loop: record a source event (`POST /api/v1/events`,
  which also signs a checkpoint, as every recording route does), then read it back by
  digest (`GET /api/v1/events/{digest}`) and by name (`GET /api/v1/sources/{ref}`);
- **in-process**: the same number of threads do the same work with the library's
  functions (a `Ledger` per call over one shared store, as the server does), on the same
  ledger.

Figures: operations a second and p50 / p99 latency (ms) of writes and reads, for each,
and the server's share of the in-process throughput. Afterwards every event a client was
told was recorded is looked up (none may be missing) and the ledger is verified.

Target (from the issue): server throughput at least 50 % of in-process, p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mlprov.digest import Digest
from mlprov.facade import Ledger
from mlprov.ledger.names import find
from mlprov.server.tokens import create_token

TARGET_SHARE = 0.5
TARGET_P99_MS = 50.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Work = Callable[[int, int], tuple[float, float, str]]


def _drive(clients: int, seconds: float, work: Callable[[int], Work]) -> dict[str, Any]:
    """Run `clients` threads for `seconds`; each calls its work(i, n) until time is up."""
    writes: list[list[float]] = [[] for _ in range(clients)]
    reads: list[list[float]] = [[] for _ in range(clients)]
    acked: list[list[str]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    stop = time.monotonic() + seconds + 1e9  # set once every thread is ready

    def client(i: int) -> None:
        do = work(i)
        start.wait()
        n = 0
        try:
            while time.monotonic() < stop:
                w, r, digest = do(i, n)
                writes[i].append(w)
                reads[i].append(r)
                acked[i].append(digest)
                n += 1
        except Exception as exc:  # noqa: BLE001 - reported as a figure, not a crash
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop = time.monotonic() + seconds + 0.05
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    w = [x for xs in writes for x in xs]
    r = [x for xs in reads for x in xs]
    return {
        "iterations": len(w),
        "ops_per_s": (len(w) + 2 * len(r)) / wall,
        "write_p50_ms": _percentile(w, 0.5),
        "write_p99_ms": _percentile(w, 0.99),
        "read_p50_ms": _percentile(r, 0.5),
        "read_p99_ms": _percentile(r, 0.99),
        "errors": errors,
        "acked": [d for xs in acked for d in xs],
    }


def _server_work(base: str, token: str, reader: str) -> Callable[[int], Work]:
    def make(i: int) -> Work:
        client = httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"})
        reading = {"Authorization": f"Bearer {reader}"}

        def do(i: int, n: int) -> tuple[float, float, str]:
            t0 = time.perf_counter()
            answer = client.post(
                f"{base}/events",
                json={"type": "source", "payload": {"name": f"s{i}", "version": f"http-{n}"}},
            )
            t1 = time.perf_counter()
            answer.raise_for_status()
            digest = answer.json()["digest"]
            client.get(f"{base}/events/{digest}", headers=reading).raise_for_status()
            t2 = time.perf_counter()
            client.get(f"{base}/sources/s{i}@http-{n}", headers=reading).raise_for_status()
            t3 = time.perf_counter()
            return (t1 - t0) * 1000, ((t2 - t1) + (t3 - t2)) * 500, digest

        return do

    return make


def _local_work(ledger: Ledger) -> Callable[[int], Work]:
    def make(i: int) -> Work:
        def do(i: int, n: int) -> tuple[float, float, str]:
            t0 = time.perf_counter()
            mine = Ledger(ledger.store, ledger.location)
            before = mine.size
            entry = mine.record(
                "source", {"name": f"s{i}", "version": f"local-{n}"}, actor="bench"
            )
            if mine.size > before:
                mine.checkpoint()
            t1 = time.perf_counter()
            Ledger(ledger.store, ledger.location).get(entry.digest)
            t2 = time.perf_counter()
            find(Ledger(ledger.store, ledger.location), f"s{i}@local-{n}", ("source",))
            t3 = time.perf_counter()
            return (t1 - t0) * 1000, ((t2 - t1) + (t3 - t2)) * 500, str(entry.digest)

        return do

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", help="a postgresql:// URL (default: SQLite in a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlprov-bench-server."))
    with Ledger.init(home, store=args.store) as ledger:
        ledger.record("source", {"name": "seed", "version": "1"}, actor="bench")
        token, _ = create_token(ledger, "bench-recorder", "recorder", actor="bench")
        reader, _ = create_token(ledger, "bench-reader", "reader", actor="bench")
        store = args.store or str(home / ".mlprov" / "ledger.db")

        port = _port()
        log = (home / "server.log").open("w")
        serve = [sys.executable, "-c", "from mlprov.cli import main; main()", "serve"]
        proc = subprocess.Popen(
            [*serve, "--port", str(port), "--store", store],
            cwd=home,
            stdout=log,
            stderr=log,
            env={**os.environ, "MLPROV_ACTOR": "bench"},
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)
            served = _drive(args.clients, args.seconds, _server_work(base, token, reader))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        local = _drive(args.clients, args.seconds, _local_work(ledger))

        acked = served.pop("acked") + local.pop("acked")
        with ledger.store.reader() as r:
            found = r.seqs_of(Digest(d).raw for d in acked)
        lost = len(acked) - len(found)
        verified = ledger.verify().ok
        size = ledger.size

    share = served["ops_per_s"] / local["ops_per_s"] if local["ops_per_s"] else 0.0
    figures = {
        "clients": args.clients,
        "seconds": args.seconds,
        "store": "postgresql" if args.store else "sqlite",
        "server": served,
        "in_process": local,
        "server_share_of_in_process": share,
        "acknowledged": len(acked),
        "lost": lost,
        "verified": verified,
        "ledger_size": size,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{args.clients} clients, {args.seconds:g} s each, {figures['store']}")
        for label, f in (("server", served), ("in-process", local)):
            print(
                f"  {label:<11} {f['ops_per_s']:8.1f} ops/s   write p50 {f['write_p50_ms']:6.1f} "
                f"p99 {f['write_p99_ms']:6.1f} ms   read p50 {f['read_p50_ms']:6.1f} "
                f"p99 {f['read_p99_ms']:6.1f} ms   errors {len(f['errors'])}"
            )
        print(f"  server throughput is {share:.0%} of in-process (target >= {TARGET_SHARE:.0%})")
        verdict = "passes" if verified else "FAILS"
        print(f"  acknowledged {len(acked)}, lost {lost}, verify {verdict}")
    if lost or not verified or served["errors"] or local["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
