"""The record commands through the real console script: fingerprint, prove, check-proof, diff."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlprov.ledger import Ledger
from mlprov.records.canonical import record_digest


def mlprov(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLPROV_STORE"}
    env["MLPROV_ACTOR"] = "tester@example.com"
    return subprocess.run(
        ["mlprov", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def rows(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"ticket_id": i, "text": f"ticket {i}: my invoice is wrong", "customer": f"C-{i % 40}"}
        for i in range(start, start + count)
    ]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("records")
    assert mlprov("init", cwd=root).returncode == 0
    pq.write_table(pa.Table.from_pylist(rows(500)), root / "v1.parquet")
    pq.write_table(pa.Table.from_pylist(rows(480, start=30)), root / "v2.parquet")
    for version in ("v1", "v2"):
        run = mlprov(
            "fingerprint",
            f"{version}.parquet",
            "--name",
            f"chats@{version}",
            "--key",
            "ticket_id",
            "--subject",
            "customer",
            "--rights-basis",
            "contract-17",
            "--json",
            cwd=root,
        )
        assert run.returncode == 0, run.stderr
    yield root


def test_fingerprint_records_a_source_with_its_record_set(home: Path) -> None:
    with Ledger.open(cwd=home) as ledger:
        entry = next(ledger.entries(name="chats@v1"))
        payload = entry.event.payload
        records = ledger.record_set("chats@v1")
        assert payload["record_count"] == 500 and records.size == 500
        assert payload["record_root"] == "sha256:" + records.root.hex()
        assert payload["rights_basis"] == "contract-17"
        first = rows(1)[0]
        assert record_digest(first) in records
        # subjects are keyed hashes; the clear customer id is nowhere in the store
        assert b"C-1" not in (home / ".mlprov" / "ledger.db").read_bytes()
        assert len(records.subjects()) == 40


def test_prove_by_record_key_and_subject_and_check(home: Path) -> None:
    record = json.dumps(rows(1, start=7)[0])
    inside = mlprov("prove", "--in", "chats@v1", "--record", record, "--out", "in.json", cwd=home)
    assert inside.returncode == 0, inside.stderr
    proof = json.loads((home / "in.json").read_text())
    assert proof["format"] == "mlprov.record-membership/v1"
    with Ledger.open(cwd=home) as ledger:
        root = ledger.record_set("chats@v1").root.hex()
    checked = mlprov("check-proof", "in.json", "--root", root, "--json", cwd=home)
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True

    by_key = mlprov("prove", "--in", "chats@v1", "--key", "7", cwd=home)
    assert json.loads(by_key.stdout)["digest"] == proof["digest"]

    by_subject = mlprov(
        "prove", "--in", "chats@v1", "--subject", " C-7 ", "--out", "s.json", cwd=home
    )
    assert by_subject.returncode == 0, by_subject.stderr
    assert len(json.loads((home / "s.json").read_text())) == 500 // 40 + 1  # C-7's tickets
    assert mlprov("check-proof", "s.json", "--root", root, cwd=home).returncode == 0


def test_a_removed_record_is_proven_absent(home: Path) -> None:
    removed = json.dumps(rows(1, start=3)[0])  # in v1, not in v2
    out = mlprov("prove", "--in", "chats@v2", "--record", removed, "--out", "out.json", cwd=home)
    assert out.returncode == 0, out.stderr
    proof = json.loads((home / "out.json").read_text())
    assert proof["format"] == "mlprov.record-non-membership/v1"
    with Ledger.open(cwd=home) as ledger:
        v2 = ledger.record_set("chats@v2").root.hex()
        v1 = ledger.record_set("chats@v1").root.hex()
    assert mlprov("check-proof", "out.json", "--root", v2, cwd=home).returncode == 0
    # checked against another set's root, it fails as an integrity failure
    wrong = mlprov("check-proof", "out.json", "--root", v1, cwd=home)
    assert wrong.returncode == 10 and "Traceback" not in wrong.stderr


def test_tampered_proof_fails(home: Path) -> None:
    mlprov("prove", "--in", "chats@v1", "--key", "9", "--out", "t.json", cwd=home)
    proof = json.loads((home / "t.json").read_text())
    proof["path"][0] = ("0" if proof["path"][0][0] != "0" else "1") + proof["path"][0][1:]
    (home / "t.json").write_text(json.dumps(proof))
    run = mlprov("check-proof", "t.json", cwd=home)
    assert run.returncode == 10
    assert run.stderr.count("\n") == 2 and run.stderr.startswith("error:")


def test_sets_diff(home: Path) -> None:
    run = mlprov("sets", "diff", "chats@v1", "chats@v2", "--json", cwd=home)
    assert run.returncode == 0, run.stderr
    change = json.loads(run.stdout)
    assert (change["added"], change["removed"]) == (10, 30)  # 500..509 in, 0..29 out
    ids = {r["ticket_id"] for r in rows(30)}
    assert {bytes.fromhex(h) for h in change["removed_records"]} == {
        record_digest(r) for r in rows(500) if r["ticket_id"] in ids
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "nope"], "has no column 'nope'"),
        (["--key", "customer"], "have the same key"),
        (["--subject", "nope"], "has no column 'nope'"),
        (["--name", "no-version"], "is not NAME@VERSION"),
    ],
)
def test_bad_fingerprint_input_records_nothing(home: Path, args: list[str], message: str) -> None:
    with Ledger.open(cwd=home) as ledger:
        before = ledger.size
    base = ["fingerprint", "v1.parquet"]
    if "--name" not in args:
        base += ["--name", "chats@bad"]
    run = mlprov(*base, *args, cwd=home)
    assert run.returncode == 3, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    with Ledger.open(cwd=home) as ledger:
        assert ledger.size == before


def test_missing_and_unknown_targets(home: Path) -> None:
    assert mlprov("fingerprint", "absent.parquet", "--name", "x@1", cwd=home).returncode == 3
    unknown = mlprov("prove", "--in", "nothing@1", "--key", "1", cwd=home)
    assert unknown.returncode == 3 and "no source or dataset" in unknown.stderr
    no_key = mlprov("prove", "--in", "chats@v1", "--key", "99999", cwd=home)
    assert no_key.returncode == 3 and "cannot be proven absent" in no_key.stderr
