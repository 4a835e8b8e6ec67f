"""Malformed input through the command line: each ends in success or an mlprov error with
a documented exit code, never an internal error or a hang, and a failed command records
nothing. The quoted cases run the real console script; the property tests run the same
entry point in this process, so that many examples stay fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.cli import main
from mlprov.facade import Ledger

#: The documented exit codes (README); 1 is an internal error, a bug.
DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 10}
CLI = settings(
    max_examples=25,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def mlprov(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLPROV_STORE"}
    env["MLPROV_ACTOR"] = "tester@example.com"
    return subprocess.run(
        ["mlprov", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with Ledger.init(tmp_path) as ledger:
        del ledger
    table = pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"]})
    pq.write_table(table, tmp_path / "x.parquet")
    pq.write_table(pa.table({"id": [1, 2, 4], "text": ["a", "b", "d"]}), tmp_path / "y.parquet")
    (tmp_path / "x.csv").write_text("id,text\n1,a\n2,b\n")
    yield tmp_path


def run(home: Path, *args: str) -> int:
    """The `mlprov` entry point, in this process, from `home`; its exit code."""
    before, argv, cwd = size(home), sys.argv, os.getcwd()
    sys.argv = ["mlprov", *args]
    os.chdir(home)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        sys.argv = argv
        os.chdir(cwd)
    assert code in DOCUMENTED, f"mlprov {' '.join(args)!r} exited {code}"
    if code != 0:
        assert size(home) == before, f"mlprov {args!r} failed but recorded events"
    return code


def size(home: Path) -> int:
    with Ledger.open(cwd=home) as ledger:
        return ledger.size


def verifies(home: Path) -> bool:
    with Ledger.open(cwd=home) as ledger:
        return ledger.verify().ok


# -- the quoted cases, through the console script --------------------------------------------


def test_a_name_and_version_name_one_content(home: Path) -> None:
    first = mlprov("fingerprint", "x.parquet", "--name", "src@1", "--json", cwd=home)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["recorded"] is True
    again = mlprov("fingerprint", "x.parquet", "--name", "src@1", "--json", cwd=home)
    assert again.returncode == 0 and json.loads(again.stdout)["recorded"] is False
    assert json.loads(again.stdout)["digest"] == json.loads(first.stdout)["digest"]
    other = mlprov("fingerprint", "y.parquet", "--name", "src@1", cwd=home)
    assert other.returncode == 5
    assert "already recorded" in other.stderr and other.stderr.count("sha256:") == 3
    assert "src@NEW-VERSION" in other.stderr
    with Ledger.open(cwd=home) as ledger:
        assert [e.event.name for e in ledger.entries(type="source")] == ["src@1"]
        assert ledger.verify().ok


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["fingerprint", "x.parquet", "--name", "src@   "], "no valid version: it is blank"),
        (["fingerprint", "x.parquet", "--name", "src@1@2"], "no valid version: it contains '@'"),
        (["fingerprint", "x.parquet", "--name", "s@1", "--collected", "foo..bar"], "not a date"),
        (["fingerprint", "x.parquet", "--name", "s@1", "--collected", "2026..2024"], "backwards"),
        (["fingerprint", "x.csv", "--name", "s@1", "--schema", '["id"]'], "JSON object"),
        (["fingerprint", "x.csv", "--name", "s@1", "--schema", '{"id": "int"}'], "no Arrow"),
        (["record", "source", "--payload", '{"name": "a", "name": "b", "version": "1"}'], "twice"),
        (["keys", "generate", "../../evil", "--dir", "k"], "cannot name a key file"),
        (["show", "sha256:xyz"], "is not a digest"),
    ],
)
def test_malformed_values_exit_3_with_the_form_expected(
    home: Path, args: list[str], said: str
) -> None:
    done = mlprov(*args, cwd=home)
    assert done.returncode == 3, done.stderr
    assert said in done.stderr and "hint:" in done.stderr
    assert "internal error" not in done.stderr and size(home) == 0
    assert not (home / "k").exists() or not list((home / "k").iterdir())


def test_check_proof_with_a_malformed_root(home: Path) -> None:
    made = mlprov("fingerprint", "x.parquet", "--name", "src@1", "--key", "id", cwd=home)
    assert made.returncode == 0, made.stderr
    made = mlprov("prove", "--in", "src@1", "--key", "1", "--out", "p.json", cwd=home)
    assert made.returncode == 0, made.stderr
    done = mlprov("check-proof", "p.json", "--root", "xyz", cwd=home)
    assert done.returncode == 3 and "--root 'xyz' is not a SHA-256 digest" in done.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_at_once(home: Path) -> None:
    os.mkfifo(home / "pipe.jsonl")
    os.mkfifo(home / "pipe.parquet")
    for name in ("pipe.jsonl", "pipe.parquet"):
        done = mlprov("fingerprint", name, "--name", "src@1", cwd=home)  # would block
        assert done.returncode == 3 and "is not a regular file" in done.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_bad_input(home: Path) -> None:
    (home / "x.parquet").chmod(0)
    done = mlprov("fingerprint", "x.parquet", "--name", "src@1", cwd=home)
    assert done.returncode == 3 and "cannot read" in done.stderr


def test_a_source_uri_is_its_path_inside_the_project(home: Path, tmp_path_factory: Any) -> None:
    (home / "data").mkdir()
    (home / "x.parquet").rename(home / "data" / "x.parquet")
    outside = tmp_path_factory.mktemp("elsewhere") / "y.parquet"
    (home / "y.parquet").rename(outside)
    assert mlprov("fingerprint", "data/x.parquet", "--name", "a@1", cwd=home).returncode == 0
    assert mlprov("fingerprint", outside, "--name", "b@1", cwd=home).returncode == 0
    given = mlprov("fingerprint", outside, "--name", "c@1", "--uri", "s3://b/y", cwd=home)
    assert given.returncode == 0
    with Ledger.open(cwd=home) as ledger:
        uris = {e.event.name: e.event.payload.get("uri") for e in ledger.entries(type="source")}
    assert uris == {"a@1": "data/x.parquet", "b@1": None, "c@1": "s3://b/y"}


def test_every_command_takes_name_version_and_digest(home: Path) -> None:
    """`prove`, `status`, `sets diff`, `manifest show` and `show` read the same forms."""
    from mlprov.demo.story import DATASET

    script = (
        "import pandas as pd, mlprov\n"
        "df = pd.DataFrame({'id': [1, 2, 3], 'who': ['a@x.com', 'b@x.com', 'c@x.com']})\n"
        "with mlprov.open() as ledger:\n"
        "    for version in ('v7', 'v8'):\n"
        "        with ledger.pipeline('training') as p:\n"
        "            data = p.source(df, 'chats@1', key='id', subject='who')\n"
        "            if version == 'v8':\n"
        "                data = p.exclude('drop-v1', data, where=[True, False, False])\n"
        f"            p.dataset(data, {DATASET!r}, version=version)\n"
    )
    made = subprocess.run([sys.executable, "-c", script], cwd=home, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    prove = mlprov("prove", "--subject", "a@x.com", "--in", f"{DATASET}@v8", cwd=home)
    assert prove.returncode == 0, prove.stderr
    assert json.loads(prove.stdout)["kind"] == "subject"
    for args in (["manifest", "show", f"{DATASET}@v7"], ["status", f"{DATASET}@v7"]):
        done = mlprov(*args, cwd=home)
        assert done.returncode == 0, done.stderr
    diff = mlprov("sets", "diff", f"{DATASET}@v7", f"{DATASET}@v8", "--json", cwd=home)
    assert diff.returncode == 0 and json.loads(diff.stdout)["removed"] == 1
    show = mlprov("show", DATASET, "--json", cwd=home)
    assert show.returncode == 0 and json.loads(show.stdout)["payload"]["version"] == "v8"
    said = " ".join(show.stderr.split())  # the note is wrapped to the terminal
    assert f"{DATASET} is taken as {DATASET}@v8, its newest version" in said
    exact = mlprov("show", f"{DATASET}@v7", "--json", cwd=home)
    digest = json.loads(exact.stdout)["digest"]
    assert "note:" not in exact.stderr
    assert json.loads(mlprov("show", digest[7:19], "--json", cwd=home).stdout)["digest"] == digest
    missing = mlprov("status", f"{DATASET}@v9", cwd=home)
    assert missing.returncode == 3 and f"recorded: {DATASET}@v7, {DATASET}@v8" in missing.stderr


# -- property tests: any value, a documented end ---------------------------------------------


@CLI
@given(JSON.map(json.dumps) | TEXT)
def test_any_payload(home: Path, payload: str) -> None:
    run(home, "record", "source", "--payload", payload)
    assert verifies(home)


@CLI
@given(TEXT, st.sampled_from(["--name", "--collected", "--schema"]))
def test_any_fingerprint_option(home: Path, value: str, option: str) -> None:
    given = {"--name": ["--name", value], "--collected": ["--name", "s@1", "--collected", value]}
    extra = given.get(option, ["--name", "s@2", "--schema", value])
    run(home, "fingerprint", "x.parquet" if option != "--schema" else "x.csv", *extra)
    assert verifies(home)


@CLI
@given(TEXT | st.sampled_from(["src", "src@1", "src@", "sha256:", "abcdef", "x@y@z"]))
def test_any_reference(home: Path, ref: str) -> None:
    if not size(home):
        assert run(home, "fingerprint", "x.parquet", "--name", "src@1", "--key", "id") == 0
    for args in (
        ["show", ref],
        ["status", ref],
        ["prove", "--in", ref, "--key", "1"],
        ["sets", "diff", ref, "src@1"],
        ["manifest", "show", ref],
    ):
        run(home, *args)
    assert verifies(home)


@CLI
@given(TEXT, st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_root_and_proof_file(home: Path, root: str, proof: bytes) -> None:
    (home / "proof.json").write_bytes(proof)
    run(home, "check-proof", "proof.json", "--root", root)
    run(home, "check-proof", "proof.json")
    run(home, "proof", "check", "proof.json")


def _mutations(text: str) -> st.SearchStrategy[str]:
    """`text` with a few characters replaced, cut or added: near misses, not noise."""
    return st.lists(
        st.tuples(st.integers(0, len(text)), st.sampled_from(["", "x", "\n", " ", "+", "0"])),
        min_size=1,
        max_size=3,
    ).map(lambda edits: _apply(text, edits))


def _apply(text: str, edits: list[tuple[int, str]]) -> str:
    for at, put in edits:
        text = text[:at] + put + text[at + 1 :]
    return text


def _note_and_key(home: Path) -> tuple[str, str]:
    with Ledger.open(cwd=home) as ledger:
        note = ledger.checkpoint().serialize().decode()
        pub = next((home / ".mlprov" / "keys").glob("*.pub")).read_text()
    return note, pub


@CLI
@given(st.data())
def test_any_checkpoint_note_and_key_file(home: Path, data: st.DataObject) -> None:
    note, pub = _note_and_key(home) if not (home / "note").exists() else ("", "")
    if note:
        (home / "note").write_text(note)
        (home / "pub").write_text(pub)
    note, pub = (home / "note").read_text(), (home / "pub").read_text()
    (home / "n").write_text(data.draw(_mutations(note) | TEXT, "note"))
    (home / "k.pub").write_text(data.draw(_mutations(pub) | TEXT, "key"))
    run(home, "verify", "--checkpoint", "n")
    run(home, "verify", "--key", "k.pub")


MANIFEST = """\
schema_version: 1
name: training
sources:
  - ref: chats@1
    rights_basis: contract-17
"""


@CLI
@given(_mutations(MANIFEST) | TEXT | JSON.map(json.dumps))
def test_any_manifest(home: Path, text: str) -> None:
    (home / "m.yaml").write_text(text)
    run(home, "manifest", "lint", "m.yaml")
    run(home, "manifest", "record", "m.yaml")
    assert verifies(home)
