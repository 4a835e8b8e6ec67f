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

from mlprov.facade import Ledger
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
    assert proof["format"] == "mlprov.record-membership/v2"
    assert proof["kind"] == "record"
    with Ledger.open(cwd=home) as ledger:
        root = ledger.record_set("chats@v1").root.hex()
    checked = mlprov("check-proof", "in.json", "--root", root, "--json", cwd=home)
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True

    by_key = mlprov("prove", "--in", "chats@v1", "--key", "7", cwd=home)
    member, pair = json.loads(by_key.stdout)  # the record is in, and it carries the key
    assert member["digest"] == proof["digest"]
    assert (pair["format"], pair["kind"], pair["key"]) == ("mlprov.record-pair/v1", "key", "7")
    assert pair["digest"] == proof["digest"]

    text = mlprov("check-proof", "in.json", "--root", root, cwd=home)
    assert text.returncode == 0 and f"record {proof['digest'][:16]}… IN set" in text.stdout


def subject_hash(home: Path, subject: str) -> str:
    with Ledger.open(cwd=home) as ledger:
        return ledger.subject_hasher().hash(subject).hex()


def test_prove_a_present_subject_in(home: Path) -> None:
    run = mlprov("prove", "--in", "chats@v1", "--subject", " C-7 ", "--out", "s.json", cwd=home)
    assert run.returncode == 0, run.stderr
    assert "1 subject membership proof" in run.stderr
    proof = json.loads((home / "s.json").read_text())  # one proof, of the subject's hash
    assert proof["format"] == "mlprov.record-membership/v2"
    assert proof["kind"] == "subject"
    assert proof["digest"] == subject_hash(home, "C-7")
    with Ledger.open(cwd=home) as ledger:
        root = ledger.record_set("chats@v1").root.hex()
    checked = mlprov("check-proof", "s.json", "--root", root, cwd=home)
    assert checked.returncode == 0, checked.stderr
    assert f"subject {proof['digest'][:16]}… IN set {root[:16]}…" in checked.stdout
    as_json = mlprov("check-proof", "s.json", "--root", root, "--json", cwd=home)
    [result] = json.loads(as_json.stdout)["proofs"]
    assert (result["kind"], result["in"]) == ("subject", True)


def test_prove_an_absent_subject_out(home: Path) -> None:
    run = mlprov("prove", "--in", "chats@v1", "--subject", "C-999", "--out", "no.json", cwd=home)
    assert run.returncode == 0, run.stderr
    proof = json.loads((home / "no.json").read_text())
    assert proof["format"] == "mlprov.record-non-membership/v2"
    assert proof["kind"] == "subject"
    assert proof["digest"] == subject_hash(home, "C-999")
    with Ledger.open(cwd=home) as ledger:
        root = ledger.record_set("chats@v1").root.hex()
    checked = mlprov("check-proof", "no.json", "--root", root, cwd=home)
    assert checked.returncode == 0, checked.stderr
    assert f"subject {proof['digest'][:16]}… NOT IN set {root[:16]}…" in checked.stdout
    # the same statement about records (the kind flipped) does not verify
    (home / "flipped.json").write_text(json.dumps({**proof, "kind": "record"}))
    flipped = mlprov("check-proof", "flipped.json", "--root", root, cwd=home)
    assert flipped.returncode == 10 and "Traceback" not in flipped.stderr


def test_an_erased_subject_is_proven_absent_from_the_next_version(home: Path) -> None:
    """C-5 is in v2; v3 is v2 with all of C-5's records removed: C-5 is provably not in v3."""
    kept = [r for r in rows(480, start=30) if r["customer"] != "C-5"]
    pq.write_table(pa.Table.from_pylist(kept), home / "v3.parquet")
    run = mlprov(
        "fingerprint",
        "v3.parquet",
        "--name",
        "chats@v3",
        "--key",
        "ticket_id",
        "--subject",
        "customer",
        cwd=home,
    )
    assert run.returncode == 0, run.stderr
    with Ledger.open(cwd=home) as ledger:
        v2, v3 = ledger.record_set("chats@v2"), ledger.record_set("chats@v3")
    hashed = bytes.fromhex(subject_hash(home, "C-5"))
    assert v2.has_subject(hashed) and not v3.has_subject(hashed)
    assert v3.subject_count == 39
    before = mlprov("prove", "--in", "chats@v2", "--subject", "C-5", cwd=home)
    assert json.loads(before.stdout)["format"] == "mlprov.record-membership/v2"
    after = mlprov("prove", "--in", "chats@v3", "--subject", "C-5", "--out", "gone.json", cwd=home)
    assert after.returncode == 0, after.stderr
    proof = json.loads((home / "gone.json").read_text())
    assert (proof["format"], proof["kind"]) == ("mlprov.record-non-membership/v2", "subject")
    ok = mlprov("check-proof", "gone.json", "--root", v3.root.hex(), cwd=home)
    assert ok.returncode == 0 and "NOT IN" in ok.stdout
    wrong = mlprov("check-proof", "gone.json", "--root", v2.root.hex(), cwd=home)
    assert wrong.returncode == 10


def test_a_removed_record_is_proven_absent(home: Path) -> None:
    removed = json.dumps(rows(1, start=3)[0])  # in v1, not in v2
    out = mlprov("prove", "--in", "chats@v2", "--record", removed, "--out", "out.json", cwd=home)
    assert out.returncode == 0, out.stderr
    proof = json.loads((home / "out.json").read_text())
    assert proof["format"] == "mlprov.record-non-membership/v2"
    with Ledger.open(cwd=home) as ledger:
        v2 = ledger.record_set("chats@v2").root.hex()
        v1 = ledger.record_set("chats@v1").root.hex()
    assert mlprov("check-proof", "out.json", "--root", v2, cwd=home).returncode == 0
    # checked against another set's root, it fails as an integrity failure
    wrong = mlprov("check-proof", "out.json", "--root", v1, cwd=home)
    assert wrong.returncode == 10 and "Traceback" not in wrong.stderr


def test_tampered_proof_fails(home: Path) -> None:
    mlprov("prove", "--in", "chats@v1", "--key", "9", "--out", "t.json", cwd=home)
    proof, _pair = json.loads((home / "t.json").read_text())
    proof["path"][0] = ("0" if proof["path"][0][0] != "0" else "1") + proof["path"][0][1:]
    (home / "t.json").write_text(json.dumps(proof))
    run = mlprov("check-proof", "t.json", cwd=home)
    assert run.returncode == 10
    assert run.stderr.count("\n") == 2 and run.stderr.startswith("error:")


def pairs_root(home: Path, name: str) -> str:
    with Ledger.open(cwd=home) as ledger:
        return str(next(ledger.entries(name=name)).event.payload["pairs_root"])


def test_a_key_pair_proof_is_checked_against_the_pairs_root(home: Path) -> None:
    run = mlprov("prove", "--in", "chats@v1", "--key", "12", "--out", "k.json", cwd=home)
    assert run.returncode == 0, run.stderr
    assert "record membership proof" in run.stderr and "key pair proof" in run.stderr
    _, pair = json.loads((home / "k.json").read_text())
    root = pairs_root(home, "chats@v1").removeprefix("sha256:")
    assert pair["root"] == root and pair["digest"] == record_digest(rows(1, 12)[0]).hex()
    (home / "pair.json").write_text(json.dumps(pair))
    ok = mlprov("check-proof", "pair.json", "--pairs-root", root, cwd=home)
    assert ok.returncode == 0, ok.stderr
    assert f"record {pair['digest'][:16]}… with key 12 IN pairs {root[:16]}…" in ok.stdout
    # another set's pairs root (v2 holds ticket 12 too, with other rows around it)
    other = pairs_root(home, "chats@v2").removeprefix("sha256:")
    assert other != root
    moved = mlprov("check-proof", "pair.json", "--pairs-root", other, cwd=home)
    assert moved.returncode == 10 and "Traceback" not in moved.stderr


def test_a_pair_with_another_key_or_subject_is_refused(home: Path) -> None:
    """The record of ticket 12 carries key 12 and names C-12: a proof altered to say it
    carries key 13, or names C-13, does not verify."""
    mlprov("prove", "--in", "chats@v1", "--key", "12", "--out", "k.json", cwd=home)
    _, pair = json.loads((home / "k.json").read_text())
    (home / "wrong-key.json").write_text(json.dumps({**pair, "key": "13"}))
    run = mlprov("check-proof", "wrong-key.json", cwd=home)
    assert run.returncode == 10 and "is not the pair at index" in run.stderr
    with Ledger.open(cwd=home) as ledger:
        records = ledger.open_record_set("chats@v1")
        root = bytes.fromhex(pairs_root(home, "chats@v1").removeprefix("sha256:"))
        digest = record_digest(rows(1, 12)[0])
        named = ledger.subject_hasher().hash("C-12")
        other = ledger.subject_hasher().hash("C-13")
        proof = records.prove_pair("subject", digest, named, root)
        assert records.prove_pair("subject", digest, other, root) is None
    assert proof is not None
    (home / "subject.json").write_text(proof.dumps().decode())
    assert mlprov("check-proof", "subject.json", cwd=home).returncode == 0
    (home / "swapped.json").write_text(
        json.dumps({**json.loads(proof.dumps()), "subject": other.hex()})
    )
    swapped = mlprov("check-proof", "swapped.json", cwd=home)
    assert swapped.returncode == 10 and "is not the pair at index" in swapped.stderr


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
        (["--acquisition", "scraped"], "acquisition"),
        (["--copyright", "maybe"], "copyright"),
        (["--collected", "2024-01"], "is not START..END"),
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
    two = mlprov("prove", "--in", "chats@v1", "--key", "1", "--subject", "C-1", cwd=home)
    # a wrong set of options is a usage error (2), as a missing option is
    assert two.returncode == 2 and "exactly one of" in two.stderr
    none = mlprov("prove", "--in", "chats@v1", cwd=home)
    assert none.returncode == 2 and "exactly one of" in none.stderr


def test_fingerprint_records_the_facts_the_disclosures_ask_for(home: Path) -> None:
    run = mlprov(
        "fingerprint",
        "v1.parquet",
        "--name",
        "chats@facts",
        "--collected",
        "2024-01..ongoing",
        "--acquisition",
        "user",
        "--purpose",
        "answering support requests",
        "--modality",
        "text",
        "--language",
        "en",
        "--language",
        "de",
        "--description",
        "support tickets",
        "--copyright",
        "protected",
        "--no-aggregate-consumer-info",
        cwd=home,
    )
    assert run.returncode == 0, run.stderr
    with Ledger.open(cwd=home) as ledger:
        payload = next(ledger.entries(name="chats@facts")).event.payload
    assert list(payload["collected"]) == ["2024-01", "ongoing"]
    assert (payload["acquisition"], payload["modality"], payload["copyright"]) == (
        "user",
        "text",
        "protected",
    )
    assert list(payload["languages"]) == ["en", "de"]
    assert payload["aggregate_consumer_info"] is False
    assert payload["purpose"] == "answering support requests"
