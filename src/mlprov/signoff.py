"""Reviewer signatures: a review signed with the reviewer's own Ed25519 key.

The event digest already fixes every byte of a review; a signature adds *who* judged. The
signed message is ``mlprov-review/1`` and a newline, then the RFC 8785 canonical JSON of the
review payload without its two signature fields — the target, status, reviewer, limits,
risks and note, exactly as stored. The signature is kept in the payload as
``key_name`` and base64 of the key's 4-byte hash followed by the 64-byte signature, the
same blob as a C2SP signed-note signature line, so keys are the ones `mlprov keys
generate` writes and checkpoints use.

A signature is checked against the verifier keys trusted here (the ledger's keys folder
and any given): `valid`, `invalid` (the payload or signature was changed after signing),
`unknown_key` (no trusted key of that name and hash) or `unsigned`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlprov.digest import canonical_json
from mlprov.errors import SignatureError
from mlprov.ledger.events import Entry
from mlprov.ledger.keys import SignerKey, VerifierKey, b64decode_strict, load_signer
from mlprov.ledger.ledger import Ledger

__all__ = ["SignatureCheck", "check_review", "reviewer_signer", "sign_review", "verify_review"]

_CONTEXT = b"mlprov-review/1\n"
_FIELDS = ("key_name", "signature")

Verdict = Literal["valid", "invalid", "unknown_key", "unsigned"]


def _message(payload: Mapping[str, Any]) -> bytes:
    return _CONTEXT + canonical_json({k: v for k, v in payload.items() if k not in _FIELDS})


def sign_review(payload: Mapping[str, Any], signer: SignerKey) -> dict[str, Any]:
    """The review payload (its JSON form, `None` fields left out) with the signature added."""
    body = {k: v for k, v in payload.items() if v is not None and k not in _FIELDS}
    raw = signer.sign(_message(body))
    blob = base64.b64encode(signer.key_hash.to_bytes(4, "big") + raw).decode("ascii")
    return {**body, "key_name": signer.name, "signature": blob}


@dataclass(frozen=True)
class SignatureCheck:
    """What a review's signature proves: its verdict, and the key it names."""

    verdict: Verdict
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "key": self.key_id}


def check_review(entry: Entry, keys: Iterable[VerifierKey]) -> SignatureCheck:
    """Check a review event's signature against the trusted `keys`; never raises."""
    payload = entry.event.payload
    name, blob = payload.get("key_name"), payload.get("signature")
    if not isinstance(name, str) or not isinstance(blob, str):
        return SignatureCheck("unsigned")
    raw = b64decode_strict(blob)
    if raw is None or len(raw) != 68:
        return SignatureCheck("invalid", name)
    key_hash = int.from_bytes(raw[:4], "big")
    key_id = f"{name}+{key_hash:08x}"
    key = next((k for k in keys if k.name == name and k.key_hash == key_hash), None)
    if key is None:
        return SignatureCheck("unknown_key", key_id)
    ok = key.verify(_message(payload), raw[4:])
    return SignatureCheck("valid" if ok else "invalid", key_id)


def verify_review(entry: Entry, keys: Iterable[VerifierKey]) -> str:
    """The key id that validly signed this review; SignatureError otherwise."""
    found = check_review(entry, keys)
    if found.verdict == "valid" and found.key_id is not None:
        return found.key_id
    what = {
        "invalid": f"the signature by {found.key_id} does not verify: the review was changed "
        "after it was signed",
        "unknown_key": f"it is signed by {found.key_id}, which is not a trusted key here",
        "unsigned": "it is not signed",
    }[found.verdict]
    raise SignatureError(
        f"review {entry.digest.short}: {what}",
        "trust the reviewer's key by putting its .pub file in the ledger's keys folder"
        if found.verdict == "unknown_key"
        else "do not rely on this review; record a new, signed one",
    )


def reviewer_signer(ledger: Ledger, reviewer: str) -> SignerKey | None:
    """The reviewer's own signing key in the ledger's keys folder (a key named `reviewer`,
    as `mlprov keys generate REVIEWER` writes it), if there is one."""
    folder = ledger.location.keys_dir if ledger.location else None
    if folder is None or not folder.is_dir():
        return None
    found = (load_signer(path) for path in sorted(folder.glob("*.key")))
    return next((key for key in found if key.name == reviewer), None)
