"""What the server records is covered by a signed checkpoint: before each answer (one
checkpoint shared by the requests of the same moment), or within `--checkpoint-every`,
and in every case when the server stops; a revoked token is refused within
`RECHECK_SECONDS` (ADR 0015)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving import Served, free_port, make_tokens, serving
from tests.test_cli import MLPROV, cli_env, mlprov, ok

from mlprov.facade import Ledger
from mlprov.server.tokens import RECHECK_SECONDS

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")

PATIENCE = 60.0  # seconds: how long a test waits for what must happen, however slow the machine


@contextmanager
def _serve(home: Path, *options: str) -> Iterator[Served]:
    """`mlprov serve OPTIONS...` over the ledger in `home`; stopped (SIGTERM) at the end."""
    assert MLPROV is not None
    port = free_port()
    served = Served(f"http://127.0.0.1:{port}/api/v1", home / "server.log")
    with served.log_file.open("w") as log:
        proc = subprocess.Popen(
            [MLPROV, "serve", "--port", str(port), *options],
            cwd=home,
            env=cli_env(),
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            assert proc.poll() is None, served.log()
            try:
                if served.call("GET", "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, served.log()
            time.sleep(0.1)
        yield served
    finally:
        served.client.close()
        proc.terminate()  # uvicorn shuts down in good order, then exits by the signal
        assert proc.wait(timeout=PATIENCE) in (0, -signal.SIGTERM), served.log()


def _ledger(tmp_path: Path) -> dict[str, str]:
    with Ledger.init(tmp_path) as ledger:
        return make_tokens(ledger)


def _record(served: Served, name: str, version: str) -> dict[str, Any]:
    body = {"type": "source", "payload": {"name": name, "version": version}}
    answer = served.as_("recorder", "POST", "/events", json=body)
    assert answer.status_code == 201, answer.text
    recorded: dict[str, Any] = answer.json()
    return recorded


def _covered(served: Served) -> int:
    """The size the newest stored checkpoint covers (0 without one)."""
    stored = served.as_("reader", "GET", "/checkpoints").json()
    return int(stored[-1]["size"]) if stored else 0


def _stored(home: Path) -> tuple[int, int, int]:
    """The ledger's size, the newest checkpoint's size, and how many checkpoints."""
    with Ledger.open(cwd=home) as ledger:
        stored = ledger.checkpoints()
        return ledger.size, stored[-1].checkpoint.size if stored else 0, len(stored)


def test_each_answer_comes_after_a_checkpoint_that_covers_it(tmp_path: Path) -> None:
    """The default pace: requests recording at once each answer only once covered."""
    tokens = _ledger(tmp_path)
    failures: list[str] = []
    with serving(tmp_path) as served:
        served.tokens = tokens

        def client(i: int) -> None:
            mine = Served(served.base, served.log_file, tokens)
            try:
                for n in range(4):
                    seq = _record(mine, f"c{i}", str(n))["seq"]
                    if _covered(mine) <= seq:
                        failures.append(f"event {seq} was answered before it was covered")
            except AssertionError as exc:
                failures.append(str(exc))
            finally:
                mine.client.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures
    size, covered, _ = _stored(tmp_path)
    assert covered == size
    ok(mlprov("verify", cwd=tmp_path))


def test_at_a_pace_a_checkpoint_follows_within_it(tmp_path: Path) -> None:
    tokens = _ledger(tmp_path)
    with _serve(tmp_path, "--checkpoint-every", "200") as served:
        served.tokens = tokens
        last = max(_record(served, "paced", str(n))["seq"] for n in range(5))
        deadline = time.monotonic() + PATIENCE
        while _covered(served) <= last:  # signed in the background, not before the answer
            assert time.monotonic() < deadline, "no checkpoint came to cover the events"
            time.sleep(0.05)
    ok(mlprov("verify", cwd=tmp_path))


def test_a_stopping_server_signs_what_it_has_not_yet_covered(tmp_path: Path) -> None:
    """An hour's pace: the first event is signed at once, the rest only when it stops."""
    tokens = _ledger(tmp_path)
    with _serve(tmp_path, "--checkpoint-every", "3600000") as served:
        served.tokens = tokens
        first = _record(served, "held", "0")["seq"]
        deadline = time.monotonic() + PATIENCE
        while _covered(served) <= first:
            assert time.monotonic() < deadline, "the first event was never covered"
            time.sleep(0.05)
        last = max(_record(served, "held", str(n))["seq"] for n in range(1, 5))
        assert _covered(served) <= last  # held back by the pace
    size, covered, _ = _stored(tmp_path)
    assert size == last + 1 and covered == size
    ok(mlprov("verify", cwd=tmp_path))


def test_a_revoked_token_is_refused_within_the_recheck_time(tmp_path: Path) -> None:
    tokens = _ledger(tmp_path)
    with serving(tmp_path) as served:
        served.tokens = tokens
        assert served.as_("reader", "GET", "/whoami").status_code == 200  # now remembered
        ok(mlprov("tokens", "revoke", "reader", cwd=tmp_path))  # another process
        revoked = time.monotonic()
        while served.as_("reader", "GET", "/whoami").status_code == 200:
            assert time.monotonic() - revoked < PATIENCE, "the revoked token still works"
            time.sleep(RECHECK_SECONDS / 10)
        refused = served.as_("reader", "GET", "/whoami")
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]
