"""Proof files: what an outsider receives, and checks without a store or our goodwill.

An inclusion proof says "event E is leaf i of the log of size n whose root is R"; a
consistency proof says "the log of size m with root R1 is a prefix of the log of size n
with root R2". Each may carry the signed checkpoint it was made against, so that a key
holder can check who vouched for the root. Hashes are lowercase hex.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mlprov import merkle
from mlprov.digest import Digest
from mlprov.errors import InputError, ProofError
from mlprov.formats import parse_tagged
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.keys import VerifierKey

__all__ = ["ConsistencyProof", "InclusionProof", "load_proof"]

HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _raw(values: Iterable[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _check_note(note: str | None, keys: Iterable[VerifierKey], size: int, root: str) -> None:
    keys = list(keys)
    if note is None:
        if keys:  # a key can only vouch for a root through a checkpoint it signed
            raise ProofError(
                f"the proof carries no signed checkpoint for size {size}, so no key vouches "
                "for its root",
                "make the proof at a checkpointed size (`mlprov checkpoint` first), "
                "or check it without --key",
            )
        return
    signed = SignedCheckpoint.parse(note.encode())
    cp = signed.checkpoint
    if cp.size != size or cp.root.hex() != root:
        raise ProofError(
            f"the checkpoint in the proof is for size {cp.size}, not the proof's size {size} "
            "and root",
            "the proof and its checkpoint do not belong together",
        )
    if keys:
        signed.verify(keys)


class _Proof(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dumps(self) -> bytes:
        return self.model_dump_json(indent=2, exclude_none=True).encode() + b"\n"


class InclusionProof(_Proof):
    """Event `event` is leaf `index` of the log of `tree_size` leaves with root `root`."""

    format: Literal["mlprov.inclusion-proof/v1"] = "mlprov.inclusion-proof/v1"
    origin: str
    event: Digest
    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    root: HexHash
    hashes: list[HexHash]
    checkpoint: str | None = None

    def verify(self, keys: Iterable[VerifierKey] = ()) -> None:
        """Raise ProofError (or SignatureError) unless the proof holds."""
        leaf = merkle.leaf_hash(self.event.raw)
        merkle.verify_inclusion(
            leaf, self.index, self.tree_size, _raw(self.hashes), bytes.fromhex(self.root)
        )
        _check_note(self.checkpoint, keys, self.tree_size, self.root)


class ConsistencyProof(_Proof):
    """The log of `old_size` leaves is a prefix of the log of `new_size` leaves."""

    format: Literal["mlprov.consistency-proof/v1"] = "mlprov.consistency-proof/v1"
    origin: str
    old_size: int = Field(ge=0)
    new_size: int = Field(ge=0)
    old_root: HexHash
    new_root: HexHash
    hashes: list[HexHash]
    old_checkpoint: str | None = None
    new_checkpoint: str | None = None

    def verify(self, keys: Iterable[VerifierKey] = ()) -> None:
        """Raise ProofError (or SignatureError) unless the proof holds."""
        merkle.verify_consistency(
            self.old_size,
            self.new_size,
            bytes.fromhex(self.old_root),
            bytes.fromhex(self.new_root),
            _raw(self.hashes),
        )
        keys = list(keys)
        if self.old_size:  # the empty tree needs nobody's word
            _check_note(self.old_checkpoint, keys, self.old_size, self.old_root)
        _check_note(self.new_checkpoint, keys, self.new_size, self.new_root)


def load_proof(data: bytes, source: str = "proof") -> InclusionProof | ConsistencyProof:
    """Parse a proof file of either kind; InputError names what is wrong."""
    found = parse_tagged(
        data,
        (InclusionProof, ConsistencyProof),
        source,
        "write it again with `mlprov proof inclusion` or `mlprov proof consistency`",
    )
    if isinstance(found, InclusionProof | ConsistencyProof):
        return found
    raise InputError(
        f"{source} is not an mlprov proof file",
        "its `format` must be mlprov.inclusion-proof/v1 or mlprov.consistency-proof/v1",
    )
