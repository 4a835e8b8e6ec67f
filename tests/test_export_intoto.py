"""in-toto / SLSA attestations of builds, judged by the format's own libraries:
securesystemslib verifies the DSSE envelope with the ledger's public key (and refuses it
once any byte of the payload or signature changes), and the in-toto attestation protobuf
bindings parse the Statement and its SLSA Provenance v1 predicate strictly."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey
from tests.test_cli import assert_error, mlprov, ok

from mlprov.digest import Digest
from mlprov.errors import InputError, SignatureError
from mlprov.export.attestation import check
from mlprov.export.dsse import Envelope, pae
from mlprov.export.intoto import SET_ROOT, attest, statement
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Entry
from mlprov.ledger.keys import VerifierKey

REVIEWER = "carol@example.com"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TICKETS = pd.DataFrame(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["Parcel LATE", "Cannot log in", "Refund please", "Where is my parcel?"],
    }
)
OPT_OUTS = pd.DataFrame({"email": ["ann@example.com"]})


def fail(_df: pd.DataFrame) -> pd.DataFrame:
    raise ValueError("the tokenizer ran out of memory")


@dataclass
class Built:
    ledger: Ledger
    build: Entry  # gates not run, with a file artifact, eval set, config and commit
    forced: Entry  # forced past a gate, with a directory artifact
    bare: Entry  # no artifact
    folder: Path


def make_ledger(folder: Path, origin: str, version: str) -> Built:
    """A small ledger from the Python pipeline API: a failed run (a step that raised), a
    good run, an eval set, reviews, a build, a forced build and a build with no artifact."""
    ledger = Ledger.init(folder, origin=origin)
    with pytest.raises(ValueError), ledger.pipeline("ticket-training") as p:
        tickets = p.source(
            TICKETS,
            f"tickets@{version}",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms §4 — données",
            personal_data=True,
        )
        p.transform("tokenize-v1", fail, tickets)
    with ledger.pipeline("ticket-training") as p:
        tickets = p.source(
            TICKETS,
            f"tickets@{version}",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms §4 — données",
            personal_data=True,
        )
        optouts = p.source(
            OPT_OUTS, f"opt-outs@{version}", subject="email", rights_basis="objections log"
        )
        kept = p.exclude("opt-out-removal-v1", tickets, using=optouts, on="email")
        lower = p.transform("lowercase-v1", lambda d: d.assign(text=d.text.str.lower()), kept)
        data = p.dataset(lower, "ticket-training", version=f"v1-{version}")
    with ledger.pipeline("heldout") as p:
        p.source(
            TICKETS.head(2), f"heldout@{version}", key="ticket_id", rights_basis="customer-terms §4"
        )
    record_review(
        ledger,
        f"tickets@{version}",
        "accepted_with_limits",
        REVIEWER,
        limits=["English only — ünïcode"],
        risks=["legacy tickets ☂"],
    )
    record_review(ledger, f"opt-outs@{version}", "accepted", REVIEWER)
    model = folder / "model.bin"
    model.write_bytes(b"weights \x00\x01\x02")
    build = ledger.build(
        "ticket-router-v1",
        dataset=data,
        config={"epochs": 3, "lr": 0.1},
        eval_set=f"heldout@{version}",
        artifact=model,
        code_version=COMMIT,
        gates=(),
    )
    record_review(ledger, "ticket-training", "quarantined", REVIEWER, note="held for audit")
    (folder / "model-dir").mkdir()
    (folder / "model-dir" / "config.json").write_text('{"layers": 2}')
    (folder / "model-dir" / "weights.bin").write_bytes(b"\x00" * 64)
    forced = ledger.build(
        "ticket-router-v1.1",
        dataset=data,
        artifact=folder / "model-dir",
        code_version="v1.1",
        force=True,
    )
    bare = ledger.build("ticket-router-dry", dataset=data, code_version="v0", gates=())
    return Built(ledger, build, forced, bare, folder)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return make_ledger(tmp_path_factory.mktemp("intoto"), "ledger.example/données-ü", "été-2026")


def sslib_key(key: VerifierKey) -> SSlibKey:
    return SSlibKey(key.key_id, "ed25519", "ed25519", {"public": key.public_key.hex()})


def public(built: Built) -> VerifierKey:
    return built.ledger.signer().verifier()


def test_the_envelope_verifies_with_securesystemslib_and_pae_is_the_specs(built: Built) -> None:
    envelope = attest(built.ledger, built.build)
    theirs = SslibEnvelope.from_dict(json.loads(envelope.dumps()))
    assert theirs.payload_type == "application/vnd.in-toto+json"
    assert theirs.pae() == pae(envelope.payload_type, envelope.payload)
    assert theirs.payload == envelope.payload  # the exact bytes signed, not re-serialised
    verified = theirs.verify([sslib_key(public(built))], 1)
    assert list(verified) == [public(built).key_id]


def test_every_changed_byte_of_payload_or_signature_fails_both_verifiers(built: Built) -> None:
    envelope = attest(built.ledger, built.build)
    key = public(built)
    sig = envelope.signatures[0]
    positions = sorted({0, 1, len(envelope.payload) // 2, len(envelope.payload) - 1})
    changed = (
        [
            Envelope(envelope.payload_type, _flip(envelope.payload, i), envelope.signatures)
            for i in positions
        ]
        + [
            Envelope(
                envelope.payload_type, envelope.payload, (type(sig)(sig.keyid, _flip(sig.sig, i)),)
            )
            for i in (0, 31, 63)
        ]
        + [Envelope("application/vnd.in-toto+jsoN", envelope.payload, envelope.signatures)]
    )
    for bad in changed:
        with pytest.raises(VerificationError):
            SslibEnvelope.from_dict(bad.to_json()).verify([sslib_key(key)], 1)
        with pytest.raises(SignatureError):
            check(bad.dumps(), key)
    assert check(envelope.dumps(), key).keyid == key.key_id  # the original still verifies


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def test_the_statement_parses_strictly_as_in_toto_and_slsa_protobufs(built: Built) -> None:
    for build in (built.build, built.forced):
        doc = statement(built.ledger, build)
        proto = json_format.ParseDict(doc, statement_pb2.Statement())  # unknown field: error
        Statement.copy_from_pb(proto).validate()
        json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
        assert proto.predicate_type == "https://slsa.dev/provenance/v1"


def test_statement_fields_match_the_ledger(built: Built) -> None:
    ledger, build = built.ledger, built.build
    doc = json.loads(attest(ledger, build).payload)
    p = build.event.payload
    [subject] = doc["subject"]
    assert subject["name"] == "ticket-router-v1"
    assert subject["digest"] == {"sha256": Digest(p["artifact_digest"]).hex}
    assert Digest(p["artifact_digest"]) == Digest.of_bytes(
        (built.folder / "model.bin").read_bytes()
    )
    definition = doc["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {
        "config": {"epochs": 3, "lr": 0.1},
        "codeVersion": COMMIT,
    }
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    manifest = deps["training_manifest"]
    assert manifest["digest"] == {"sha256": Digest(p["manifest_digest"]).hex}
    frozen = ledger.blobs_dir / f"{Digest(p['manifest_digest']).hex}.manifest.json"
    assert Digest.of_bytes(frozen.read_bytes()) == Digest(p["manifest_digest"])
    assert manifest["annotations"]["reviewerStatus"] == "accepted_with_limits"
    assert manifest["annotations"]["unresolvedRisks"] == ["legacy tickets ☂"]
    dataset = ledger.get(p["dataset"])
    data = deps["dataset:ticket-training@v1-été-2026"]
    assert data["digest"] == {SET_ROOT: Digest(dataset.event.payload["record_root"]).hex}
    for ref, role in (("tickets@été-2026", "training_data"), ("opt-outs@été-2026", "opt_out_list")):
        source = ledger.find(ref, ("source",)).entry
        dep = deps["source:" + ref]
        assert dep["digest"] == {SET_ROOT: Digest(source.event.payload["record_root"]).hex}
        assert dep["annotations"]["event"] == str(source.digest)
        assert dep["annotations"]["role"] == role
    assert deps["source:tickets@été-2026"]["annotations"]["reviewStatusAtBuild"] == (
        "accepted_with_limits"
    )
    heldout = ledger.find("heldout@été-2026", ("source",)).entry
    assert deps["eval_set:heldout@été-2026"]["digest"] == {
        SET_ROOT: Digest(heldout.event.payload["record_root"]).hex
    }
    assert deps["config"]["digest"] == {"sha256": Digest(p["config_digest"]).hex}
    assert deps["code"]["digest"] == {"gitCommit": COMMIT}
    run = doc["predicate"]["runDetails"]
    assert run["metadata"] == {
        "invocationId": str(build.digest),
        "finishedOn": build.event.recorded_at,
    }
    assert (
        run["builder"]["id"] == "mlprov://ledger.example/donn%C3%A9es-%C3%BC"
    )  # a URI: UTF-8, percent-encoded
    assert run["byproducts"][0]["digest"] == {"sha256": build.digest.hex}


def test_a_forced_build_says_so_and_a_directory_artifact_says_its_semantics(built: Built) -> None:
    doc = statement(built.ledger, built.forced)
    internal = doc["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["forced"] is True and internal["gate"] == "blocked"
    assert internal["findings"] == list(built.forced.event.payload["findings"])
    assert any(f.startswith("MPG") for f in internal["findings"])
    subject = doc["subject"][0]
    assert subject["annotations"] == {
        "artifactKind": "directory",
        "digestSemantics": "mlprov-artifact/1",
        "files": 2,
    }
    assert "code" not in {
        d["name"] for d in doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    }


def test_a_build_without_an_artifact_is_refused(built: Built) -> None:
    with pytest.raises(InputError, match="recorded no artifact"):
        attest(built.ledger, built.bare)


def test_cli_exports_and_verifies_and_fails_on_a_changed_byte(built: Built) -> None:
    cwd = built.folder
    out = cwd / "router.intoto.json"
    ok(mlprov("export", "intoto", "ticket-router-v1", "--out", out, cwd=cwd))
    pub = next((cwd / ".mlprov" / "keys").glob("*.pub"))
    text = ok(mlprov("attest", "verify", out, "--key", pub, cwd=cwd))
    assert f"verified: signed by {public(built).key_id}" in text
    assert Digest(built.build.event.payload["artifact_digest"]).hex in text
    assert "source:tickets@été-2026" in text and "training_manifest" in text
    data = json.loads(out.read_bytes())
    payload = bytearray(base64.b64decode(data["payload"]))
    payload[payload.index(b"epochs") + 1] ^= 0x20  # "ePochs"
    data["payload"] = base64.b64encode(bytes(payload)).decode()
    bad = cwd / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(data).verify([sslib_key(public(built))], 1)
    assert_error(mlprov("attest", "verify", bad, "--key", pub, cwd=cwd), 10, "does not verify")
    none = cwd / "none.json"
    result = mlprov("export", "intoto", "ticket-router-dry", "--out", none, cwd=cwd)
    assert_error(result, 3, "recorded no artifact")
    assert not none.exists()
