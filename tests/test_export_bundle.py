"""`mlprov export bundle`: the auditor's bundle of a build, checked by a script that imports
only the standard library and `cryptography` (never mlprov): event digests, RFC 9162
inclusion proofs up to the signed checkpoint, the checkpoint's Ed25519 signature, the
attestation's DSSE signature, and the build's artifact digest. A changed byte of an event,
a proof, the checkpoint or the envelope makes it fail, naming what failed."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.test_cli import assert_error, mlprov, ok

from mlprov.demo import Demo
from mlprov.errors import InputError, NotFoundError
from mlprov.facade import Ledger

# The outsider's checker. It knows the formats from their public specifications (RFC 9162,
# C2SP signed notes, DSSE), not from mlprov's code.
CHECKER = r"""
import sys
before = set(sys.modules)  # what the interpreter loaded itself (site's .pth files)
import base64, hashlib, json
from pathlib import Path
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

folder = Path(sys.argv[1])
failures = []

def check(label, fn):
    try:
        fn()
    except Exception as exc:  # each failure is reported, and the others still run
        failures.append(f"{label}: {type(exc).__name__}: {exc}")

def sha256(data):
    return hashlib.sha256(data).hexdigest()

index = json.loads((folder / "bundle.json").read_bytes())
events = {p.stem: p.read_bytes() for p in (folder / "events").glob("*.json")}

def listed_files():
    listed = {f["path"]: f["sha256"] for f in index["files"]}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert present - {"bundle.json", "SHA256SUMS"} == set(listed), "files not listed"
    for path, digest in listed.items():
        assert sha256((folder / path).read_bytes()) == digest, f"{path} differs from the index"

def event_digests():
    for name, body in events.items():
        assert sha256(body) == name, f"event file {name}.json does not hash to its name"

def closed_path():
    for name, body in events.items():
        for parent in json.loads(body)["parents"]:
            assert parent.removeprefix("sha256:") in events, f"{name} names a missing parent"

def vkeys():
    found = {}
    for path in (folder / "keys").glob("*.pub"):
        name, hash_hex, blob = path.read_text().strip().split("+", 2)
        raw = base64.b64decode(blob, validate=True)
        assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
        key_hash = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        assert key_hash.hex() == hash_hex, f"key hash of {path.name} does not match the key"
        found[(name, key_hash)] = Ed25519PublicKey.from_public_bytes(raw[1:])
    return found

keys = vkeys()
note = (folder / "checkpoint.txt").read_bytes()
split = note.rfind(b"\n\n")
text = note[: split + 1]
origin, size_text, root_b64 = text.decode().split("\n")[:3]
size, root = int(size_text), base64.b64decode(root_b64).hex()

def checkpoint_signature():
    good = 0
    for line in note[split + 2 :].decode().splitlines():
        assert line.startswith("\u2014 "), "not a signature line"
        name, blob = line[2:].split(" ")
        raw = base64.b64decode(blob, validate=True)
        key = keys.get((name, raw[:4]))
        if key is not None:
            key.verify(raw[4:], text)  # raises InvalidSignature
            good += 1
    assert good, "no bundled key signed the checkpoint"

def root_from_proof(leaf, index, size, path):
    if index >= size:
        raise ValueError("leaf index beyond the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("proof too short")
    return r

def inclusion():
    proofs = {p.stem: json.loads(p.read_bytes()) for p in (folder / "proofs").glob("*.json")}
    assert set(proofs) == set(events), "not one proof per event"
    for name, proof in proofs.items():
        assert proof["event"] == "sha256:" + name
        assert (proof["tree_size"], proof["root"]) == (size, root), "not at the checkpoint"
        assert proof["checkpoint"].encode() == note, "the proof carries another checkpoint"
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(name)).digest()
        path = [bytes.fromhex(h) for h in proof["hashes"]]
        got = root_from_proof(leaf, proof["index"], proof["tree_size"], path)
        assert got.hex() == root, f"the inclusion proof of {name} does not reach the root"

envelope = json.loads((folder / "attestation.intoto.json").read_bytes())
payload = base64.b64decode(envelope["payload"], validate=True)

def attestation_signature():
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    by_id = {f"{n}+{h.hex()}": k for (n, h), k in keys.items()}
    for sig in envelope["signatures"]:
        by_id[sig["keyid"]].verify(base64.b64decode(sig["sig"], validate=True), pae)

def build_names_artifact():
    build = index["build"]
    body = json.loads(events[build["event"].removeprefix("sha256:")])
    assert body["type"] == "build"
    assert body["payload"]["artifact_digest"] == build["artifact_digest"]
    statement = json.loads(payload)
    subject = statement["subject"][0]["digest"]["sha256"]
    assert "sha256:" + subject == build["artifact_digest"], "the attestation names another model"
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == build["event"]

def record_roots():
    sets = json.loads((folder / "record-sets.json").read_bytes())["record_sets"]
    assert sets, "no record sets"
    for s in sets:
        body = json.loads(events[s["event"].removeprefix("sha256:")])
        assert body["payload"]["record_root"] == s["record_root"]

def prov_events():
    doc = json.loads((folder / "prov.json").read_bytes())
    named = set()
    for kind in ("entity", "activity"):
        for found in doc[kind].values():  # PROV-JSON lists an id's several records
            for element in found if isinstance(found, list) else [found]:
                if "mlprov:event" in element:  # a run is two events: its start and close
                    digests, bodies = element["mlprov:event"], element["mlprov:body"]
                    digests = digests if isinstance(digests, list) else [digests]
                    bodies = bodies if isinstance(bodies, list) else [bodies]
                    names = {d.removeprefix("sha256:") for d in digests}
                    assert {sha256(b.encode()) for b in bodies} == names
                    assert all(events[n] in {b.encode() for b in bodies} for n in names)
                    named |= names
    assert named == set(events), "PROV covers other events than the bundle"

for label, fn in [
    ("index", listed_files),
    ("event digests", event_digests),
    ("closed path", closed_path),
    ("checkpoint signature", checkpoint_signature),
    ("inclusion proofs", inclusion),
    ("attestation signature", attestation_signature),
    ("build artifact", build_names_artifact),
    ("record-set roots", record_roots),
    ("PROV events", prov_events),
]:
    check(label, fn)

assert not any(m.partition(".")[0] == "mlprov" for m in sys.modules), "mlprov was imported"
outside = {m.partition(".")[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)
assert outside <= {"cryptography", "_cffi_backend", "_openssl", "_rust"}, sorted(outside)
for failure in failures:
    print("FAILED", failure)
print(f"checked {len(events)} events at size {size}" if not failures else "")
sys.exit(1 if failures else 0)
"""


def run_checker(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "check_bundle.py"
    script.write_text(CHECKER, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", str(script), str(folder)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    from mlprov.demo import run

    return run(tmp_path_factory.mktemp("bundle") / "incident", lambda _section: None)


@pytest.fixture(scope="module")
def bundle(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "v8-bundle"
    printed = ok(mlprov("export", "bundle", "support-classifier-v8", out, cwd=demo.directory))
    assert printed.startswith(f"wrote {out}: the bundle of build support-classifier-v8 (sha256:")
    return out


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def test_an_outsider_checks_the_bundle_without_mlprov(bundle: Path, tmp_path: Path) -> None:
    result = run_checker(bundle, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(r"checked \d+ events at size \d+\n", result.stdout)
    index = json.loads((bundle / "bundle.json").read_bytes())
    paths = {f["path"] for f in index["files"]}
    assert {"README.md", "checkpoint.txt", "prov.json", "attestation.intoto.json"} <= paths
    assert "croissant/metadata.json" not in paths  # no --data: said, not faked


def test_the_bundle_holds_the_build_path_the_prov_export_covers(demo: Demo, bundle: Path) -> None:
    from mlprov.export.scope import scope_of

    ledger = Ledger.open(cwd=demo.directory)
    size = json.loads((bundle / "bundle.json").read_bytes())["checkpoint"]["size"]
    assert demo.v8 is not None
    scope = scope_of(ledger, demo.v8, size)
    names = {p.stem for p in (bundle / "events").glob("*.json")}
    assert names == {e.digest.hex for e in scope.entries}
    kinds = {e.event.type.value for e in scope.entries}
    assert {"build", "dataset", "transform", "source", "review"} <= kinds


@pytest.mark.parametrize(
    ("what", "failure"),
    [
        ("event", "event digests"),
        ("proof", "inclusion proofs"),
        ("checkpoint", "checkpoint signature"),
        ("envelope", "attestation signature"),
    ],
)
def test_one_changed_byte_fails_the_check(
    bundle: Path, tmp_path: Path, what: str, failure: str
) -> None:
    copy = copy_of(bundle, tmp_path)
    if what == "event":
        path = sorted((copy / "events").iterdir())[0]
        data = bytearray(path.read_bytes())
        data[data.index(b'"actor":"') + 9] ^= 0x01
        path.write_bytes(bytes(data))
    elif what == "proof":
        path = max((copy / "proofs").iterdir(), key=lambda p: len(p.read_bytes()))
        proof = json.loads(path.read_bytes())
        first = proof["hashes"][0]
        proof["hashes"][0] = ("1" if first[0] != "1" else "2") + first[1:]
        path.write_text(json.dumps(proof))
    elif what == "checkpoint":
        path = copy / "checkpoint.txt"
        data = bytearray(path.read_bytes())
        data[0] ^= 0x01  # a letter of the origin: still a well-formed note
        path.write_bytes(bytes(data))
    else:
        path = copy / "attestation.intoto.json"
        envelope = json.loads(path.read_bytes())
        payload = bytearray(base64.b64decode(envelope["payload"]))
        payload[payload.index(b'"sha256":"') + 10] ^= 0x01
        envelope["payload"] = base64.b64encode(bytes(payload)).decode()
        path.write_text(json.dumps(envelope))
    result = run_checker(copy, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED {failure}:" in result.stdout, result.stdout


def test_the_readme_says_how_to_check_each_file(bundle: Path) -> None:
    readme = (bundle / "README.md").read_text(encoding="utf-8")
    index = json.loads((bundle / "bundle.json").read_bytes())
    for needle in (
        "sha256sum -c SHA256SUMS",
        "openssl pkeyutl -verify",
        "RFC 9162",
        "DSSEv1",
        "prov.read(",
        index["build"]["event"],
        index["checkpoint"]["root"],
        "mlprov export bundle BUILD DIR --data FILE",
    ):
        assert needle in readme, needle
    # its inclusion check, run as printed, accepts every proof and refuses a changed one
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    root_from = scope["root_from_proof"]
    for path in (bundle / "proofs").iterdir():
        proof = json.loads(path.read_bytes())
        args = (path.stem, proof["index"], proof["tree_size"], proof["hashes"])
        assert root_from(*args) == bytes.fromhex(index["checkpoint"]["root"])  # type: ignore[operator]
        if proof["hashes"]:
            bad = [("0" if h[0] != "0" else "1") + h[1:] for h in proof["hashes"]]
            assert root_from(*args[:3], bad) != bytes.fromhex(index["checkpoint"]["root"])  # type: ignore[operator]


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "openssl", "jq", "sha256sum", "base64")),
    reason="the README's checks need bash, openssl, jq and coreutils",
)
def test_the_readmes_shell_checks_run_as_printed(bundle: Path, tmp_path: Path) -> None:
    readme = (bundle / "README.md").read_text(encoding="utf-8")
    blocks = [code for kind, code in fenced(readme) if kind == "sh"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def run(folder: Path, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    copy = copy_of(bundle, tmp_path)
    result = run(copy, "\n".join(blocks))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Signature Verified Successfully") == 2, result.stdout
    # a changed byte of the statement: the README's openssl check of the envelope refuses it
    envelope = json.loads((copy / "attestation.intoto.json").read_bytes())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[-2] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    (copy / "attestation.intoto.json").write_text(json.dumps(envelope))
    (attestation,) = [code for code in blocks if "statement.pae" in code]
    refused = run(copy, attestation)
    assert refused.returncode != 0
    assert "Signature Verified Successfully" not in refused.stdout


def fenced(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)


# -- refused: nothing written ---------------------------------------------------------------


def nothing_beside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if ".partial-" in p.name)


def test_an_unknown_build_writes_nothing(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert_error(mlprov("export", "bundle", "no-such-build", out, cwd=demo.directory), 3, "no")
    assert not out.exists() and nothing_beside(out) == []


def test_a_folder_that_is_not_empty_is_refused_and_left_alone(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = mlprov("export", "bundle", "support-classifier-v8", out, cwd=demo.directory)
    assert_error(result, 3, "is not empty")
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and nothing_beside(out) == []


def test_an_empty_folder_is_filled(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    ledger = Ledger.open(cwd=demo.directory)
    made = ledger.export_bundle("support-classifier-v7", out)
    assert (out / "README.md").is_file() and made.events == len(list((out / "events").iterdir()))
    assert nothing_beside(out) == []


# -- a small ledger: the Python face, Croissant in the bundle, and the refusals -----------------

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com"],
        "text": ["My parcel", "I cannot log in", "Please refund"],
    }
)


def fill(ledger: Ledger, home: Path) -> Ledger:
    """A source, a dataset, a build with an artifact and one without."""
    pq.write_table(TICKETS, home / "tickets.parquet")
    with ledger.pipeline("tickets") as p:
        tickets = p.source(
            home / "tickets.parquet",
            "tickets@2026-06-01",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms §4",
            license="CC-BY-4.0",
        )
        dataset = p.dataset(tickets, "ticket-training", version="1.0.0")
    pq.write_table(TICKETS, home / "train.parquet")
    (home / "model.bin").write_bytes(b"weights")
    ledger.build("router", dataset=dataset, artifact=home / "model.bin", force=True)
    ledger.build("dry-run", dataset=dataset, force=True)
    return ledger


@pytest.fixture
def small(tmp_path: Path) -> Ledger:
    """The small ledger on SQLite, in the folder the command line runs in."""
    return fill(Ledger.init(tmp_path / "home"), tmp_path / "home")


@pytest.fixture
def either(store_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """The small ledger on each store: SQLite, and PostgreSQL when a server is given."""
    pg = store_url.startswith("postgresql")
    with Ledger.init(tmp_path / "home", store=store_url if pg else None) as ledger:
        yield fill(ledger, tmp_path / "home")


def test_a_build_no_checkpoint_covers_is_refused(either: Ledger, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no signed checkpoint covers build router") as caught:
        either.export_bundle("router", tmp_path / "out")
    assert caught.value.cli_hint is not None and "mlprov checkpoint" in caught.value.cli_hint
    assert not (tmp_path / "out").exists() and nothing_beside(tmp_path / "out") == []


def test_a_build_without_an_artifact_writes_nothing(small: Ledger, tmp_path: Path) -> None:
    small.checkpoint()
    home = tmp_path / "home"
    result = mlprov("export", "bundle", "dry-run", tmp_path / "out", cwd=home)
    assert_error(result, 3, "recorded no artifact")
    assert not (tmp_path / "out").exists() and nothing_beside(tmp_path / "out") == []


def test_croissant_joins_the_bundle_when_the_data_is_given(either: Ledger, tmp_path: Path) -> None:
    import mlcroissant as mlc

    either.checkpoint()
    out = tmp_path / "out"
    made = either.export_bundle("router", out, data=[tmp_path / "home" / "train.parquet"])
    assert made.croissant
    doc = json.loads((out / "croissant" / "metadata.json").read_bytes())
    mlc.Dataset(jsonld=doc)  # mlcroissant accepts it as it stands in the bundle
    assert doc["distribution"][0]["contentUrl"] == "train.parquet"
    assert (out / "croissant" / "train.parquet").read_bytes() == (
        tmp_path / "home" / "train.parquet"
    ).read_bytes()
    assert run_checker(out, tmp_path).returncode == 0


def test_every_file_stands_at_the_checkpoint(either: Ledger, tmp_path: Path) -> None:
    """Reviews, a quarantine and a build recorded after the checkpoint are in no file of
    the bundle, and its documents agree on the review states as of the checkpoint."""
    from mlprov.governance.review import record_review

    record_review(either, "tickets@2026-06-01", "accepted", "carol@example.com")
    signed = either.checkpoint()
    record_review(either, "ticket-training", "quarantined", "late@example.com", note="LATE")
    record_review(either, "tickets@2026-06-01", "rejected", "late@example.com", note="LATE")
    home = tmp_path / "home"
    either.build("router-late", dataset="ticket-training", artifact=home / "model.bin", force=True)
    late = [e for e in either.entries() if e.seq >= signed.checkpoint.size]
    assert len(late) == 3
    out = tmp_path / "out"
    made = either.export_bundle("router", out, data=[home / "train.parquet"])
    assert made.checkpoint.checkpoint == signed.checkpoint
    envelope = json.loads((out / "attestation.intoto.json").read_bytes())
    texts = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.json")}
    texts["statement"] = base64.b64decode(envelope["payload"])
    for path, text in texts.items():
        for e in late:
            assert e.digest.hex.encode() not in text, f"{path} names a later event"
        for word in (b"late@example.com", b"router-late", b"rejected"):
            assert word not in text, f"{path} says {word.decode()}, recorded after the checkpoint"
    assert len(list((out / "events").iterdir())) == made.events
    # the review states, as of the checkpoint, in PROV and in the Croissant metadata
    doc = json.loads(texts["prov.json"])
    entities = [e for e in doc["entity"].values() if isinstance(e, dict)]
    (source,) = [e for e in entities if "mlprov:reviewStatus" in e]
    (dataset,) = [e for e in entities if "mlprov:reviewerStatus" in e]
    assert source["mlprov:reviewStatus"] == "accepted"
    status = dataset["mlprov:reviewerStatus"]
    croissant = json.loads(texts["croissant/metadata.json"])
    assert croissant["rai:dataUseCases"][0].startswith(f"Training, with reviewer status {status} ")
    assert "quarantined" not in status and "rai:dataLimitations" not in croissant
    assert run_checker(out, tmp_path).returncode == 0


def test_the_python_face_gives_each_format(small: Ledger, tmp_path: Path) -> None:
    from mlprov.export import prov
    from mlprov.export.dsse import Envelope
    from mlprov.export.intoto import statement
    from mlprov.ledger.keys import VerifierKey

    assert small.export("prov", "router") == prov.serialize(prov.document(small, "router"))
    envelope = Envelope.parse(small.export("intoto", "router"))
    key: VerifierKey = small.signer().verifier()
    envelope.verify(key)
    assert json.loads(envelope.payload) == statement(small, "router")
    lines = small.export("openlineage", "ticket-training").decode().splitlines()
    assert [json.loads(line)["eventType"] for line in lines][:1] == ["START"]
    home = tmp_path / "home"
    meta = small.export("croissant", "ticket-training", data=[home / "train.parquet"], base=home)
    assert json.loads(meta)["name"] == "ticket-training"
    with pytest.raises(InputError, match="unknown export format 'yaml'"):
        small.export("yaml", "router")
    with pytest.raises(InputError, match="recorded no artifact"):
        small.export("intoto", "dry-run")


def test_a_failure_while_writing_leaves_no_half_made_folder(small: Ledger, tmp_path: Path) -> None:
    small.checkpoint()
    other = tmp_path / "other.parquet"
    pq.write_table(TICKETS.slice(0, 2).set_column(2, "text", pa.array(["x", "y"])), other)
    out = tmp_path / "out"
    out.mkdir()  # an empty folder stays as it was
    home = tmp_path / "home"
    result = mlprov("export", "bundle", "router", out, "--data", other, cwd=home)
    assert_error(result, 3, "records that are not in dataset ticket-training")
    assert list(out.iterdir()) == [] and nothing_beside(out) == []
