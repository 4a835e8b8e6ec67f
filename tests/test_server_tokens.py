"""`mlprov tokens`: a token is printed once and stored as its SHA-256 only, in a table
outside the ledger's (verify neither reads nor needs it: ADR 0015)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from tests.test_cli import ACTOR, MLPROV, assert_error, mlprov, ok

from mlprov.facade import Ledger
from mlprov.server.tokens import authenticate, create_token, parse_expiry
from mlprov.store import schema
from mlprov.store.tokens import TokenTable

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")


def test_a_token_is_printed_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    ok(mlprov("init", cwd=tmp_path))
    made = mlprov("tokens", "create", "carol@example.com", "--role", "reviewer", cwd=tmp_path)
    token = ok(made).strip()
    assert re.fullmatch(r"mlp_[A-Za-z0-9_-]{43}", token)
    assert "shown this once" in made.stderr and token not in made.stderr
    listed = ok(mlprov("tokens", "list", "--json", cwd=tmp_path))
    assert token not in listed
    [facts] = json.loads(listed)
    assert facts["name"] == "carol@example.com" and facts["state"] == "active"
    assert "hash" not in facts
    db = sqlite3.connect(tmp_path / ".mlprov" / "ledger.db")
    try:
        [(stored,)] = db.execute("SELECT hash FROM mlprov_tokens").fetchall()
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert stored == hashlib.sha256(token.encode()).digest()
    assert token not in dump
    ok(mlprov("tokens", "revoke", "carol@example.com", cwd=tmp_path))
    ok(mlprov("tokens", "revoke", "carol@example.com", cwd=tmp_path))  # once is recorded
    [facts] = json.loads(ok(mlprov("tokens", "list", "--json", cwd=tmp_path)))
    assert facts["state"] == "revoked" and facts["revoked_at"]
    # the grant and the revocation are events, with no secret in them, and checkpointed
    logged = mlprov("log", "--type", "access", "--oldest-first", "--json", cwd=tmp_path)
    events = json.loads(ok(logged))
    assert [(e["payload"]["action"], e["actor"]) for e in events] == [
        ("granted", ACTOR),
        ("revoked", ACTOR),
    ]
    assert events[0]["payload"] == {
        "token": "carol@example.com",
        "action": "granted",
        "role": "reviewer",
    }
    assert token not in dump and stored.hex() not in json.dumps(events)
    ok(mlprov("verify", cwd=tmp_path))
    audit = json.loads(mlprov("audit", "--json", cwd=tmp_path).stdout)
    assert audit["summary"]["covered"] == audit["summary"]["size"] == 2


def test_bad_token_commands_are_refused(tmp_path: Path) -> None:
    ok(mlprov("init", cwd=tmp_path))
    ok(mlprov("tokens", "create", "ci", "--role", "recorder", cwd=tmp_path))
    slash = mlprov("tokens", "create", "../etc", "--role", "admin", cwd=tmp_path)
    assert_error(slash, 3, "token name")
    assert_error(mlprov("tokens", "create", "x", "--role", "root", cwd=tmp_path), 3, "role")
    assert_error(mlprov("tokens", "create", "ci", "--role", "admin", cwd=tmp_path), 5, "ci")
    assert_error(
        mlprov("tokens", "create", "y", "--role", "admin", "--expires", "soon", cwd=tmp_path),
        3,
        "soon",
    )
    assert_error(mlprov("tokens", "revoke", "nobody", cwd=tmp_path), 3, "nobody")
    [facts] = json.loads(ok(mlprov("tokens", "list", "--json", cwd=tmp_path)))
    assert facts["name"] == "ci"  # nothing else was made, and nothing else recorded
    assert len(json.loads(ok(mlprov("log", "--json", cwd=tmp_path)))) == 1


def test_the_token_table_is_outside_the_ledgers_integrity_claim(tmp_path: Path) -> None:
    # what verify checks, column by column, is TABLES; the access list is apart from it
    assert "mlprov_tokens" not in schema.TABLES and "mlprov_tokens" in schema.ACCESS_TABLES
    with Ledger.init(tmp_path) as ledger:
        token, _ = create_token(ledger, "ops", "admin", "12h", actor="root@example.com")
        assert ledger.verify().ok
        table = TokenTable(ledger.store)
        found, _ = authenticate(table, token)
        assert found is not None and found.name == "ops"
        assert authenticate(table, token[:-1] + ("A" if token[-1] != "A" else "B"))[0] is None


def test_expiry_is_a_duration_or_a_future_time() -> None:
    assert parse_expiry("30d") > parse_expiry("12h") > parse_expiry("90m")
    assert parse_expiry("2999-01-01").startswith("2999-01-01T00:00:00")
