"""Subjects: whom a record concerns, kept only as a keyed hash.

A subject (customer id, e-mail, repository owner) is stored as
HMAC-SHA256(ledger secret, normalised subject) and never in clear: the ledger can answer
"is this person in model X?" without holding who anyone is, and without the secret a
leaked ledger cannot be matched against a list of known e-mails.

The secret is 32 random bytes in `<keys>/subject.secret` (mode 600); like the signing key
it never enters the store, events or exports. Losing it makes every recorded subject
unmatchable; keep it with the signing key.

Normalisation (spec "mlprov-subject/1"), applied before hashing:
1. Unicode NFKC, then surrounding whitespace removed and inner runs of whitespace
   collapsed to one space.
2. An e-mail address (kind "email", or "auto" and the text has exactly one "@" and no
   space) is lower-cased entirely: mail systems treat addresses case-insensitively in
   practice, and an opt-out request rarely repeats the original capitalisation.
3. Any other identifier (kind "id") keeps its case: `C-1042` and `c-1042` may be two
   customers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mlprov.errors import ConflictError, KeyFormatError, NotFoundError
from mlprov.records.subjecttext import Kind, normalise

if TYPE_CHECKING:  # the ledger imports this module and must not need pyarrow
    import pyarrow as pa

__all__ = ["SECRET_FILE", "SPEC", "SubjectHasher", "create_secret", "load_secret", "normalise"]

SPEC = "mlprov-subject/1"
SECRET_FILE = "subject.secret"
_SECRET_BYTES = 32


class SubjectHasher:
    """Keyed hashes of subjects under one ledger's secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _SECRET_BYTES:
            raise KeyFormatError(f"a subject secret is {_SECRET_BYTES} bytes, not {len(secret)}")
        # HMAC (RFC 2104) with the padded-key states computed once: each subject then costs
        # two SHA-256 continuations, a third of `hmac.digest`'s per-call setup.
        self._secret = secret  # for the vectorised HMAC of whole columns
        block = secret.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __repr__(self) -> str:
        return "SubjectHasher(<secret>)"

    def hash(self, value: str, kind: Kind = "auto") -> bytes:
        """HMAC-SHA256 of the normalised subject: 32 raw bytes."""
        inner = self._inner.copy()
        inner.update(normalise(value, kind).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hash_many(
        self,
        values: Iterable[str | None],
        kind: Kind = "auto",
        memo: dict[str, bytes] | None = None,
    ) -> list[bytes | None]:
        """Hashes of many subjects; `None` (no subject) stays `None`.

        A subject usually has many records: each distinct value is hashed once, and `memo`
        (if given) carries the hashes across calls, such as the batches of one file.
        """
        seen = {} if memo is None else memo
        out: list[bytes | None] = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            h = seen.get(v)
            if h is None:
                h = seen[v] = self.hash(v, kind)
            out.append(h)
        return out

    def hash_array(self, values: pa.Array | pa.ChunkedArray, kind: Kind = "auto") -> pa.Array:
        """The hashes of a column of subjects (text or integers) as ``binary(32)``.

        Equal to :meth:`hash` value by value; a null (no subject) stays null. Normalised
        and hashed by Arrow and DuckDB over the whole column, each distinct subject once.
        An empty subject raises InputError naming its row (0-based).
        """
        from mlprov.records.subjectcolumns import normalise_column, subject_text

        return self.hash_normalised(normalise_column(subject_text(values), kind))

    def hash_normalised(self, text: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The hashes of a string column already normalised (``normalise_column``)."""
        from mlprov.records.subjectcolumns import hmac_distinct

        return hmac_distinct(self._secret, text)

    def pads(self) -> tuple[bytes, bytes]:
        """HMAC's inner and outer padded keys (RFC 2104), for an engine that hashes whole
        columns itself; like the secret, they must never be written anywhere."""
        block = self._secret.ljust(64, b"\0")
        return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def create_secret(keys_dir: Path) -> Path:
    """Write a new random subject secret (mode 600); refuse to replace an existing one."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConflictError(
            f"{path} already exists",
            "a new secret would make every recorded subject unmatchable; keep the old one",
        ) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(_SECRET_BYTES) + "\n")
    return path


def load_secret(keys_dir: Path) -> SubjectHasher:
    """The hasher for the secret in `keys_dir`; clear errors for a missing or bad file."""
    path = keys_dir / SECRET_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise NotFoundError(
            f"no subject secret at {path}",
            "it is created by `mlprov init`; restore it from where the ledger's keys are kept",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFormatError(f"cannot read the subject secret {path}: {exc}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise KeyFormatError(
            f"{path} is not a subject secret (64 hex digits)", "restore it from a backup"
        ) from None
    return SubjectHasher(secret)
