"""Ed25519 signer and verifier keys in the C2SP signed-note text formats.

A verifier key is ``<name>+<key hash as 8 hex digits>+<base64(0x01 || public key)>`` and a
signer key is ``PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || 32-byte seed)>``, as written
and read by Go's golang.org/x/mod/sumdb/note, so keys move freely between mlprov and the
standard transparency-log tooling. See https://c2sp.org/signed-note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlprov.errors import ConflictError, InputError, KeyFormatError, NotFoundError
from mlprov.validation import file_name_problem

__all__ = [
    "SignerKey",
    "VerifierKey",
    "key_hash",
    "load_signer",
    "load_verifier",
    "write_keypair",
]

ALG_ED25519 = 0x01
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HASH_RE = re.compile(r"[0-9a-fA-F]{8}")
_MAX_KEY_FILE = 64 * 1024  # a key file is ~100 bytes; anything bigger is the wrong file
_REGENERATE = "regenerate it with `mlprov keys generate`"
_NAME_HINT = "a key name must be non-empty, without whitespace or '+', e.g. example.com/log"
_VKEY_FORM = "a verifier key reads <name>+<8 hex digit key hash>+<base64 key>"


def key_name_problem(name: str) -> str | None:
    """Say why ``name`` is not a valid signed-note key name, or None if it is one."""
    if not name:
        return "it is empty"
    if "+" in name:
        return "it contains '+'"
    if any(ch.isspace() for ch in name):
        return "it contains whitespace"
    if any(ch < " " for ch in name):
        return "it contains a control character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    return None


def b64decode_strict(text: str) -> bytes | None:
    """Decode standard padded base64, or None; only the canonical encoding is accepted.

    Go's decoder also accepts non-zero padding bits; refusing them means every byte of a
    stored note or key matters, so no two encodings of one signature both verify.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def key_hash(name: str, public_key: bytes) -> int:
    """The signed-note key hash: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
    problem = key_name_problem(name)
    if problem:
        raise KeyFormatError(f"invalid key name {name!r}: {problem}", _NAME_HINT)
    if len(public_key) != 32:
        raise KeyFormatError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class VerifierKey:
    """A public Ed25519 key that checks signed-note signatures."""

    name: str
    key_hash: int
    public_key: bytes

    def __post_init__(self) -> None:
        expected = key_hash(self.name, self.public_key)  # validates name and key length
        if self.key_hash != expected:
            raise KeyFormatError(
                f"key hash {self.key_hash:08x} of key {self.name!r} does not match its "
                f"public key (expected {expected:08x})",
                "the key was altered or mistyped; copy it again from its .pub file",
            )

    @property
    def key_id(self) -> str:
        """``name+hhhhhhhh``: how the CLI, the ledger and signature lines name this key."""
        return f"{self.name}+{self.key_hash:08x}"

    def text(self) -> str:
        """The vkey text ``name+hhhhhhhh+base64(0x01 || public key)``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.key_id}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse vkey text; raise KeyFormatError saying what is wrong."""
        if text.startswith(_PRIVATE_PREFIX):
            # Never echo it: this is private key material given where a public key belongs.
            raise KeyFormatError(
                "this is a private signer key, not a public verifier key",
                "give the verifier key from the .pub file; keep the .key file secret",
            )
        name, hash_text, encoded = _split_key(text, "verifier key", _VKEY_FORM)
        return cls(name, _parse_hash(hash_text), _decode_key(encoded, "verifier key"))

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A private Ed25519 signing key; its repr never shows the seed."""

    name: str
    key_hash: int
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFormatError(f"an Ed25519 private seed is 32 bytes, not {len(self.seed)}")
        if self.key_hash != self.verifier().key_hash:
            # The hash is of the public key, so it can only be checked after deriving it.
            raise KeyFormatError(
                f"key hash {self.key_hash:08x} of signer key {self.name!r} does not match "
                "its private key",
                f"the key file was altered or mistyped; restore it from backup or {_REGENERATE}",
            )

    @classmethod
    def generate(cls, name: str) -> SignerKey:
        """A new random key named ``name`` (a schema-less URL such as ``example.com/log``)."""
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        return cls(name, key_hash(name, public), private.private_bytes_raw())

    @property
    def key_id(self) -> str:
        """``name+hhhhhhhh``, the same as the key id of this key's verifier."""
        return f"{self.name}+{self.key_hash:08x}"

    def text(self) -> str:
        """The signer key text ``PRIVATE+KEY+name+hhhhhhhh+base64(0x01 || seed)``: secret."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode("ascii")
        return f"{_PRIVATE_PREFIX}{self.key_id}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> SignerKey:
        """Parse signer key text; errors never quote the text, which is secret."""
        form = "a signer key reads PRIVATE+KEY+<name>+<8 hex digit key hash>+<base64 key>"
        if not text.startswith(_PRIVATE_PREFIX):
            raise KeyFormatError(
                f"this is not a private signer key: it does not start with {_PRIVATE_PREFIX!r}",
                form,
            )
        name, hash_text, encoded = _split_key(text[len(_PRIVATE_PREFIX) :], "signer key", form)
        return cls(name, _parse_hash(hash_text), _decode_key(encoded, "signer key"))

    def verifier(self) -> VerifierKey:
        """The public key that checks this key's signatures."""
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        return VerifierKey(self.name, key_hash(self.name, public), public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def _split_key(text: str, what: str, form: str) -> tuple[str, str, str]:
    # Split on the first two '+' only: names hold none, but base64 may.
    pieces = text.split("+", 2)
    if len(pieces) != 3 or not all(pieces):
        raise KeyFormatError(f"malformed {what}: expected three '+'-separated fields", form)
    name, hash_text, encoded = pieces
    problem = key_name_problem(name)
    if problem:
        raise KeyFormatError(f"malformed {what}: invalid key name {name!r}: {problem}", form)
    return name, hash_text, encoded


def _parse_hash(hash_text: str) -> int:
    # int(..., 16) alone would also take "0x", "_", signs and spaces.
    if not _HASH_RE.fullmatch(hash_text):
        raise KeyFormatError("malformed key: the key hash must be exactly 8 hex digits", _VKEY_FORM)
    return int(hash_text, 16)


def _decode_key(encoded: str, what: str) -> bytes:
    raw = b64decode_strict(encoded)
    if raw is None:
        raise KeyFormatError(f"malformed {what}: the key is not canonical standard base64")
    if raw[:1] != bytes([ALG_ED25519]):
        raise KeyFormatError(f"unsupported {what} algorithm: only Ed25519 (0x01) is supported")
    if len(raw) != 33:
        raise KeyFormatError(f"malformed {what}: an Ed25519 key is 32 bytes, not {len(raw) - 1}")
    return raw[1:]


def _file_stem(name: str) -> str:
    # Key names are URLs like example.com/log: make a single, non-hidden file name of one.
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return "_" + stem[1:] if stem.startswith(".") else stem


def _exists_error(path: Path) -> ConflictError:
    return ConflictError(
        f"{path} already exists; refusing to overwrite a key file",
        "move the existing key away first, or choose another name",
    )


def _create_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL makes creation atomic: an existing file, or a racing writer's, is never replaced.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise _exists_error(path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode == 0o600 and hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)  # exactly 0600, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # no half-written key file left behind
        raise


def write_keypair(signer: SignerKey, directory: Path) -> tuple[Path, Path]:
    """Write ``<name>.key`` (mode 0600) and ``<name>.pub`` into ``directory``; never overwrite.

    Returns (private key path, public key path). Raises ConflictError if either exists.
    """
    problem = file_name_problem(signer.name)
    if problem:
        raise KeyFormatError(
            f"the key name {signer.name!r} cannot name a key file: {problem}",
            "name a key like a URL without a scheme, e.g. example.com/log",
        )
    directory = Path(directory)
    stem = _file_stem(signer.name)
    key_path, pub_path = directory / f"{stem}.key", directory / f"{stem}.pub"
    for path in (key_path, pub_path):
        if os.path.lexists(path):
            raise _exists_error(path)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_new(key_path, (signer.text() + "\n").encode(), 0o600)
        try:
            _create_new(pub_path, (signer.verifier().text() + "\n").encode(), 0o644)
        except BaseException:
            key_path.unlink(missing_ok=True)  # leave no private key without its public half
            raise
    except OSError as exc:
        raise InputError(
            f"cannot write keys into {directory}: {exc.strerror or exc}",
            "check that the directory exists and is writable",
        ) from None
    return key_path, pub_path


def _read_key_file(path: Path, what: str, private: bool) -> str:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        hint = (
            "create one with `mlprov keys generate`, or fix the path"
            if private
            else ("give the .pub file written by `mlprov keys generate`, or the key text itself")
        )
        raise NotFoundError(f"{what} file {path} does not exist", hint) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)  # of the opened file: no race with a chmod or a swapped file
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what} file {path} is not a regular file")
        if private and os.name == "posix" and info.st_mode & 0o077:
            raise InputError(
                f"signer key file {path} can be accessed by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); a private key must be its owner's only",
                f"chmod 600 {shlex.quote(str(path))}",
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(_MAX_KEY_FILE + 1)
    fix = _REGENERATE if private else "copy the verifier key again from its source"
    if len(data) > _MAX_KEY_FILE:
        raise KeyFormatError(f"{what} file {path} is far too large to be a key file", fix)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise KeyFormatError(f"{what} file {path} is not a text key file", fix) from None
    if not text:
        raise KeyFormatError(f"{what} file {path} is empty", fix)
    return text


def load_signer(path: Path) -> SignerKey:
    """Load a private signer key file, refusing one that group or others may read (POSIX)."""
    path = Path(path)
    text = _read_key_file(path, "signer key", private=True)
    if not text.startswith(_PRIVATE_PREFIX):
        looks_public = text.count("+") >= 2 and "\n" not in text
        raise KeyFormatError(
            f"signer key file {path} does not hold a private signer key"
            + (" (it looks like a public verifier key)" if looks_public else ""),
            "pass the .key file written by `mlprov keys generate`, not the .pub file",
        )
    try:
        return SignerKey.parse(text)
    except KeyFormatError as exc:
        raise KeyFormatError(
            f"signer key file {path}: {exc.message}", f"restore it from backup or {_REGENERATE}"
        ) from None


def load_verifier(path_or_text: Path | str) -> VerifierKey:
    """Load a verifier key from a .pub file path, or parse it from its vkey text."""
    if isinstance(path_or_text, str):
        candidate = path_or_text.strip()
        if candidate.startswith(_PRIVATE_PREFIX):
            return VerifierKey.parse(candidate)  # raises, without quoting the secret
        looks_like_key = re.fullmatch(r"[^+\s]+\+[0-9a-fA-F]{8}\+\S+", candidate)
        if looks_like_key or (candidate.count("+") >= 2 and not os.path.exists(candidate)):
            return VerifierKey.parse(candidate)  # a key, or a mistyped one: say what is wrong
        path_or_text = Path(path_or_text)
    path = path_or_text
    text = _read_key_file(path, "verifier key", private=False)
    try:
        return VerifierKey.parse(text)
    except KeyFormatError as exc:
        raise KeyFormatError(
            f"verifier key file {path}: {exc.message}",
            exc.hint or "copy the verifier key again from its source",
        ) from None
