"""What every view of a record set answers: membership, rows by column, and proofs.

A set is seen whole (:class:`~mlprov.records.sets.RecordSet`, every row in memory) or a
shard at a time from its file (:class:`~mlprov.records.setreader.SetFile`). Both give the
same answers and the same proofs, byte for byte: a proof needs the top tree's 512 leaves
and the one shard the value falls in (ADR 0004), which is what :class:`SetView` asks of
them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from mlprov import merkle
from mlprov.errors import InputError, NotFoundError
from mlprov.records.halves import DIGEST_SIZE, Half
from mlprov.records.pairs import PairKind, PairProof, Pairs, prove_pair
from mlprov.records.setproofs import (
    SHARDS,
    Kind,
    MembershipProof,
    Neighbour,
    NonMembershipProof,
)

__all__ = ["COLUMNS", "SetView"]

#: The columns rows can be looked up by.
COLUMNS = ("digest", "key", "subject")
_NOUN: dict[Kind, str] = {"record": "record digest", "subject": "subject hash"}


class SetView(ABC):
    """A record set's commitment and rows, however much of it is in memory."""

    # -- what a view provides -------------------------------------------------------------

    @property
    @abstractmethod
    def _top(self) -> merkle.MemoryTree:
        """The top tree over the 512 shard leaves."""

    @abstractmethod
    def _shard(self, kind: Kind, shard: int) -> tuple[bytes, int]:
        """The root and size of one shard (checked to be a shard number)."""

    @abstractmethod
    def _shard_half(self, kind: Kind, shard: int) -> Half:
        """A half holding at least every value of this shard, at its offsets."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of members (unique digests)."""

    @property
    @abstractmethod
    def subject_count(self) -> int:
        """Number of subjects (unique subject hashes)."""

    @abstractmethod
    def where(self, column: str, value: Any) -> pa.Table:
        """The rows (in digest order) whose ``column`` (digest, key or subject) equals
        ``value``."""

    @abstractmethod
    def where_any(self, column: str, values: Iterable[Any]) -> pa.Table:
        """The rows (in digest order) whose ``column`` equals one of ``values``."""

    @abstractmethod
    def subjects_in(self, subject_hashes: Iterable[bytes]) -> set[bytes]:
        """Which of these subject hashes have a row in this set (e.g. from an opt-out list)."""

    @abstractmethod
    def _pairs_for(self, pairs_root: bytes) -> list[Pairs]:
        """The pairs commitments this view holds with that root (ADR 0020)."""

    @abstractmethod
    def _record_rows(self, shard: int) -> pa.Table:
        """Every row of one record shard (checked against the root)."""

    # -- what follows from it -------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The set root (32 bytes)."""
        return self._top.root()

    def __len__(self) -> int:
        return self.size

    def _checked(self, value: bytes, kind: Kind) -> bytes:
        if len(value) != DIGEST_SIZE:
            hint = "pass the raw 32 bytes of the SHA-256 (or HMAC-SHA256), not hex text"
            raise InputError(f"a {_NOUN[kind]} is {len(value)} bytes long, expected 32", hint)
        return bytes(value)

    def _holds(self, kind: Kind, value: bytes) -> bool:
        return self._shard_half(kind, value[0]).holds(value)

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, (bytes, bytearray, memoryview)) or len(digest) != DIGEST_SIZE:
            return False
        return self._holds("record", bytes(digest))

    def has_subject(self, subject_hash: bytes) -> bool:
        """Is this subject hash named by a row of the set?"""
        return self._holds("subject", self._checked(subject_hash, "subject"))

    def shard(self, shard: int) -> tuple[bytes, int]:
        """Return the ``(root, size)`` of one record shard."""
        return self._shard("record", shard)

    def subject_shard(self, shard: int) -> tuple[bytes, int]:
        """Return the ``(root, size)`` of one subject shard."""
        return self._shard("subject", shard)

    @staticmethod
    def _shard_number(shard: int) -> None:
        if not 0 <= shard < SHARDS:
            raise InputError(
                f"shard {shard} does not exist", f"shards are numbered 0 to {SHARDS - 1}"
            )

    # -- proofs ---------------------------------------------------------------------------

    def _common(self, kind: Kind, value: bytes) -> dict[str, Any]:
        s = value[0]
        shard_root, size = self._shard(kind, s)
        top = s + (SHARDS if kind == "subject" else 0)
        return {
            "kind": kind,
            "digest": value.hex(),
            "root": self.root.hex(),
            "shard": s,
            "shard_size": size,
            "shard_root": shard_root.hex(),
            "top_path": [h.hex() for h in self._top.inclusion_proof(top)],
        }

    @staticmethod
    def _path(half: Half, shard: int, index: int) -> list[str]:
        return [h.hex() for h in half.tree(shard).inclusion_proof(index)]

    def _neighbour(self, half: Half, shard: int, at: int) -> Neighbour | None:
        lo, hi = half.offsets[shard], half.offsets[shard + 1]
        if not lo <= at < hi:
            return None
        index = at - lo
        return Neighbour(
            digest=half.item(at).hex(), index=index, path=self._path(half, shard, index)
        )

    def _membership(self, kind: Kind, value: bytes) -> MembershipProof:
        value = self._checked(value, kind)
        s = value[0]
        half = self._shard_half(kind, s)
        i = half.position(value)
        if i >= len(half) or half.item(i) != value:
            msg = f"{_NOUN[kind]} {value.hex()} is not in this set"
            raise NotFoundError(msg, "ask for a non-membership proof instead")
        index = i - half.offsets[s]
        path = self._path(half, s, index)
        return MembershipProof(**self._common(kind, value), index=index, path=path)

    def _non_membership(self, kind: Kind, value: bytes) -> NonMembershipProof:
        value = self._checked(value, kind)
        s = value[0]
        half = self._shard_half(kind, s)
        i = half.position(value)
        if i < len(half) and half.item(i) == value:
            msg = f"{_NOUN[kind]} {value.hex()} is in this set"
            raise InputError(msg, "ask for a membership proof instead")
        left = self._neighbour(half, s, i - 1)
        right = self._neighbour(half, s, i)
        return NonMembershipProof(**self._common(kind, value), left=left, right=right)

    def prove(self, digest: bytes) -> MembershipProof | NonMembershipProof:
        """Prove a record digest in (membership) or out (non-membership) of the set."""
        if self._holds("record", self._checked(digest, "record")):
            return self.membership_proof(digest)
        return self.non_membership_proof(digest)

    def membership_proof(self, digest: bytes) -> MembershipProof:
        """Prove that record ``digest`` is a member; NotFoundError if it is not."""
        return self._membership("record", digest)

    def non_membership_proof(self, digest: bytes) -> NonMembershipProof:
        """Prove that record ``digest`` is not a member; InputError if it is."""
        return self._non_membership("record", digest)

    def prove_subject(self, subject_hash: bytes) -> MembershipProof | NonMembershipProof:
        """Prove a subject hash in (membership) or out (non-membership) of the set."""
        if self.has_subject(subject_hash):
            return self.subject_membership_proof(subject_hash)
        return self.subject_non_membership_proof(subject_hash)

    def subject_membership_proof(self, subject_hash: bytes) -> MembershipProof:
        """Prove that a row of the set names this subject; NotFoundError if none does."""
        return self._membership("subject", subject_hash)

    def subject_non_membership_proof(self, subject_hash: bytes) -> NonMembershipProof:
        """Prove that no row of the set names this subject; InputError if one does."""
        return self._non_membership("subject", subject_hash)

    def prove_pair(
        self, kind: PairKind, digest: bytes, other: str | bytes, pairs_root: bytes
    ) -> PairProof | None:
        """Prove that record ``digest`` carries key ``other`` (kind ``key``) or names
        subject hash ``other`` (kind ``subject``), under the pairs root an event names.
        None when this view cannot: it keeps no pairs with that root (a set saved before
        pairs were committed), or its rows of the digest's shard are not those the pairs
        commit (rows of several saves of one root, merged)."""
        digest = self._checked(digest, "record")
        for pairs in self._pairs_for(pairs_root):
            proof = prove_pair(pairs, self._record_rows(digest[0]), kind, digest, other)
            if proof is not None:
                return proof
        return None


def lookup(column: str, value: Any) -> Any:
    """``value`` as a scalar of the column's type; InputError for an unknown column."""
    if column not in COLUMNS:
        raise InputError(f"rows cannot be looked up by {column!r}", f"use one of {COLUMNS}")
    kind = pa.string() if column == "key" else pa.binary(DIGEST_SIZE)
    try:
        return pa.scalar(value, kind)
    except (pa.ArrowException, TypeError, ValueError):
        what = "text" if column == "key" else "32 raw bytes"
        raise InputError(f"a {column} to look up must be {what}") from None
