"""Signed-note keys: Go interoperability vectors, round trips, malformed keys, key files."""

from __future__ import annotations

import base64
import json
import os
import stat
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import ConflictError, InputError, KeyFormatError, NotFoundError
from mlprov.ledger.keys import (
    SignerKey,
    VerifierKey,
    key_hash,
    load_signer,
    load_verifier,
    write_keypair,
)

VECTORS = Path(__file__).parent / "vectors" / "note"
KEYS = json.loads((VECTORS / "keys.json").read_text(encoding="utf-8"))
PETER_SKEY = KEYS["signers"][0]["skey"]
PETER_VKEY = KEYS["verifiers"]["PeterNeumann"]["vkey"]
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")

# A valid key name: no whitespace, no '+', no control characters, non-empty.
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Z", "Cc", "Cs"), exclude_characters="+"),
    min_size=1,
    max_size=40,
).filter(lambda n: not any(ch.isspace() for ch in n))
seeds = st.binary(min_size=32, max_size=32)


# --- interoperability with golang.org/x/mod/sumdb/note ---------------------------------


@pytest.mark.parametrize("vector", KEYS["signers"], ids=lambda v: v["vkey"].split("+")[0])
def test_go_signer_key_gives_its_verifier_key(vector: dict[str, str]) -> None:
    signer = SignerKey.parse(vector["skey"])
    assert signer.key_hash == int(vector["key_hash"], 16)
    assert signer.text() == vector["skey"]
    verifier = signer.verifier()
    assert verifier.text() == vector["vkey"]
    assert verifier == VerifierKey.parse(vector["vkey"])
    assert verifier.key_id == f"{signer.name}+{vector['key_hash']}" == signer.key_id
    assert key_hash(verifier.name, verifier.public_key) == signer.key_hash


@pytest.mark.parametrize("name", sorted(KEYS["verifiers"]))
def test_go_verifier_keys_round_trip(name: str) -> None:
    text = KEYS["verifiers"][name]["vkey"]
    key = VerifierKey.parse(text)
    assert key.name == name
    assert key.text() == text


def test_signing_reproduces_go_signature_byte_for_byte() -> None:
    # note_test.go TestSign: Ed25519 is deterministic, so the signature must match exactly.
    text = (
        b"If you think cryptography is the answer to your problem,\n"
        b"then you don't know what your problem is.\n"
    )
    want = base64.b64decode(
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    )
    signer = SignerKey.parse(PETER_SKEY)
    assert want[:4] == signer.key_hash.to_bytes(4, "big")
    assert signer.sign(text) == want[4:]
    assert VerifierKey.parse(PETER_VKEY).verify(text, want[4:])


@pytest.mark.parametrize("vector", KEYS["bad_verifiers"], ids=lambda v: v["problem"])
def test_go_bad_verifier_keys_are_refused(vector: dict[str, str]) -> None:
    with pytest.raises(KeyFormatError, match=vector["problem"]):
        VerifierKey.parse(vector["vkey"])


@pytest.mark.parametrize("text", [PETER_VKEY, PETER_SKEY], ids=["vkey", "skey"])
def test_every_substring_and_byte_change_is_refused(text: str) -> None:
    # The manglings of note_test.go TestNewVerifier / TestNewSigner.
    parse = SignerKey.parse if text.startswith("PRIVATE") else VerifierKey.parse
    for i in range(len(text) + 1):
        for j in range(i + 1, len(text) + 1):
            if (i, j) != (0, len(text)):
                with pytest.raises(KeyFormatError):
                    parse(text[i:j])
    for i in range(len(text)):
        changed = text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :]
        with pytest.raises(KeyFormatError):
            parse(changed)


# --- malformed keys: the message names the problem --------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "three"),
        ("PeterNeumann", "three"),
        ("PeterNeumann+c74f20a3", "three"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "whitespace"),
        ("Peter\x01+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "control"),
        ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n", "base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T=", "base64"),
    ],
)
def test_malformed_verifier_key_messages(text: str, problem: str) -> None:
    with pytest.raises(KeyFormatError, match=problem):
        VerifierKey.parse(text)


def test_private_key_given_as_verifier_is_refused_without_echo() -> None:
    with pytest.raises(KeyFormatError, match="private signer key") as info:
        VerifierKey.parse(PETER_SKEY)
    assert PETER_SKEY.rsplit("+", 1)[1] not in str(info.value)


def test_signer_parse_errors_never_quote_the_key() -> None:
    secret = PETER_SKEY.split("+", 4)[4]
    for bad in (
        PETER_SKEY[:-1],
        PETER_SKEY.replace("c74f20a3", "c74f20a4"),
        PETER_SKEY.replace("PRIVATE+KEY", "PRIVATE+KEX"),
        PETER_SKEY + "A",
    ):
        with pytest.raises(KeyFormatError) as info:
            SignerKey.parse(bad)
        assert secret[:12] not in str(info.value)
        assert secret[:12] not in (info.value.hint or "")


def test_signer_key_hash_mismatch_says_so() -> None:
    with pytest.raises(KeyFormatError, match="does not match its private key"):
        SignerKey.parse(PETER_SKEY.replace("c74f20a3", "c74f20a4"))


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u2003b", "a\nb"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(KeyFormatError, match="name"):
        SignerKey.generate(name)


def test_wrong_lengths_are_refused() -> None:
    with pytest.raises(KeyFormatError, match="32 bytes"):
        key_hash("log", b"\x00" * 31)
    with pytest.raises(KeyFormatError, match="32 bytes"):
        SignerKey("log", 0, b"\x00" * 31)
    signer = SignerKey.generate("log")
    with pytest.raises(KeyFormatError, match="does not match"):
        VerifierKey("log", signer.key_hash ^ 1, signer.verifier().public_key)


# --- behaviour and round trips ----------------------------------------------------------


def test_repr_and_str_hide_the_seed() -> None:
    signer = SignerKey.parse(PETER_SKEY)
    secret_b64 = PETER_SKEY.split("+", 4)[4]
    for shown in (repr(signer), str(signer), repr([signer]), repr({"k": signer})):
        assert "seed" not in shown
        assert signer.seed.hex() not in shown
        assert repr(signer.seed) not in shown
        assert secret_b64 not in shown
    assert "PeterNeumann" in repr(signer)


def test_verify_rejects_wrong_message_signature_and_length() -> None:
    signer = SignerKey.generate("example.com/log")
    verifier = signer.verifier()
    sig = signer.sign(b"hi")
    assert verifier.verify(b"hi", sig)
    assert not verifier.verify(b"hj", sig)
    assert not verifier.verify(b"hi", bytes([sig[0] ^ 1]) + sig[1:])
    assert not verifier.verify(b"hi", sig[:63])
    assert not verifier.verify(b"hi", sig + b"\x00")
    assert not SignerKey.generate("example.com/log").verifier().verify(b"hi", sig)


def test_generated_keys_differ() -> None:
    a, b = SignerKey.generate("log"), SignerKey.generate("log")
    assert a.seed != b.seed
    assert a.key_id != b.key_id or a.verifier() != b.verifier()


@settings(max_examples=75, deadline=None)
@given(name=names, seed=seeds, message=st.binary(max_size=200))
def test_key_round_trips(name: str, seed: bytes, message: bytes) -> None:
    verifier_public = _public(seed)
    signer = SignerKey(name, key_hash(name, verifier_public), seed)
    assert SignerKey.parse(signer.text()) == signer
    verifier = signer.verifier()
    assert verifier.public_key == verifier_public
    assert VerifierKey.parse(verifier.text()) == verifier
    assert load_verifier(verifier.text()) == verifier
    assert verifier.verify(message, signer.sign(message))


def _public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


# --- key files --------------------------------------------------------------------------


def test_write_and_load_keypair(tmp_path: Path) -> None:
    signer = SignerKey.generate("example.com/ledger")
    key_path, pub_path = write_keypair(signer, tmp_path / "keys")
    assert key_path.name == "example.com_ledger.key"
    assert pub_path.name == "example.com_ledger.pub"
    assert key_path.read_text() == signer.text() + "\n"
    assert pub_path.read_text() == signer.verifier().text() + "\n"
    if os.name == "posix":
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_signer(key_path) == signer
        assert load_verifier(pub_path) == signer.verifier()
        assert load_verifier(str(pub_path)) == signer.verifier()
        assert load_verifier(signer.verifier().text() + "\n") == signer.verifier()
    assert sorted(p.name for p in key_path.parent.iterdir()) == [key_path.name, pub_path.name]


@posix_only
def test_private_key_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key_path, _ = write_keypair(SignerKey.generate("log"), tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("existing", [".key", ".pub"])
def test_write_keypair_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / f"log{existing}").write_text("precious\n")
    with pytest.raises(ConflictError, match="already exists"):
        write_keypair(SignerKey.generate("log"), tmp_path)
    assert (tmp_path / f"log{existing}").read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == [f"log{existing}"]


def test_write_keypair_twice_keeps_the_first_key(tmp_path: Path) -> None:
    first = SignerKey.generate("log")
    key_path, _ = write_keypair(first, tmp_path)
    with pytest.raises(ConflictError):
        write_keypair(SignerKey.generate("log"), tmp_path)
    assert load_signer(key_path) == first


def test_hidden_names_stay_in_the_directory_and_traversing_ones_are_refused(
    tmp_path: Path,
) -> None:
    key_path, pub_path = write_keypair(SignerKey.generate(".hidden"), tmp_path)
    assert key_path.parent == tmp_path == pub_path.parent
    assert not key_path.name.startswith(".")
    with pytest.raises(KeyFormatError, match="cannot name a key file"):
        write_keypair(SignerKey.generate("../../etc/x"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_hidden.key", "_hidden.pub"]


def test_load_signer_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(NotFoundError, match="does not exist") as info:
        load_signer(path)
    assert str(path) in info.value.message
    assert "mlprov keys generate" in (info.value.hint or "")


BAD_SIGNER_FILES = [
    (b"", "empty"),
    (b"  \n\n", "empty"),
    (b"\xff\xfe\x00garbage", "not a text key file"),
    (b"hello world\n", "does not hold a private signer key"),
    (PETER_VKEY.encode() + b"\n", "looks like a public verifier key"),
    (PETER_SKEY[:-4].encode() + b"\n", "32 bytes"),
    (PETER_SKEY[:-1].encode() + b"\n", "base64"),
    (PETER_SKEY.replace("c74f20a3", "c74f20a4").encode(), "does not match"),
    (b"PRIVATE+KEY+" + b"A" * 100_000, "too large"),
]


@pytest.mark.parametrize(
    ("content", "problem"), BAD_SIGNER_FILES, ids=[problem for _, problem in BAD_SIGNER_FILES]
)
def test_load_signer_bad_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "log.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFormatError, match=problem) as info:
        load_signer(path)
    assert str(path) in info.value.message
    assert info.value.hint
    assert PETER_SKEY.split("+", 4)[4][:12] not in str(info.value)


def test_load_signer_accepts_go_key_file(tmp_path: Path) -> None:
    path = tmp_path / "peter.key"
    path.write_text(PETER_SKEY + "\n")
    path.chmod(0o600)
    assert load_signer(path).verifier().text() == PETER_VKEY


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620])
def test_load_signer_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    key_path, _ = write_keypair(SignerKey.generate("log"), tmp_path)
    key_path.chmod(mode)
    with pytest.raises(InputError, match="group or others") as info:
        load_signer(key_path)
    assert info.value.hint == f"chmod 600 {key_path}"
    key_path.chmod(0o400)
    assert load_signer(key_path).name == "log"


def test_load_signer_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        load_signer(tmp_path)


def test_load_verifier_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_verifier(tmp_path / "missing.pub")
    with pytest.raises(NotFoundError):
        load_verifier(str(tmp_path / "missing.pub"))
    with pytest.raises(KeyFormatError, match="8 hex digits"):
        load_verifier("PeterNeumann+zzzz+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(KeyFormatError, match="private signer key") as info:
        load_verifier(PETER_SKEY)
    assert PETER_SKEY not in str(info.value)
    secret = tmp_path / "leaked.pub"
    secret.write_text(PETER_SKEY + "\n")
    with pytest.raises(KeyFormatError, match="private signer key") as info:
        load_verifier(secret)
    assert PETER_SKEY.split("+", 4)[4] not in str(info.value)
    empty = tmp_path / "empty.pub"
    empty.write_bytes(b"")
    with pytest.raises(KeyFormatError, match="empty"):
        load_verifier(empty)
