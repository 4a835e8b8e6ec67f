"""The `mlprov` command line, driven through the real console script.

One ledger is built once per module (`story`) and shared by the read-only checks and by
the failure checks, which also prove that a failed command leaves recorded data untouched.
Every invocation costs a fresh interpreter (~0.4 s), so they are counted: keep it near 40.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlprov.digest import Digest, digest_json
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.keys import load_signer, load_verifier

ROOT = Path(__file__).resolve().parents[1]
MLPROV = shutil.which("mlprov")
ACTOR = "alice@example.com"

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")


# -- running the console script ------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The test run's environment without any MLPROV_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPROV_")}
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "PYTHONIOENCODING"):
        env.pop(var, None)
    env.update(MLPROV_ACTOR=ACTOR, COLUMNS="200", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def mlprov(*args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLPROV or "mlprov", *map(str, args)],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def assert_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> tuple[str, str]:
    """Exit `code`, nothing on stdout, and stderr is exactly one error line and one hint."""
    assert result.returncode == code, (
        f"expected exit {code}, got {result.returncode}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    error, hint = lines
    assert error.startswith("error: ") and len(error) > len("error: "), error
    assert hint.startswith("hint: ") and len(hint) > len("hint: "), hint
    for needle in needles:
        assert needle in error, (needle, error)
    return error, hint


def digest_of(stdout: str) -> Digest:
    return Digest(json.loads(stdout)["digest"])


# -- what a ledger holds -------------------------------------------------------------------


def db_snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, read through a read-only connection."""
    con = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall() for t in tables}
    finally:
        con.close()


def files_snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def no_ledger_above(path: Path) -> bool:
    return not any((p / ".mlprov").is_dir() for p in (path, *path.parents))


# -- the shared story ----------------------------------------------------------------------


@dataclass
class Story:
    root: Path
    init_out: str
    source: Digest  # seq 0; checkpoint at size 1 after it
    step: Digest  # seq 1, parent: source; checkpoint at size 2 after it
    optout: Digest  # seq 2
    dataset: Digest  # seq 3, parents: step and optout; checkpoint at size 4
    records: dict[str, dict[str, object]]
    note: str  # stdout of the last `checkpoint --out`
    note_file: Path
    db: Path
    pub: Path
    before: dict[str, list[tuple[object, ...]]]
    files_before: dict[str, str]

    def assert_untouched(self) -> None:
        assert db_snapshot(self.db) == self.before, "a failed command changed recorded data"
        assert files_snapshot(self.root / ".mlprov") == self.files_before


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    root = tmp_path_factory.mktemp("story")
    init_out = ok(mlprov("init", cwd=root))
    records: dict[str, dict[str, object]] = {}

    def record(key: str, kind: str, payload: dict[str, object], *parents: str) -> Digest:
        args = ["record", kind, "--json", "--payload", json.dumps(payload)]
        for parent in parents:
            args += ["--parent", parent]
        records[key] = json.loads(ok(mlprov(*args, cwd=root)))
        return Digest(str(records[key]["digest"]))

    source = record(
        "source",
        "source",
        {"name": "support-chats", "version": "2026-05-22", "personal_data": True},
    )
    ok(mlprov("checkpoint", cwd=root))  # size 1
    step = record(
        "step",
        "transform",
        {"name": "pii-redaction-v3", "params": {"patterns": ["email", "phone"]}},
        source.hex[:8],  # a unique 8-digit prefix
    )
    ok(mlprov("checkpoint", cwd=root))  # size 2
    optout = record("optout", "source", {"name": "opt-out-list", "version": "3"})
    dataset = record("dataset", "dataset", {"name": "train-v1"}, str(step), optout.hex)
    note_file = root / "checkpoint.txt"
    note = ok(mlprov("checkpoint", "--out", note_file, cwd=root))  # size 4
    db = root / ".mlprov" / "ledger.db"
    (pub,) = (root / ".mlprov" / "keys").glob("*.pub")
    return Story(
        root,
        init_out,
        source,
        step,
        optout,
        dataset,
        records,
        note,
        note_file,
        db,
        pub,
        db_snapshot(db),
        files_snapshot(root / ".mlprov"),
    )


@pytest.fixture(scope="module")
def inclusion_proof(story: Story, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proofs") / "inclusion.json"
    result = mlprov("proof", "inclusion", story.source.hex[:10], "--out", out, cwd=story.root)
    ok(result)
    assert result.stderr.strip() == f"wrote {out}"
    return out


def copy_of(story: Story, dest: Path) -> Path:
    """A separate copy of the story's ledger directory, to damage or to write to."""
    shutil.copytree(story.root / ".mlprov", dest / ".mlprov")
    return dest / ".mlprov" / "ledger.db"


# -- the happy path ------------------------------------------------------------------------


def test_init_creates_the_ledger_directory(story: Story) -> None:
    home = story.root / ".mlprov"
    assert re.match(r"created ledger mlprov/[0-9a-f]{16}\n", story.init_out)
    assert f"sqlite:///{home.resolve() / 'ledger.db'}" in story.init_out
    assert f"  actor  {ACTOR} (from MLPROV_ACTOR)" in story.init_out
    assert story.db.is_file() and (home / "blobs").is_dir()
    (key,) = (home / "keys").glob("*.key")
    assert key.stat().st_mode & 0o777 == 0o600
    assert load_signer(key).verifier() == load_verifier(story.pub)
    assert (home / "keys").stat().st_mode & 0o777 == 0o700


def test_record_resolves_prefix_hex_and_full_parents(story: Story) -> None:
    rec = story.records
    assert [rec[k]["seq"] for k in ("source", "step", "optout", "dataset")] == [0, 1, 2, 3]
    assert rec["source"]["parents"] == []
    assert rec["step"]["parents"] == [story.source]
    assert rec["dataset"]["parents"] == sorted([story.step, story.optout])
    assert {r["actor"] for r in rec.values()} == {ACTOR}  # from MLPROV_ACTOR
    assert rec["source"]["payload"] == {
        "name": "support-chats",
        "version": "2026-05-22",
        "personal_data": True,
    }
    assert rec["step"]["payload"]["params"] == {"patterns": ["email", "phone"]}  # type: ignore[index]


def test_log_text_lists_events_newest_first(story: Story) -> None:
    out = ok(mlprov("log", cwd=story.root))
    order = [story.dataset, story.optout, story.step, story.source]
    positions = [out.index(d.short) for d in order]
    assert positions == sorted(positions)
    for name in ("support-chats@2026-05-22", "pii-redaction-v3", "opt-out-list@3", "train-v1"):
        assert name in out
    assert ACTOR in out


def test_log_json_from_a_subdirectory_finds_the_ledger(story: Story) -> None:
    deep = story.root / "data" / "raw"
    deep.mkdir(parents=True, exist_ok=True)
    entries = json.loads(ok(mlprov("log", "--json", cwd=deep)))
    assert [e["seq"] for e in entries] == [3, 2, 1, 0]
    assert [e["digest"] for e in entries] == [
        story.dataset,
        story.optout,
        story.step,
        story.source,
    ]
    assert entries[0] == story.records["dataset"]
    fields = ("type", "schema_version", "payload", "parents", "actor", "recorded_at")
    for e in entries:  # the digest is the SHA-256 of the canonical JSON of the six fields
        assert digest_json({k: e[k] for k in fields}) == e["digest"]


def test_show_json_has_parents_and_children(story: Story) -> None:
    shown = json.loads(ok(mlprov("show", story.step.hex[:6], "--json", cwd=story.root)))
    assert shown["digest"] == story.step
    assert shown["parents"] == [story.source]
    assert shown["children"] == [story.dataset]
    assert shown["type"] == "transform" and shown["seq"] == 1


def test_trace_json_lists_ancestors_in_log_order(story: Story) -> None:
    traced = json.loads(ok(mlprov("trace", str(story.dataset), "--json", cwd=story.root)))
    assert [e["digest"] for e in traced] == [story.source, story.step, story.optout, story.dataset]
    assert [e["seq"] for e in traced] == [0, 1, 2, 3]


def test_checkpoint_prints_a_signed_note_and_out_writes_the_same_bytes(story: Story) -> None:
    assert story.note_file.read_bytes() == story.note.encode()
    signed = SignedCheckpoint.parse(story.note.encode())
    assert signed.checkpoint.size == 4
    signed.verify([load_verifier(story.pub)])
    lines = story.note.split("\n")
    assert lines[0].startswith("mlprov/") and lines[1] == "4" and lines[3] == ""
    assert lines[4].startswith("— " + lines[0] + " ")


def test_checkpoint_list_json(story: Story) -> None:
    listed = json.loads(ok(mlprov("checkpoint", "--list", "--json", cwd=story.root)))
    # every `record` signs a checkpoint of what it added; `checkpoint` signs one again
    assert [c["size"] for c in listed] == [1, 1, 2, 2, 3, 4, 4]
    key = load_verifier(story.pub)
    for c in listed:
        signed = SignedCheckpoint.parse(c["note"].encode())
        signed.verify([key])
        assert signed.checkpoint.root.hex() == c["root"]
        assert c["signers"] == [key.key_id]
    assert listed[-1]["note"] == story.note


def test_verify_json_through_mlprov_store_from_elsewhere(story: Story, tmp_path: Path) -> None:
    report = json.loads(ok(mlprov("verify", "--json", cwd=tmp_path, MLPROV_STORE=str(story.db))))
    assert report["ok"] is True and report["problems"] == []
    assert (report["events"], report["edges"], report["checkpoints"]) == (4, 3, 7)
    # the keys folder next to the store was found, so every checkpoint signature was checked
    assert report["signatures"] == 7 and report["covered"] == 4
    signed = SignedCheckpoint.parse(story.note.encode())
    assert report["root"] == signed.checkpoint.root.hex()


def test_proof_inclusion_checks_on_its_own_with_the_key(
    story: Story, inclusion_proof: Path, tmp_path: Path
) -> None:
    proof = json.loads(inclusion_proof.read_text())
    assert proof["event"] == story.source and proof["index"] == 0 and proof["tree_size"] == 4
    assert proof["checkpoint"] == story.note  # made against the newest checkpoint covering it
    # checked without any ledger around (tmp_path has no .mlprov/)
    result = mlprov("proof", "check", inclusion_proof, "--key", story.pub, "--json", cwd=tmp_path)
    assert json.loads(ok(result)) == {
        "ok": True,
        "format": "mlprov.inclusion-proof/v1",
        "signature_checked": True,
    }
    unsigned = mlprov("proof", "check", inclusion_proof, "--json", cwd=tmp_path)
    assert json.loads(ok(unsigned))["signature_checked"] is False


def test_proof_consistency_between_checkpoints(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "consistency.json"
    ok(mlprov("proof", "consistency", "1", "2", "--out", out, cwd=story.root))
    proof = json.loads(out.read_text())
    assert (proof["old_size"], proof["new_size"]) == (1, 2)
    assert "old_checkpoint" in proof and "new_checkpoint" in proof
    result = ok(mlprov("proof", "check", out, "--key", story.pub, cwd=tmp_path))
    assert result.strip() == "valid mlprov.consistency-proof/v1"


def test_keys_generate_writes_a_private_and_a_public_key(story: Story, tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    out = ok(mlprov("keys", "generate", "release-signer", "--dir", folder, cwd=story.root))
    private, public = folder / "release-signer.key", folder / "release-signer.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    signer, verifier = load_signer(private), load_verifier(public)
    assert signer.verifier() == verifier
    assert f"verifier {verifier.text()}" in out
    assert signer.text() not in out  # the private key is never printed
    story.assert_untouched()  # --dir: the ledger's own keys folder is left alone


# -- exit code 2: usage --------------------------------------------------------------------


@pytest.fixture(scope="module")
def usage_error(story: Story) -> subprocess.CompletedProcess[str]:
    return mlprov("log", "--bogus", cwd=story.root)


def test_exit_2_unknown_option(story: Story, usage_error: subprocess.CompletedProcess[str]) -> None:
    assert usage_error.returncode == 2
    assert "Traceback" not in usage_error.stderr and usage_error.stdout == ""
    assert "No such option: --bogus" in usage_error.stderr
    assert "mlprov log --help" in usage_error.stderr
    story.assert_untouched()


def test_exit_2_is_one_error_line_and_a_hint(usage_error: subprocess.CompletedProcess[str]) -> None:
    assert_error(usage_error, 2, "--bogus")


# -- exit code 3: bad input or not found ---------------------------------------------------


def unknown_prefix(story: Story) -> str:
    taken = {d.hex[:8] for d in (story.source, story.step, story.optout, story.dataset)}
    return next(p for p in ("00000000", "11111111", "22222222", "33333333") if p not in taken)


def write(path: Path, data: str) -> Path:
    path.write_text(data, encoding="utf-8")
    return path


def tampered_format_proof(story: Story, tmp: Path, inclusion: Path) -> Path:
    proof = json.loads(inclusion.read_text())
    proof["hashes"][0] = proof["hashes"][0].upper()  # the hash form is checked, not just used
    return write(tmp / "upper.json", json.dumps(proof))


Args = Callable[[Story, Path, Path], list[str | Path]]
EXIT_3_CASES: dict[str, tuple[Args, str]] = {
    "unknown-digest-prefix": (
        lambda s, t, i: ["show", unknown_prefix(s)],
        "no event digest starts with",
    ),
    "not-a-digest": (lambda s, t, i: ["show", "sha256:zz"], "'sha256:zz' is not a digest"),
    "no-such-name": (lambda s, t, i: ["show", "zz"], "no event zz in this ledger"),
    "malformed-payload-json": (
        lambda s, t, i: ["record", "transform", "--payload", '{"name": "x",'],
        "not valid JSON",
    ),
    "invalid-payload-field": (
        lambda s, t, i: ["record", "transform", "--payload", '{"name": "pii redaction"}'],
        "invalid transform payload: name",
    ),
    "malformed-key-file": (
        lambda s, t, i: ["verify", "--key", write(t / "bad.pub", "not a key\n")],
        "bad.pub",
    ),
    "malformed-checkpoint-file": (
        lambda s, t, i: ["verify", "--checkpoint", write(t / "bad.note", "size 4\n")],
        "signed note",
    ),
    "malformed-proof-file": (
        lambda s, t, i: ["proof", "check", write(t / "bad.json", "{not json")],
        "bad.json",
    ),
    "tampered-format-proof-file": (
        lambda s, t, i: ["proof", "check", tampered_format_proof(s, t, i)],
        "hashes.0",
    ),
}


@pytest.mark.parametrize("case", list(EXIT_3_CASES))
def test_exit_3_bad_input(story: Story, inclusion_proof: Path, tmp_path: Path, case: str) -> None:
    make_args, needle = EXIT_3_CASES[case]
    result = mlprov(*make_args(story, tmp_path, inclusion_proof), cwd=story.root)
    assert_error(result, 3, needle)
    story.assert_untouched()


# -- exit code 4: the store ----------------------------------------------------------------


def test_exit_4_no_ledger_in_an_empty_directory(tmp_path: Path) -> None:
    if not no_ledger_above(tmp_path):
        pytest.skip("a .mlprov/ directory exists above the test's temporary directory")
    _, hint = assert_error(
        mlprov("log", cwd=tmp_path), 4, "no mlprov ledger", str(tmp_path.resolve())
    )
    assert "mlprov init" in hint
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_exit_4_mlprov_store_is_a_garbage_file(tmp_path: Path) -> None:
    garbage = write(tmp_path / "notes.db", "these are my notes, not a database\n")
    before = garbage.read_bytes()
    assert_error(mlprov("log", cwd=tmp_path, MLPROV_STORE=str(garbage)), 4, "not a SQLite")
    assert garbage.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def make_foreign_db(path: Path, *statements: str) -> bytes:
    con = sqlite3.connect(path)
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()
    return path.read_bytes()


def test_exit_4_mlprov_store_is_a_foreign_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    before = make_foreign_db(
        db, "CREATE TABLE users (id INTEGER, email TEXT)", "INSERT INTO users VALUES (1, 'a@b')"
    )
    result = mlprov(
        "record",
        "source",
        "--payload",
        '{"name": "x", "version": "1"}',
        cwd=tmp_path,
        MLPROV_STORE=str(db),
    )
    assert_error(result, 4, "not an mlprov ledger")
    # byte-identical: not switched to WAL, no tables added, no side files left behind
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]


def test_exit_4_foreign_database_with_an_mlprov_meta_table_is_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    before = make_foreign_db(
        db,
        "CREATE TABLE mlprov_meta (key TEXT, value TEXT)",
        "INSERT INTO mlprov_meta VALUES ('format', 'something-else')",
    )
    assert_error(mlprov("log", cwd=tmp_path, MLPROV_STORE=str(db)), 4, "not an mlprov ledger")
    assert db.read_bytes() == before


def test_exit_4_truncated_ledger(story: Story, tmp_path: Path) -> None:
    db = copy_of(story, tmp_path)
    with db.open("r+b") as fh:
        fh.truncate(5000)  # the header survives, the pages do not
    before = db.read_bytes()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = mlprov("log", cwd=elsewhere, MLPROV_STORE=str(db))
    error, hint = assert_error(result, 4, str(db.resolve()))
    assert "malformed" in error and "backup" in hint
    assert db.read_bytes() == before


# -- exit code 5: refused changes ----------------------------------------------------------


def test_exit_5_unknown_parent(story: Story) -> None:
    stranger = Digest.of_bytes(b"never recorded")
    result = mlprov(
        "record",
        "transform",
        "--payload",
        '{"name": "dedupe-v2"}',
        "--parent",
        str(stranger),
        cwd=story.root,
    )
    assert_error(result, 5, str(stranger), "not in the ledger")
    story.assert_untouched()


def test_exit_5_init_over_an_existing_ledger(story: Story) -> None:
    assert_error(mlprov("init", cwd=story.root), 5, "already exists")
    story.assert_untouched()  # same store, same keys


# -- exit code 6: a missing optional dependency --------------------------------------------


@pytest.fixture(scope="module")
def missing_extra(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    # A package earlier on sys.path that refuses to import stands in for psycopg not being
    # installed; the real console script and the real import machinery do the rest.
    shim = tmp_path_factory.mktemp("no-psycopg")
    (shim / "psycopg").mkdir()
    write(shim / "psycopg" / "__init__.py", "raise ImportError('psycopg is not installed')\n")
    return mlprov(
        "log",
        cwd=shim,
        MLPROV_STORE="postgresql://alice@127.0.0.1:1/ledger",
        PYTHONPATH=str(shim),
    )


def test_exit_6_missing_optional_dependency(
    missing_extra: subprocess.CompletedProcess[str],
) -> None:
    _, hint = assert_error(missing_extra, 6, "'psycopg'", "not installed")
    assert "pip install" in hint


def test_exit_6_hint_names_the_extra(missing_extra: subprocess.CompletedProcess[str]) -> None:
    assert "pip install 'mlprov[postgres]'" in missing_extra.stderr


# -- exit code 10: integrity ---------------------------------------------------------------


def test_exit_10_verify_after_a_body_byte_is_changed(story: Story, tmp_path: Path) -> None:
    db = copy_of(story, tmp_path)
    con = sqlite3.connect(db)
    (body,) = con.execute("SELECT body FROM mlprov_events WHERE seq = 1").fetchone()
    assert b"pii-redaction-v3" in body
    con.execute(
        "UPDATE mlprov_events SET body = ? WHERE seq = 1",
        (body.replace(b"pii-redaction-v3", b"pii-redaction-v4"),),
    )
    con.commit()
    con.close()
    result = mlprov("verify", "--json", cwd=tmp_path)
    assert result.returncode == 10, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert ("digest", 1) in {(p["code"], p["seq"]) for p in report["problems"]}


def test_exit_10_proof_whose_hash_was_altered(
    story: Story, inclusion_proof: Path, tmp_path: Path
) -> None:
    proof = json.loads(inclusion_proof.read_text())
    first = proof["hashes"][0]
    proof["hashes"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    altered = write(tmp_path / "altered.json", json.dumps(proof))
    error, _ = assert_error(mlprov("proof", "check", altered, "--key", story.pub, cwd=tmp_path), 10)
    assert "root" in error


def test_proof_check_with_a_key_requires_a_signed_checkpoint(
    inclusion_proof: Path, story: Story, tmp_path: Path
) -> None:
    proof = json.loads(inclusion_proof.read_text())
    del proof["checkpoint"]
    stripped = write(tmp_path / "unsigned.json", json.dumps(proof))
    result = mlprov("proof", "check", stripped, "--key", story.pub, cwd=tmp_path)
    assert result.returncode in (3, 10), result.stdout


# -- failures found while writing these tests ----------------------------------------------


def test_markup_in_user_input_is_shown_literally(story: Story) -> None:
    assert_error(mlprov("show", "[/x]", cwd=story.root), 3, "'[/x]' is not NAME or NAME@VERSION")


def test_an_actor_with_markup_is_listed_literally(story: Story, tmp_path: Path) -> None:
    copy_of(story, tmp_path)
    payload = '{"name": "x", "version": "1"}'
    ok(mlprov("record", "source", "--payload", payload, cwd=tmp_path, MLPROV_ACTOR="[/x]"))
    assert "[/x]" in ok(mlprov("log", cwd=tmp_path))


def test_log_rejects_a_malformed_time(story: Story) -> None:
    assert_error(mlprov("log", "--since", "last tuesday", cwd=story.root), 3, "last tuesday")


def test_log_of_a_damaged_body_is_not_called_bad_input(story: Story, tmp_path: Path) -> None:
    db = copy_of(story, tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE mlprov_events SET body = ? WHERE seq = 1", (b"{not json",))
    con.commit()
    con.close()
    result = mlprov("log", cwd=tmp_path)
    assert result.returncode in (4, 10)
    assert_error(result, result.returncode)


def test_checkpoint_output_is_bytes_whatever_the_locale(story: Story, tmp_path: Path) -> None:
    copy_of(story, tmp_path)
    out = tmp_path / "cp.txt"
    result = subprocess.run(
        [MLPROV or "mlprov", "checkpoint", "--out", str(out)],
        cwd=tmp_path,
        env=cli_env(PYTHONIOENCODING="ascii"),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == out.read_bytes()


# -- the quickstart ------------------------------------------------------------------------


def test_quickstart_runs(tmp_path: Path) -> None:
    env = cli_env(TMPDIR=str(tmp_path))
    del env["MLPROV_ACTOR"]  # the script sets its own default
    result = subprocess.run(
        ["bash", "examples/quickstart.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"^verified: 12 events, \d+ parent links", result.stdout, re.M)
    assert "support-classifier-training@v1 for training: clear" in result.stdout
    assert re.search(r"removed +key 1 .*\(opt-out-removal-v2\)", result.stdout)
    assert "valid subject" in result.stdout and "NOT IN set" in result.stdout
    (work,) = tmp_path.glob("mlprov-quickstart.*")
    assert (work / ".mlprov" / "ledger.db").is_file() and (work / "ann.json").is_file()
