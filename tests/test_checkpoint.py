"""Checkpoints as C2SP signed notes: reference vectors, round trips, tampering, bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import CheckpointFormatError, InputError, SignatureError
from mlprov.ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteSignature,
    SignedCheckpoint,
    parse_signed_note,
    sign_checkpoint,
)
from mlprov.ledger.keys import SignerKey, VerifierKey

VECTORS = Path(__file__).parent / "vectors" / "note"
KEYS = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))
BODIES = json.loads((VECTORS / "checkpoint-bodies.json").read_text(encoding="utf-8"))


def vkey(name: str) -> VerifierKey:
    return VerifierKey.parse(KEYS["verifiers"][name]["vkey"])


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


# Fixed keys keep the property tests fast; generated once per session.
SIGNERS = [SignerKey.generate(f"example.com/log{i}") for i in range(3)]
ROOT = hashlib.sha256(b"root").digest()


# --- reference vectors ------------------------------------------------------------------


def test_go_sumdb_checkpoint_parses_and_verifies() -> None:
    data = vector("go-sumdb-checkpoint.note")
    signed = SignedCheckpoint.parse(data)
    assert signed.checkpoint == Checkpoint(
        "go.sum database tree",
        6476701,
        base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="),
    )
    assert signed.serialize() == data
    assert signed.verify([vkey("sum.golang.org")]) == [vkey("sum.golang.org")]
    with pytest.raises(SignatureError, match="none of them a trusted key"):
        signed.verify([vkey("PeterNeumann")])


def test_go_sumdb_checkpoint_with_witness_cosignatures() -> None:
    data = vector("go-sumdb-checkpoint-cosigned.note")
    signed = SignedCheckpoint.parse(data)
    assert [s.name for s in signed.signatures] == [
        "sum.golang.org", "monkeys", "bananas", "witness",
    ]  # fmt: skip
    keys = [vkey(n) for n in ("witness", "sum.golang.org", "bananas", "monkeys")]
    assert signed.verify(keys) == [keys[1], keys[3], keys[2], keys[0]]
    assert signed.verify([vkey("witness")]) == [vkey("witness")]  # others ignored
    assert signed.serialize() == data


def test_c2sp_tlog_checkpoint_example_parses() -> None:
    data = vector("c2sp-tlog-checkpoint-example.note")
    signed = SignedCheckpoint.parse(data)
    assert signed.checkpoint.origin == "example.com/behind-the-sofa"
    assert signed.checkpoint.size == 20852163
    assert signed.checkpoint.root.hex().startswith("0ac5186a")
    assert signed.signatures[0].key_id == "example.com/behind-the-sofa+033de0ae"
    assert signed.serialize() == data
    with pytest.raises(SignatureError):  # no verifier key is published for it
        signed.verify([])


def test_c2sp_signed_note_example_splits_at_the_last_blank_line() -> None:
    text, signatures = parse_signed_note(vector("c2sp-signed-note-example.note"))
    assert (
        text
        == (
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
            "ed è subito sera.\n"
        ).encode()
    )
    assert [s.key_id for s in signatures] == ["quasimodo.example/salvatore+367ba04b"]
    with pytest.raises(CheckpointFormatError):  # a note, but not a checkpoint
        SignedCheckpoint.parse(vector("c2sp-signed-note-example.note"))


def test_go_note_signatures_verify_and_reproduce_byte_for_byte() -> None:
    data = vector("go-note-peterneumann.note")
    text, signatures = parse_signed_note(data)
    peter, enoch = vkey("PeterNeumann"), vkey("EnochRoot")
    assert [s.key_id for s in signatures] == [peter.key_id, enoch.key_id]
    assert peter.verify(text, signatures[0].signature)
    assert enoch.verify(text, signatures[1].signature)
    # note_test.go TestSign: signing the text with the Go signer key gives the same line.
    signer = SignerKey.parse(KEYS["signers"][0]["skey"])
    line = NoteSignature(signer.name, signer.key_hash, signer.sign(text)).line()
    assert text + b"\n" + line == data[: data.index("— EnochRoot".encode())]


def test_go_signed_checkpoint_reproduces_with_go_keys() -> None:
    # Deterministic Ed25519: our signed checkpoint under a Go key re-verifies and is stable.
    signers = [SignerKey.parse(v["skey"]) for v in KEYS["signers"][1:3]]
    checkpoint = Checkpoint("TestParseCheckpoint", 42, ROOT)
    first = sign_checkpoint(checkpoint, signers).serialize()
    assert first == sign_checkpoint(checkpoint, signers).serialize()
    signed = SignedCheckpoint.parse(first)
    assert signed.verify([VerifierKey.parse(v["vkey"]) for v in KEYS["signers"]]) == [
        s.verifier() for s in signers
    ]


@pytest.mark.parametrize("case", BODIES["valid"], ids=lambda c: c["body"][-5:])
def test_reference_checkpoint_bodies(case: dict[str, object]) -> None:
    body = str(case["body"]).encode()
    checkpoint = Checkpoint.parse_body(body)
    assert checkpoint.origin == case["origin"]
    assert checkpoint.size == case["size"]
    assert checkpoint.root == hashlib.sha256(b"\x00" + str(case["root_leaf_of"]).encode()).digest()
    assert list(checkpoint.extensions) == case["extensions"]
    assert checkpoint.body() == body


@pytest.mark.parametrize("case", BODIES["invalid"], ids=lambda c: repr(c["body"][:30]))
def test_reference_bad_checkpoint_bodies(case: dict[str, str]) -> None:
    with pytest.raises(CheckpointFormatError, match=re.escape(case["problem"])):
        Checkpoint.parse_body(case["body"].encode())


# --- malformed notes: the message names the problem -------------------------------------

GOOD = sign_checkpoint(Checkpoint("example.com/log", 7, ROOT), SIGNERS[:1]).serialize()
TEXT, _, SIGS = GOOD.partition(b"\n\n")
TEXT += b"\n"
PETER_LINE = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".encode()  # noqa: E501

MALFORMED = [
    (TEXT, "no blank line"),
    (TEXT + b"\n", "no signature lines"),
    (GOOD[:-1], "does not end with a newline"),
    (b"\xff" + GOOD, "not valid UTF-8"),
    (GOOD.replace(b"\n", b"\r\n"), "U+000D"),
    (b"\x01" + GOOD, "control character U+0001"),
    (GOOD + b"Unexpected line.\n", "does not start with '— '"),
    (GOOD.replace("— ".encode(), b"- "), "does not start with '— '"),
    (TEXT + b"\n- example.com/log0 AAAA\n", "does not start"),
    (TEXT + b"\n" + "— Bad Name AAAAAAA=\n".encode(), "not canonical base64"),
    (TEXT + b"\n" + "— a+b AAAAAAA=\n".encode(), "'+'"),
    (TEXT + b"\n" + "— \n".encode(), "empty"),
    (TEXT + b"\n" + "— name\n".encode(), "not canonical base64"),
    (TEXT + b"\n" + "— name AAAA\n".encode(), "not canonical base64"),  # 3 bytes: no signature
    (TEXT + b"\n" + "— name AAAAAAA\n".encode(), "not canonical base64"),  # no padding
    (TEXT + b"\n" + "— name AAAAAAB=\n".encode(), "not canonical base64"),  # padding bits
    (TEXT + b"\n" + PETER_LINE * (MAX_SIGNATURES + 1), "more than the 100"),
    (b"example.com/log\n07\n" + TEXT.split(b"\n")[2] + b"\n\n" + SIGS, "leading zeros"),
    (b"example.com/log\n+7\n" + TEXT.split(b"\n")[2] + b"\n\n" + SIGS, "tree size"),
    (b"example.com/log\n7\nAAAA\n\n" + SIGS, "3 bytes, not 32"),
    (b"example.com/log\n7\n" + b"A" * 42 + b"B=\n\n" + SIGS, "not canonical base64"),
    (b"example.com/log\n7\n\n" + SIGS, "at least 3"),
    (TEXT + b"\n\n" + SIGS, "extension line 1 is empty"),  # two blank lines: one is text
]


@pytest.mark.parametrize(("data", "problem"), MALFORMED, ids=[p for _, p in MALFORMED])
def test_malformed_signed_checkpoints(data: bytes, problem: str) -> None:
    with pytest.raises(CheckpointFormatError, match=re.escape(problem)) as info:
        SignedCheckpoint.parse(data)
    assert info.value.message


def test_sixteen_to_a_hundred_signatures_are_accepted() -> None:
    # The spec asks for at least 16; like Go, mlprov accepts 100 and no more.
    text, _ = parse_signed_note(GOOD)
    line = NoteSignature("witness", 1, b"x" * 64).line()
    signed = SignedCheckpoint.parse(GOOD + line * (MAX_SIGNATURES - 1))
    assert len(signed.signatures) == MAX_SIGNATURES
    assert signed.verify([SIGNERS[0].verifier()]) == [SIGNERS[0].verifier()]
    with pytest.raises(CheckpointFormatError, match="100"):
        SignedCheckpoint(signed.checkpoint, text, (*signed.signatures, signed.signatures[0]))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "U+000A"),
        ({"origin": "\ud800"}, "not valid Unicode"),
        ({"size": -1}, "uint64"),
        ({"size": 2**64}, "uint64"),
        ({"root": b"\x00" * 31}, "31 bytes"),
        ({"extensions": ("",)}, "extension line 1 is empty"),
        ({"extensions": ("ok", "tab\there")}, "extension line 2"),
    ],
)
def test_invalid_checkpoints_cannot_be_built(kwargs: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"origin": "log", "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(CheckpointFormatError, match=re.escape(problem)):
        Checkpoint(**fields)  # type: ignore[arg-type]


def test_signed_checkpoint_text_must_match_its_checkpoint() -> None:
    signed = SignedCheckpoint.parse(GOOD)
    other = Checkpoint("example.com/log", 8, ROOT)
    with pytest.raises(CheckpointFormatError, match="does not match"):
        SignedCheckpoint(other, signed.text, signed.signatures)
    with pytest.raises(CheckpointFormatError, match="1 to 100"):
        SignedCheckpoint(signed.checkpoint, signed.text, ())


# --- round trips ------------------------------------------------------------------------

line_chars = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
lines = st.text(line_chars, min_size=1, max_size=30)
checkpoints = st.builds(
    Checkpoint,
    origin=lines,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3).map(tuple),
)


@given(checkpoints)
def test_checkpoint_body_round_trip(checkpoint: Checkpoint) -> None:
    body = checkpoint.body()
    assert Checkpoint.parse_body(body) == checkpoint
    assert body.endswith(b"\n") and b"\n\n" not in body


@settings(deadline=None, max_examples=50)
@given(checkpoints, st.lists(st.sampled_from(SIGNERS), min_size=1, max_size=3, unique=True))
def test_signed_checkpoint_round_trip(checkpoint: Checkpoint, signers: list[SignerKey]) -> None:
    signed = sign_checkpoint(checkpoint, signers)
    data = signed.serialize()
    parsed = SignedCheckpoint.parse(data)
    assert parsed == signed
    assert parsed.serialize() == data
    assert parsed.verify([s.verifier() for s in SIGNERS]) == [s.verifier() for s in signers]


# --- attacks ----------------------------------------------------------------------------


def test_every_byte_of_a_signed_checkpoint_is_protected() -> None:
    data = sign_checkpoint(Checkpoint("example.com/log", 12345, ROOT, ("ext",)), SIGNERS[:1])
    raw = data.serialize()
    keys = [SIGNERS[0].verifier()]
    for i in range(len(raw)):
        for mask in (0x01, 0x20, 0x80):
            tampered = raw[:i] + bytes([raw[i] ^ mask]) + raw[i + 1 :]
            with pytest.raises((CheckpointFormatError, SignatureError)):
                SignedCheckpoint.parse(tampered).verify(keys)


def test_flipping_any_signature_bit_is_a_signature_error() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 3, ROOT), SIGNERS[:1])
    keys = [SIGNERS[0].verifier()]
    sig = signed.signatures[0]
    for i in range(len(sig.signature)):
        for bit in range(8):
            bad = bytearray(sig.signature)
            bad[i] ^= 1 << bit
            forged = NoteSignature(sig.name, sig.key_hash, bytes(bad))
            with pytest.raises(
                SignatureError, match=re.escape("invalid signature by example.com/log0")
            ):
                SignedCheckpoint(signed.checkpoint, signed.text, (forged,)).verify(keys)


def test_signature_moved_to_another_checkpoint_fails() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 3, ROOT), SIGNERS[:1])
    for other in (
        Checkpoint("example.com/log", 4, ROOT),
        Checkpoint("example.com/log", 3, hashlib.sha256(b"other").digest()),
        Checkpoint("example.com/log2", 3, ROOT),
        Checkpoint("example.com/log", 3, ROOT, ("extra",)),
    ):
        moved = SignedCheckpoint(other, other.body(), signed.signatures)
        with pytest.raises(SignatureError, match="invalid signature"):
            moved.verify([SIGNERS[0].verifier()])


def test_unknown_and_wrong_hash_signatures() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 3, ROOT), SIGNERS[:1])
    with pytest.raises(SignatureError, match="none of them a trusted key"):
        signed.verify([SIGNERS[1].verifier()])
    with pytest.raises(SignatureError, match="none given"):
        signed.verify([])
    sig = signed.signatures[0]
    rehashed = NoteSignature(sig.name, sig.key_hash ^ 1, sig.signature)
    wrong_hash = SignedCheckpoint(signed.checkpoint, signed.text, (rehashed,))
    with pytest.raises(SignatureError, match="none of them") as info:
        wrong_hash.verify([SIGNERS[0].verifier()])
    assert "same name" in (info.value.hint or "")
    # An impostor with the trusted key's name and hash but another key: the signature fails.
    impostor = SignerKey.generate("example.com/log0")
    forged = NoteSignature(sig.name, sig.key_hash, impostor.sign(signed.text))
    with pytest.raises(SignatureError, match="invalid signature"):
        SignedCheckpoint(signed.checkpoint, signed.text, (forged,)).verify([SIGNERS[0].verifier()])


def test_one_bad_signature_by_a_known_key_rejects_the_note() -> None:
    good = sign_checkpoint(Checkpoint("example.com/log", 3, ROOT), SIGNERS[:2])
    bad_second = NoteSignature(SIGNERS[1].name, SIGNERS[1].key_hash, b"\x00" * 64)
    mixed = SignedCheckpoint(good.checkpoint, good.text, (good.signatures[0], bad_second))
    assert mixed.verify([SIGNERS[0].verifier()]) == [SIGNERS[0].verifier()]  # unknown: ignored
    with pytest.raises(SignatureError, match=re.escape("example.com/log1")):
        mixed.verify([SIGNERS[0].verifier(), SIGNERS[1].verifier()])
    repeated = SignedCheckpoint(good.checkpoint, good.text, (good.signatures[0],) * 2)
    assert repeated.verify([SIGNERS[0].verifier()]) == [SIGNERS[0].verifier()]


def test_clashing_trusted_keys_are_refused() -> None:
    signed = SignedCheckpoint.parse(GOOD)
    real = SIGNERS[0].verifier()
    # A key can't be built with a wrong hash, so simulate a 32-bit hash collision.
    clash = object.__new__(VerifierKey)
    object.__setattr__(clash, "name", real.name)
    object.__setattr__(clash, "key_hash", real.key_hash)
    object.__setattr__(clash, "public_key", SIGNERS[1].verifier().public_key)
    with pytest.raises(InputError, match="both named"):
        signed.verify([real, clash])
    assert signed.verify([real, real]) == [real]


def test_verification_uses_the_stored_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    signed = SignedCheckpoint.parse(GOOD)

    def no_reserialising(self: Checkpoint) -> bytes:
        raise AssertionError("verify must not re-serialise the checkpoint")

    monkeypatch.setattr(Checkpoint, "body", no_reserialising)
    assert signed.verify([SIGNERS[0].verifier()]) == [SIGNERS[0].verifier()]


def test_sign_checkpoint_needs_signers_and_dedupes() -> None:
    checkpoint = Checkpoint("example.com/log", 1, ROOT)
    with pytest.raises(InputError, match="no signer key"):
        sign_checkpoint(checkpoint, [])
    signed = sign_checkpoint(checkpoint, [SIGNERS[0], SIGNERS[0], SIGNERS[1]])
    assert [s.key_id for s in signed.signatures] == [SIGNERS[0].key_id, SIGNERS[1].key_id]
