"""Server benchmark: clients recording and reading through `mlprov serve`, beside the same
work done in-process, in the same run.

    python bench/server.py [--clients 16] [--seconds 10] [--store URL]
                           [--checkpoint-every MS] [--json]

A ledger is made in a temporary folder (or in the PostgreSQL database `--store` names),
with a recorder token and a reader token. Then, for `seconds` each:

- **server**: `mlprov serve --checkpoint-every MS` runs in its own process on a loopback
  port; `clients` threads, each with its own keep-alive HTTP connection (the standard
  library's, the cheapest client: the clients share the machine with the server), loop:
  record a source event (`POST /api/v1/events`, answered once a checkpoint covers it, or
  at once with a pace), then read it back by digest (`GET /api/v1/events/{digest}`) and
  by name (`GET /api/v1/sources/{ref}`);
- **in-process**: the same number of threads do the routes' work with the same library
  calls, over what a server holds (`ServerState`: a ledger per call over one store, its
  settings, the log's edge, and a checkpoint signer at the same pace), on the same ledger.

Figures: operations a second and p50 / p99 latency (ms) of writes and reads, for each,
and the server's share of the in-process throughput. Afterwards every event a client was
told was recorded is looked up (none may be missing), the ledger is verified, and the last
checkpoint must cover it whole (the server signs one as it stops).

Target (from the issue): server throughput at least 50 % of in-process, p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
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
from mlprov.ledger.events import Entry, Event
from mlprov.ledger.names import find
from mlprov.server.state import ServerState, signing
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


class _Connection:
    """One keep-alive HTTP/1.1 connection of the standard library: the clients share the
    server's two cores, so each must cost as little as a client can (httpx costs several
    times more per call, which would be charged to the server here)."""

    def __init__(self, port: int) -> None:
        self._http = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self._http.request(method, f"/api/v1{path}", body=data, headers=headers)
        answer = self._http.getresponse()
        text = answer.read()
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path} answered {answer.status}: {text[:200]!r}")
        return json.loads(text)


def _server_work(port: int, token: str, reader: str) -> Callable[[int], Work]:
    def make(i: int) -> Work:
        client = _Connection(port)

        def do(i: int, n: int) -> tuple[float, float, str]:
            t0 = time.perf_counter()
            body = {"type": "source", "payload": {"name": f"s{i}", "version": f"http-{n}"}}
            digest = client.call("POST", "/events", token, body)["digest"]
            t1 = time.perf_counter()
            client.call("GET", f"/events/{digest}", reader)
            t2 = time.perf_counter()
            client.call("GET", f"/sources/s{i}@http-{n}", reader)
            t3 = time.perf_counter()
            return (t1 - t0) * 1000, ((t2 - t1) + (t3 - t2)) * 500, digest

        return do

    return make


def _shown(ledger: Ledger, entry: Entry) -> dict[str, Any]:
    """What a read route answers for an event (`mlprov show --json`): it and its children."""
    return {**entry.to_json(), "children": [str(c.digest) for c in ledger.children(entry.digest)]}


def _local_work(state: ServerState) -> Callable[[int], Work]:
    """The routes' work without HTTP: each call opens the ledger a request gets, records
    and signs as `POST /events` does, and reads as the two read routes do."""

    def make(i: int) -> Work:
        def do(i: int, n: int) -> tuple[float, float, str]:
            t0 = time.perf_counter()
            mine = state.ledger()
            with signing(mine):
                payload = {"name": f"s{i}", "version": f"local-{n}"}
                entry = mine.append(Event.create("source", payload, actor="bench"))
            t1 = time.perf_counter()
            mine = state.ledger()
            _shown(mine, mine.get(str(entry.digest)))
            t2 = time.perf_counter()
            mine = state.ledger()
            _shown(mine, find(mine, f"s{i}@local-{n}", ("source",)).entry)
            t3 = time.perf_counter()
            return (t1 - t0) * 1000, ((t2 - t1) + (t3 - t2)) * 500, str(entry.digest)

        return do

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", help="a postgresql:// URL (default: SQLite in a temp dir)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="MS",
        help="the pace of checkpoints, as `mlprov serve --checkpoint-every` (default 0)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlprov-bench-server."))
    with Ledger.init(home, store=args.store) as ledger:
        ledger.record("source", {"name": "seed", "version": "1"}, actor="bench")
        token, _ = create_token(ledger, "bench-recorder", "recorder", actor="bench")
        reader, _ = create_token(ledger, "bench-reader", "reader", actor="bench")
        store = args.store or str(home / ".mlprov" / "ledger.db")

        port = _port()
        every = str(args.checkpoint_every)
        log = (home / "server.log").open("w")
        serve = [sys.executable, "-c", "from mlprov.cli import main; main()", "serve"]
        proc = subprocess.Popen(
            [*serve, "--port", str(port), "--store", store, "--checkpoint-every", every],
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
            served = _drive(args.clients, args.seconds, _server_work(port, token, reader))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
        # The same work in this process, over what a server holds: its store (a connection
        # kept per thread), its settings, the log's edge, and a signer at the same pace.
        state = ServerState.over(ledger.location)
        state.checkpoints.pace(args.checkpoint_every / 1000)
        try:
            local = _drive(args.clients, args.seconds, _local_work(state))
        finally:
            state.close()

        acked = served.pop("acked") + local.pop("acked")
        with ledger.store.reader() as r:
            found = r.seqs_of(Digest(d).raw for d in acked)
        lost = len(acked) - len(found)
        verified = ledger.verify().ok
        size = ledger.size
        stored = ledger.checkpoints()
        covered = stored[-1].checkpoint.size if stored else 0

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
        "covered_by_last_checkpoint": covered,
        "checkpoint_every_ms": args.checkpoint_every,
        "checkpoints": len(stored),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        pace = (
            f"checkpoint every {args.checkpoint_every} ms"
            if args.checkpoint_every
            else ("a checkpoint before each write's answer")
        )
        print(f"{args.clients} clients, {args.seconds:g} s each, {figures['store']}, {pace}")
        for label, f in (("server", served), ("in-process", local)):
            print(
                f"  {label:<11} {f['ops_per_s']:8.1f} ops/s   write p50 {f['write_p50_ms']:6.1f} "
                f"p99 {f['write_p99_ms']:6.1f} ms   read p50 {f['read_p50_ms']:6.1f} "
                f"p99 {f['read_p99_ms']:6.1f} ms   errors {len(f['errors'])}"
            )
        print(f"  server throughput is {share:.0%} of in-process (target >= {TARGET_SHARE:.0%})")
        verdict = "passes" if verified else "FAILS"
        print(f"  acknowledged {len(acked)}, lost {lost}, verify {verdict}")
        print(f"  {len(stored)} checkpoints; the last covers {covered} of {size} events")
    if lost or not verified or covered != size or served["errors"] or local["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
