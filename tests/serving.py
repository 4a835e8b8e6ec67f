"""The real server for the server tests: `mlprov serve` started as a process on a free
loopback port, its log captured, called over real HTTP; and the small ledger it serves
(two sources, an opt-out removal, a dataset, reviews and a build)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
from tests.test_cli import MLPROV, cli_env

from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.server.tokens import create_token, revoke_token
from mlprov.store.tokens import TokenRow, TokenTable

REVIEWER = "carol@example.com"
OPS = "ops@example.com"  # who grants the tokens
EXPIRED_AT = "2000-01-01T00:00:00.000000Z"
ROLES = ("reader", "recorder", "reviewer", "admin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server, the tokens made for it, and its captured log."""

    base: str
    log_file: Path
    tokens: dict[str, str] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def call(
        self, method: str, path: str, token: str | None = None, **options: Any
    ) -> httpx.Response:
        headers = dict(options.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, self.base + path, headers=headers, **options)

    def as_(self, role: str, method: str, path: str, **options: Any) -> httpx.Response:
        return self.call(method, path, self.tokens[role], **options)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")


def make_tokens(ledger: Ledger) -> dict[str, str]:
    """A token of each role (named after it), a revoked one and an expired one (this one
    written straight into the table, as no command makes a token already expired)."""
    made = {role: create_token(ledger, role, role, actor=OPS)[0] for role in ROLES}
    made["carol"] = create_token(ledger, REVIEWER, "reviewer", actor=OPS)[0]
    revoked, _ = create_token(ledger, "gone", "admin", actor=OPS)
    revoke_token(ledger, "gone", actor=OPS)
    made["revoked"] = revoked
    expired = "mlp_" + "e" * 43
    TokenTable(ledger.store).add(
        TokenRow(
            "old", "admin", hashlib.sha256(expired.encode()).digest(), EXPIRED_AT, EXPIRED_AT
        )
    )
    made["expired"] = expired
    return made


@contextmanager
def serving(cwd: Path, store: str | None = None, **env: str) -> Iterator[Served]:
    """`mlprov serve` in `cwd` (its ledger, or `store`), until the block ends."""
    assert MLPROV is not None
    port = free_port()
    log_file = cwd / "server.log"
    args = [MLPROV, "serve", "--port", str(port)] + (["--store", store] if store else [])
    environment = cli_env(**env)
    environment["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    with log_file.open("w") as log:
        proc = subprocess.Popen(args, cwd=cwd, env=environment, stdout=log, stderr=log)
    served = Served(f"http://127.0.0.1:{port}/api/v1", log_file)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited {proc.returncode}:\n{served.log()}")
            try:
                if served.call("GET", "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{served.log()}")
            time.sleep(0.1)
        yield served
    finally:
        served.client.close()
        proc.terminate()
        proc.wait(timeout=30)


def build_story(ledger: Ledger) -> None:
    """Tickets of three people, Ann opted out and removed, a dataset, reviews, a build."""
    tickets = pa.table(
        {
            "ticket_id": [1, 2, 3, 4],
            "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
            "text": ["parcel late", "cannot log in", "refund please", "where is my parcel"],
        }
    )
    optouts = pa.table({"email": ["ann@example.com"]})
    with ledger.pipeline("ticket-training", actor="erin@example.com") as p:
        t = p.source(
            tickets,
            "tickets@2026-06-01",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms-2025 §4",
            personal_data=True,
        )
        o = p.source(optouts, "opt-outs@2026-06-01", subject="email", rights_basis="objections")
        kept = p.exclude("opt-out-removal-v1", t, using=o, on="email", purpose="opt-outs")
        p.dataset(kept, "ticket-training", version="v1")
    for source in ("tickets@2026-06-01", "opt-outs@2026-06-01"):
        record_review(ledger, source, "accepted", REVIEWER, actor=REVIEWER)
    ledger.build("ticket-router-v1", dataset="ticket-training", code_version="v1")
    ledger.checkpoint()
