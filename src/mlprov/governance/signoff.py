"""Reviewer signatures: a review signed with the reviewer's own Ed25519 key.

What is signed, and how a signature is checked, is fixed by
:mod:`mlprov.ledger.reviewsigs` (the ledger's `verify` checks every signed review with
it). Here a review is signed, its signature required (`verify_review`), and a reviewer's
key found among the ledger's keys.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mlprov.errors import SignatureError
from mlprov.ledger.events import Entry
from mlprov.ledger.keys import SignerKey, VerifierKey, load_signer
from mlprov.ledger.reviewsigs import FIELDS, SignatureCheck, check_review, review_message

if TYPE_CHECKING:
    from mlprov.ledger.core import LedgerCore

__all__ = ["SignatureCheck", "check_review", "reviewer_signer", "sign_review", "verify_review"]


def sign_review(payload: Mapping[str, Any], signer: SignerKey) -> dict[str, Any]:
    """The review payload (its JSON form, `None` fields left out) with the signature added."""
    body = {k: v for k, v in payload.items() if v is not None and k not in FIELDS}
    raw = signer.sign(review_message(body))
    blob = base64.b64encode(signer.key_hash.to_bytes(4, "big") + raw).decode("ascii")
    return {**body, "key_name": signer.name, "signature": blob}


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


def reviewer_signer(ledger: LedgerCore, reviewer: str) -> SignerKey | None:
    """The reviewer's own signing key in the ledger's keys folder (a key named `reviewer`,
    as `mlprov keys generate REVIEWER` writes it), if there is one."""
    folder = ledger.location.keys_dir if ledger.location else None
    if folder is None or not folder.is_dir():
        return None
    found = (load_signer(path) for path in sorted(folder.glob("*.key")))
    return next((key for key in found if key.name == reviewer), None)
