"""Subjects are stored only as HMAC-SHA256 under a per-ledger secret."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.errors import ConflictError, InputError, KeyFormatError, NotFoundError
from mlprov.facade import Ledger
from mlprov.records.subjects import (
    SECRET_FILE,
    SubjectHasher,
    create_secret,
    load_secret,
    normalise,
)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("  Alice@Example.COM ", "auto", "alice@example.com"),
        ("ALICE@example.com", "email", "alice@example.com"),
        ("C-1042", "auto", "C-1042"),  # ids keep their case
        ("C-1042", "id", "C-1042"),
        ("Jean  \t Dupont", "auto", "Jean Dupont"),
        ("\uff21\uff22", "auto", "AB"),  # NFKC: fullwidth letters
        ("a@b c@d", "auto", "a@b c@d"),  # not an address: case kept
    ],
)
def test_normalise(raw: str, kind: str, expected: str) -> None:
    assert normalise(raw, kind) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "   ", 42])
def test_normalise_refuses(bad: object) -> None:
    with pytest.raises(InputError):
        normalise(bad)  # type: ignore[arg-type]


def test_hash_is_hmac_sha256_of_the_normalised_text() -> None:
    secret = bytes(range(32))
    hasher = SubjectHasher(secret)
    expected = hmac.new(secret, b"alice@example.com", hashlib.sha256).digest()
    assert hasher.hash(" Alice@Example.com") == expected
    assert hasher.hash_many(["alice@example.com", None]) == [expected, None]
    assert "secret" in repr(hasher) and secret.hex() not in repr(hasher)


@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_a_subject_hashes_the_same_however_it_is_spaced(text: str) -> None:
    hasher = SubjectHasher(b"k" * 32)
    assert hasher.hash(f"  {text}  ") == hasher.hash(text)


def test_different_secrets_give_unlinkable_hashes() -> None:
    assert SubjectHasher(b"a" * 32).hash("alice") != SubjectHasher(b"b" * 32).hash("alice")


def test_secret_file(tmp_path: Path) -> None:
    path = create_secret(tmp_path / "keys")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = load_secret(tmp_path / "keys").hash("alice")
    assert load_secret(tmp_path / "keys").hash("alice") == first
    with pytest.raises(ConflictError):
        create_secret(tmp_path / "keys")
    with pytest.raises(NotFoundError, match="no subject secret"):
        load_secret(tmp_path / "elsewhere")
    path.write_text("not hex\n")
    with pytest.raises(KeyFormatError, match="64 hex digits"):
        load_secret(tmp_path / "keys")
    path.write_text("ab" * 8 + "\n")
    with pytest.raises(KeyFormatError, match="32 bytes"):
        load_secret(tmp_path / "keys")


def test_init_creates_the_secret_outside_the_store(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        assert ledger.location is not None and ledger.location.keys_dir is not None
        secret = ledger.location.keys_dir / SECRET_FILE
        assert secret.exists()
        hex_secret = secret.read_text().strip()
    db = (tmp_path / ".mlprov" / "ledger.db").read_bytes()
    assert hex_secret.encode() not in db and bytes.fromhex(hex_secret) not in db


subject_text = st.text(max_size=14) | st.text(" \t\u00a0\u3000\x1c@.aAzZÉİß\uff21", max_size=10)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.none() | subject_text, max_size=25),
    st.sampled_from(["auto", "email", "id"]),
)
def test_a_column_hashes_as_each_value_does(values: list[str | None], kind: str) -> None:
    hasher = SubjectHasher(b"c" * 32)

    def one(v: str | None) -> bytes | None:
        return None if v is None else hasher.hash(v, kind)  # type: ignore[arg-type]

    try:
        want = [one(v) for v in values]
    except InputError:
        with pytest.raises(InputError, match=r"row \d+: a subject is empty"):
            hasher.hash_array(pa.array(values, pa.string()), kind)  # type: ignore[arg-type]
        return
    got = hasher.hash_array(pa.array(values, pa.string()), kind)  # type: ignore[arg-type]
    assert got.type == pa.binary(32)
    assert got.to_pylist() == want


def test_hash_array_of_ids_and_errors() -> None:
    hasher = SubjectHasher(b"c" * 32)
    assert hasher.hash_array(pa.array([7, None, 7])).to_pylist() == [
        hasher.hash("7"),
        None,
        hasher.hash("7"),
    ]
    chunked = pa.chunked_array([pa.array([" A@B.com"]), pa.array(["a@b.com  "])])
    assert hasher.hash_array(chunked).to_pylist() == [hasher.hash("a@b.com")] * 2
    large = pa.array(["A@B.com"], pa.large_string())
    assert hasher.hash_array(large).to_pylist() == [hasher.hash("a@b.com")]
    with pytest.raises(InputError, match="row 2: a subject is empty"):
        hasher.hash_array(pa.array(["a", "b", "   "]))
    with pytest.raises(InputError, match="text, not double"):
        hasher.hash_array(pa.array([1.5]))
