"""Signed tree heads as C2SP tlog-checkpoint signed notes.

A checkpoint's note text is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` plus optional
extension lines; the signed note is that text, a blank line, and one
``— <key name> <base64(key hash || signature)>`` line per signature
(https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note). Parsing is strict and
canonical: what parses re-serialises to the very same bytes, and signatures are always
checked against the bytes as stored, never against a re-serialisation.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlprov.errors import CheckpointFormatError, InputError, SignatureError
from mlprov.ledger.keys import SignerKey, VerifierKey, b64decode_strict, key_name_problem

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "SignedCheckpoint",
    "parse_signed_note",
    "sign_checkpoint",
]

MAX_SIGNATURES = 100  # Go's note.Open limit; the spec asks verifiers to accept at least 16
_SIG_PREFIX = "— "  # em dash U+2014, space
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")  # ASCII only: int() would also take "_" and "٣"
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every control character but newline
_BODY_HINT = (
    "a checkpoint is: the origin line, the tree size in decimal, the base64 root hash, then "
    "optional non-empty extension lines, each ending in a newline (c2sp.org/tlog-checkpoint)"
)
_NOTE_HINT = (
    "a signed note is its text, a blank line, then one line per signature: "
    "'— <key name> <base64 signature>'; the file may be truncated or damaged"
)


def _line_problem(line: str, what: str) -> str | None:
    if not line:
        return f"the {what} is empty"
    for ch in line:
        if ch < " ":
            return f"the {what} contains control character U+{ord(ch):04X}"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return f"the {what} is not valid Unicode"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A Merkle tree head: the log's origin, its tree size and RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        problems = [_line_problem(self.origin, "origin")]
        problems += [
            _line_problem(e, f"extension line {i + 1}") for i, e in enumerate(self.extensions)
        ]
        for problem in problems:
            if problem:
                raise CheckpointFormatError(f"invalid checkpoint: {problem}", _BODY_HINT)
        if isinstance(self.size, bool) or not 0 <= self.size < 2**64:
            raise CheckpointFormatError(
                f"invalid checkpoint: tree size {self.size} is not a uint64"
            )
        if len(self.root) != 32:
            raise CheckpointFormatError(
                f"invalid checkpoint: the root hash is {len(self.root)} bytes, not 32 (SHA-256)",
                _BODY_HINT,
            )

    def body(self) -> bytes:
        """The exact note text that is signed."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in (*lines, *self.extensions)).encode("utf-8")

    @classmethod
    def parse_body(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint note text strictly; raise CheckpointFormatError naming the fault."""
        text = _decode_note(body, "checkpoint text")
        if not text.endswith("\n"):
            raise CheckpointFormatError("checkpoint text does not end with a newline", _BODY_HINT)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(
                f"checkpoint text has {len(lines)} line(s); it needs at least 3: "
                "origin, tree size and root hash",
                _BODY_HINT,
            )
        origin, size_text, root_text, *extensions = lines
        if len(size_text) > 20 or not _SIZE_RE.fullmatch(size_text):  # 2**64 has 20 digits
            raise CheckpointFormatError(
                f"checkpoint tree size {size_text[:40]!r} is not a decimal number without "
                "sign or leading zeros",
                _BODY_HINT,
            )
        root = b64decode_strict(root_text)
        if root is None:
            raise CheckpointFormatError(
                f"checkpoint root hash {root_text[:60]!r} is not canonical base64", _BODY_HINT
            )
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name and hash, and the raw signature bytes."""

    name: str
    key_hash: int
    signature: bytes

    def __post_init__(self) -> None:
        problem = key_name_problem(self.name)
        if problem:
            raise CheckpointFormatError(f"invalid signature key name {self.name!r}: {problem}")
        if not 0 <= self.key_hash < 2**32:
            raise CheckpointFormatError(f"signature key hash {self.key_hash} is not a uint32")
        if not self.signature:
            raise CheckpointFormatError(f"signature by {self.key_id} is empty", _NOTE_HINT)

    @property
    def key_id(self) -> str:
        """``name+hhhhhhhh`` of the key that claims this signature."""
        return f"{self.name}+{self.key_hash:08x}"

    def line(self) -> bytes:
        """The signature line, ``— name base64(key hash || signature)\\n``."""
        blob = base64.b64encode(self.key_hash.to_bytes(4, "big") + self.signature).decode()
        return f"{_SIG_PREFIX}{self.name} {blob}\n".encode()


def _decode_note(data: bytes, what: str) -> str:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointFormatError(
            f"{what} is not valid UTF-8 (at byte {exc.start})", _NOTE_HINT
        ) from None
    control = _CONTROL_RE.search(text)
    if control:
        crlf = " (Windows line endings?)" if control.group() == "\r" else ""
        raise CheckpointFormatError(
            f"{what} contains control character U+{ord(control.group()):04X} at character "
            f"{control.start()}{crlf}; only newlines are allowed",
            _NOTE_HINT,
        )
    return text


def parse_signed_note(data: bytes) -> tuple[bytes, tuple[NoteSignature, ...]]:
    """Split any C2SP signed note into its exact text bytes and its signatures, unverified."""
    data = bytes(data)
    _decode_note(data, "signed note")
    # The text ends at the *last* blank line (it may hold others). Split the bytes, not a
    # decoded copy, so that the text verified is exactly the text stored.
    split = data.rfind(b"\n\n")
    if split < 0:
        raise CheckpointFormatError(
            "signed note has no blank line between its text and its signatures", _NOTE_HINT
        )
    text, block = data[: split + 1], data[split + 2 :].decode("utf-8")
    if not block:
        raise CheckpointFormatError("signed note has no signature lines", _NOTE_HINT)
    if not block.endswith("\n"):
        raise CheckpointFormatError(
            "signed note's last line does not end with a newline", _NOTE_HINT
        )
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointFormatError(
            f"signed note has {len(lines)} signatures, more than the {MAX_SIGNATURES} accepted"
        )
    signatures = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointFormatError(
                f"signature line {number} does not start with '— ' (em dash, space)", _NOTE_HINT
            )
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        problem = key_name_problem(name)
        if problem:
            raise CheckpointFormatError(
                f"signature line {number}: invalid key name {name[:60]!r}: {problem}", _NOTE_HINT
            )
        raw = b64decode_strict(encoded)
        if raw is None or len(raw) < 5:
            raise CheckpointFormatError(
                f"signature line {number} by {name!r}: the signature is not canonical base64 "
                "of a 4-byte key hash and a signature",
                _NOTE_HINT,
            )
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, tuple(signatures)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint, the exact note text that was signed, and its signatures."""

    checkpoint: Checkpoint
    text: bytes
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "signatures", tuple(self.signatures))
        # The fields shown to a reader must be exactly what the signatures cover.
        if self.text != self.checkpoint.body():
            raise CheckpointFormatError("signed checkpoint text does not match its checkpoint")
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise CheckpointFormatError(
                f"a signed checkpoint needs 1 to {MAX_SIGNATURES} signatures, "
                f"not {len(self.signatures)}"
            )

    def serialize(self) -> bytes:
        """The signed note: text, blank line, one line per signature."""
        return self.text + b"\n" + b"".join(sig.line() for sig in self.signatures)

    @property
    def signers(self) -> list[str]:
        """Who signed it: each signature's key name and hash (`name+hhhhhhhh`)."""
        return [s.key_id for s in self.signatures]

    def to_json(self) -> dict[str, object]:
        """As `mlprov checkpoint --json` prints it and the server answers it."""
        cp = self.checkpoint
        return {
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root.hex(),
            "signers": self.signers,
            "note": self.serialize().decode(),
        }

    @classmethod
    def parse(cls, data: bytes) -> SignedCheckpoint:
        """Parse a signed checkpoint strictly, without verifying it (see ``verify``)."""
        text, signatures = parse_signed_note(data)
        return cls(Checkpoint.parse_body(text), text, signatures)

    def verify(self, keys: Iterable[VerifierKey]) -> list[VerifierKey]:
        """Check the signatures by known keys; return the keys whose signatures verified.

        Signatures by unknown keys (another name or key hash) are ignored, as the spec
        requires: they may be witnesses' or a rotated key's. Raises SignatureError if a
        known key's signature is invalid, or if no known key signed at all.
        """
        known: dict[tuple[str, int], VerifierKey] = {}
        for key in keys:
            if known.setdefault((key.name, key.key_hash), key) != key:
                raise InputError(
                    f"two different trusted verifier keys are both named {key.key_id}",
                    "keep only the genuine one: a clash of name and 32-bit hash is suspicious",
                )
        cp = self.checkpoint
        verified: list[VerifierKey] = []
        for sig in self.signatures:
            signer = known.get((sig.name, sig.key_hash))
            if signer is None:
                continue
            if not signer.verify(self.text, sig.signature):  # the stored bytes, as signed
                raise SignatureError(
                    f"invalid signature by {signer.key_id} on the checkpoint of {cp.origin!r} "
                    f"at size {cp.size}",
                    "the checkpoint was altered after it was signed; do not trust it",
                )
            if signer not in verified:
                verified.append(signer)
        if not verified:
            raise SignatureError(
                f"the checkpoint of {cp.origin!r} at size {cp.size} is signed by "
                f"{_id_list(s.key_id for s in self.signatures)}, none of them a trusted key "
                f"({_id_list(k.key_id for k in known.values()) or 'none given'})",
                _unknown_hint(self.signatures, known.values()),
            )
        return verified


def _id_list(ids: Iterable[str], limit: int = 5) -> str:
    unique = list(dict.fromkeys(ids))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


def _unknown_hint(signatures: Sequence[NoteSignature], keys: Iterable[VerifierKey]) -> str:
    by_name = {key.name: key for key in keys}
    for sig in signatures:
        if sig.name in by_name:
            return (
                f"the note is signed by {sig.key_id}, a different key of the same name as the "
                f"trusted {by_name[sig.name].key_id}: was the key rotated, or is this forged?"
            )
    return "pass the verifier key (.pub) of the log that signed this checkpoint"


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[SignerKey]) -> SignedCheckpoint:
    """Sign ``checkpoint`` with each signer (a key given twice signs once)."""
    if not signers:
        raise InputError("no signer key given to sign the checkpoint", "pass a signer key file")
    text = checkpoint.body()
    unique = {(s.name, s.key_hash): s for s in signers}.values()
    signatures = tuple(NoteSignature(s.name, s.key_hash, s.sign(text)) for s in unique)
    return SignedCheckpoint(checkpoint, text, signatures)
