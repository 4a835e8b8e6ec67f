"""What a new user reads in an 80-column terminal, through the real console script: hints in
the command line's own words, no warning the user did not cause, nothing cut or split."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.test_cli import assert_error, mlprov, ok
from tests.test_policy import CHATS, OPTOUT, run

from mlprov.facade import Ledger

COLUMNS = "80"
LONG_SOURCE = "support-chat-export@2026-05-22"
LONG_BUILD = "support-classifier-incident-review-v7"


def narrow(*args: str | Path, cwd: Path) -> str:
    return ok(mlprov(*args, cwd=cwd, COLUMNS=COLUMNS))


def assert_fits(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > int(COLUMNS)]
    assert not wide, f"lines wider than {COLUMNS} columns: {wide}"


def uncovered(home: Path) -> list[str]:
    report = json.loads(narrow("verify", "--json", cwd=home))
    assert report["ok"] is True
    assert report["covered"] == report["events"]
    return [w for w in report["warnings"] if "not covered" in w]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    with Ledger.init(tmp_path) as ledger:
        run(ledger, tmp_path, optout=OPTOUT)
    (tmp_path / "model.bin").write_bytes(b"weights")
    return tmp_path


def test_a_blocked_build_hints_at_force_and_a_forced_one_leaves_nothing_uncovered(
    home: Path,
) -> None:
    blocked = mlprov("build", LONG_BUILD, "--dataset", "train@v1", cwd=home)
    _, hint = assert_error(blocked, 7, "is blocked")
    assert "--force" in hint and "force=True" not in hint
    narrow(
        "build", LONG_BUILD, "--dataset", "train", "--artifact", "model.bin", "--force", cwd=home
    )
    assert uncovered(home) == []


def test_review_leaves_nothing_uncovered(home: Path) -> None:
    narrow("review", CHATS, "--status", "accepted", "--reviewer", "carol@example.com", cwd=home)
    assert uncovered(home) == []


def test_a_csv_without_schema_hints_at_the_option(home: Path) -> None:
    (home / "tickets.csv").write_text("id,text\n1,hello\n")
    failed = mlprov("fingerprint", "tickets.csv", "--name", "tickets@1", cwd=home)
    _, hint = assert_error(failed, 3, "needs a schema")
    assert "--schema" in hint and "pyarrow" not in hint and "schema=" not in hint
    narrow(
        "fingerprint",
        "tickets.csv",
        "--name",
        "tickets@1",
        "--schema",
        '{"id": "int64", "text": "string"}',
        cwd=home,
    )
    assert uncovered(home) == []  # fingerprint records, and signs what it recorded


def test_why_without_a_selector_is_a_usage_error(home: Path) -> None:
    _, hint = assert_error(mlprov("why", "--model", "train", cwd=home), 2, "exactly one of")
    assert "mlprov why --help" in hint


def test_triage_at_80_columns_cuts_and_splits_nothing(home: Path) -> None:
    narrow("review", CHATS, "--status", "accepted_with_limits", "--limit", "English only", cwd=home)
    narrow("review", OPTOUT, "--status", "accepted", cwd=home)
    narrow(
        "build", LONG_BUILD, "--dataset", "train", "--artifact", "model.bin", "--force", cwd=home
    )
    text = narrow("triage", LONG_BUILD, cwd=home)
    assert_fits(text)
    words = set(text.split())
    for whole in (LONG_BUILD, CHATS, OPTOUT, "accepted_with_limits", "opt-out-removal-v2"):
        assert any(whole in w for w in words), f"{whole} is cut or split"
    for answer in ("yes", "no", "partially", "unknown"):
        assert not re.search(rf"\b{answer[:-1]}\n", text)  # no answer broken off
    for short in re.findall(r"\b[0-9a-f]{12}…", text):  # a shortened id says how to see it whole
        assert "--json" in text, short
    found = json.loads(narrow("triage", LONG_BUILD, "--json", cwd=home))
    with Ledger.open(cwd=home) as ledger:
        build = ledger.get(found["target"])
    payload = build.event.payload
    explained = next(r for r in found["rows"] if r["question"].startswith("Can the model"))
    assert str(build.digest) in explained["evidence"]  # whole, as every id in the JSON
    assert payload["artifact_digest"] in explained["evidence"]
    assert payload["dataset"] in explained["evidence"]
    for row in found["rows"]:
        for digest in re.findall(r"sha256:[0-9a-f]*", row["evidence"]):
            assert len(digest) == len("sha256:") + 64, f"a clipped id in JSON: {digest}"


def test_log_why_and_check_fit_80_columns(home: Path) -> None:
    narrow(
        "build", LONG_BUILD, "--dataset", "train", "--artifact", "model.bin", "--force", cwd=home
    )
    log = narrow("log", cwd=home)
    assert_fits(log)
    assert LONG_BUILD in log and "opt-out-removal-v2" in log
    why = narrow("why", "--model", LONG_BUILD, "--subject", "u3@example.com", cwd=home)
    assert_fits(why)
    check = mlprov("check", "train", cwd=home, COLUMNS=COLUMNS)
    assert check.returncode == 7
    assert_fits(check.stdout)
    assert_fits(narrow("verify", cwd=home))
