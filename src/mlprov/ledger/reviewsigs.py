"""Review signatures: the message a reviewer signs, and its check against trusted keys.

The event digest already fixes every byte of a review; a signature adds *who* judged. The
signed message is ``mlprov-review/1`` and a newline, then the RFC 8785 canonical JSON of the
review payload without its two signature fields — the target, status, reviewer, limits,
risks and note, exactly as stored. The signature is kept in the payload as
``key_name`` and base64 of the key's 4-byte hash followed by the 64-byte signature, the
same blob as a C2SP signed-note signature line, so keys are the ones `mlprov keys
generate` writes and checkpoints use.

A signature is checked against the verifier keys trusted here (the ledger's keys folder
and any given): `valid`, `invalid` (the payload or signature was changed after signing),
`unknown_key` (no trusted key of that name and hash) or `unsigned`. Signing, and finding
a reviewer's key, are in :mod:`mlprov.governance.signoff`; `verify` checks every signed review.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlprov.digest import canonical_json
from mlprov.ledger.events import Entry
from mlprov.ledger.keys import VerifierKey, b64decode_strict

__all__ = ["FIELDS", "SignatureCheck", "Verdict", "check_review", "review_message"]

_CONTEXT = b"mlprov-review/1\n"
FIELDS = ("key_name", "signature")  # the payload fields a signature adds

Verdict = Literal["valid", "invalid", "unknown_key", "unsigned"]


def review_message(payload: Mapping[str, Any]) -> bytes:
    """The bytes a reviewer signs: the payload without its signature fields."""
    return _CONTEXT + canonical_json({k: v for k, v in payload.items() if k not in FIELDS})


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
    ok = key.verify(review_message(payload), raw[4:])
    return SignatureCheck("valid" if ok else "invalid", key_id)
