"""The governance commands through the real console script: one incident story, counted
invocations (each costs a fresh interpreter)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import ACTOR, assert_error, mlprov, ok
from tests.test_policy import CHATS, OPTOUT, run

from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger.keys import SignerKey, write_keypair


def test_review_quarantine_check_release_and_status(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        run(ledger, tmp_path)
        record_review(ledger, OPTOUT, "accepted", "carol@example.com")
        assert ledger.location is not None and ledger.location.keys_dir is not None
        write_keypair(SignerKey.generate("carol@example.com"), ledger.location.keys_dir)
    reviewed = ok(
        mlprov(
            "review",
            CHATS,
            "--status",
            "accepted_with_limits",
            "--limit",
            "English tickets only",
            "--reviewer",
            "carol@example.com",
            cwd=tmp_path,
        )
    )
    assert "signed by carol@example.com+" in reviewed  # the reviewer's key, found by name
    held = json.loads(
        ok(
            mlprov(
                "quarantine",
                CHATS,
                "--trigger",
                "opt-out record found in model-review sample",
                "--exit-condition",
                "opt-out-removal evidence and reviewer status attached",
                "--blocked-use",
                "training",
                "--allowed-use",
                "incident-reproduction",
                "--json",
                cwd=tmp_path,
            )
        )
    )
    assert held["actor"] == ACTOR and held["payload"]["allowed_use"] == ["incident-reproduction"]
    blocked = mlprov("check", "train", "--use", "training", cwd=tmp_path)
    assert blocked.returncode == 7, blocked.stderr
    assert "BLOCKED MPG002 quarantined: source chats@2026-05-22 is quarantined" in blocked.stdout
    assert "hint: meet its exit condition" in blocked.stdout
    assert "train@v1 for training: blocked (1 finding)" in blocked.stdout
    assert "note: train is taken as train@v1, its newest version" in blocked.stderr
    premature = mlprov("release", CHATS, "--evidence", held["digest"], cwd=tmp_path)
    assert_error(premature, 5, "not recorded after the quarantine")
    with Ledger.open(cwd=tmp_path) as ledger:
        evidence = record_review(ledger, CHATS, "accepted", "carol@example.com").digest
    ok(mlprov("release", CHATS, "--evidence", evidence.hex[:12], "--note", "re-run", cwd=tmp_path))
    clear = json.loads(ok(mlprov("check", "train", "--json", cwd=tmp_path)))
    assert clear["clear"] is True and clear["findings"] == [] and clear["use"] == "training"
    status = json.loads(ok(mlprov("status", CHATS, "--json", cwd=tmp_path)))
    assert status["state"] == "accepted" and status["release"] is not None
    assert status["history"][-1] == status["release"] and status["signature"] == {
        "verdict": "unsigned",
        "key": None,
    }
