"""Record-set proofs: "record digest (or subject hash) d is, or is not, in the set with root R".

The tree shape is fixed by ADR 0004: the record digests and the subject hashes are each cut
into 256 shards by leading byte, each shard an RFC 9162 tree over its sorted unique values,
under a perfect top tree of 512 leaves (height 9): leaf ``s`` for record shard ``s``, leaf
``256 + s`` for subject shard ``s``, each hashing ``shard root || shard size (8 bytes,
big-endian)``. Committing the size pins each shard's tree size, which an inclusion proof
alone does not. A proof's ``kind`` says which half it speaks of.

A proof needs only the set root to check: :meth:`MembershipProof.verify` and
:meth:`NonMembershipProof.verify` raise :class:`~mlprov.errors.ProofError` naming the first
thing that does not hold. Hashes and digests are lowercase hex.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mlprov import merkle
from mlprov.errors import InputError, ProofError
from mlprov.formats import parse_tagged

__all__ = [
    "FORMATS",
    "SHARDS",
    "TOP_LEAVES",
    "Kind",
    "MembershipProof",
    "Neighbour",
    "NonMembershipProof",
    "load_set_proof",
    "shard_leaf",
]

SHARDS = 256  # shards per half
TOP_LEAVES = 2 * SHARDS  # record shards 0-255, then subject shards 256-511
MAX_SHARD_SIZE = 2**64 - 1  # the size is committed as 8 bytes

MEMBERSHIP: Final = "mlprov.record-membership/v2"
NON_MEMBERSHIP: Final = "mlprov.record-non-membership/v2"
FORMATS = (MEMBERSHIP, NON_MEMBERSHIP)
# Proofs for the 256-leaf top tree, before subject hashes were committed (ADR 0004).
_RETIRED = ("mlprov.record-membership/v1", "mlprov.record-non-membership/v1")

Kind = Literal["record", "subject"]
_NOUN = {"record": "record digest", "subject": "subject hash"}

HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

_FOREIGN = "the proof was altered, or was made for another record set"


def shard_leaf(shard_root: bytes, size: int) -> bytes:
    """Return the data of a top-tree leaf: the shard root and its size, 8 bytes big-endian."""
    return shard_root + size.to_bytes(8, "big")


def _raw(values: Iterable[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _shard_path(
    what: str, index: int, size: int, path: list[str], shard_root: bytes, digest: bytes
) -> None:
    if not 0 <= index < size:
        raise ProofError(f"{what} is at index {index}, outside a shard of {size}", _FOREIGN)
    got = merkle.root_from_inclusion(merkle.leaf_hash(digest), index, size, _raw(path))
    if got != shard_root:
        msg = f"the inclusion path of {what} at index {index} does not lead to the shard root"
        raise ProofError(msg, _FOREIGN)


class _SetProof(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str  # each class pins its own literal; declared here so that it is written first
    kind: Kind = "record"  # which half of the set: record digests or subject hashes
    digest: HexHash  # the record digest or subject hash the proof is about
    root: HexHash
    shard: int = Field(ge=0, lt=SHARDS)
    shard_size: int = Field(ge=0, le=MAX_SHARD_SIZE)
    shard_root: HexHash
    top_path: list[HexHash]

    def dumps(self) -> bytes:
        """Return the proof as the bytes of a JSON proof file."""
        return self.model_dump_json(indent=2, exclude_none=True).encode() + b"\n"

    @property
    def noun(self) -> str:
        """What ``digest`` is: "record digest" or "subject hash"."""
        return _NOUN[self.kind]

    @property
    def top_index(self) -> int:
        """The shard's leaf in the top tree: ``shard``, plus 256 for a subject shard."""
        return self.shard + (SHARDS if self.kind == "subject" else 0)

    def _check_shard(self, root: bytes) -> None:
        """Check the root, the shard of the digest and the shard's top-level path."""
        if len(root) != merkle.HASH_SIZE:
            hint = "pass the raw 32-byte set root, not hex text"
            raise InputError(f"the set root is {len(root)} bytes long, expected 32", hint)
        if root.hex() != self.root:
            raise ProofError(
                f"the proof is for the record set with root {self.root}, not {root.hex()}",
                "check it against the root it was made for, or get a proof from this set",
            )
        lead = bytes.fromhex(self.digest)[0]
        if lead != self.shard:
            msg = (
                f"{self.noun} {self.digest} is in shard {lead}, "
                f"but the proof is for shard {self.shard}"
            )
            raise ProofError(msg, _FOREIGN)
        shard_root = bytes.fromhex(self.shard_root)
        leaf = merkle.leaf_hash(shard_leaf(shard_root, self.shard_size))
        top = merkle.root_from_inclusion(leaf, self.top_index, TOP_LEAVES, _raw(self.top_path))
        if top != root:
            msg = (
                f"the root and size ({self.shard_size}) of {self.kind} shard {self.shard} "
                "do not lead to the set root"
            )
            raise ProofError(msg, _FOREIGN)


class MembershipProof(_SetProof):
    """`digest` is member `index` of `kind` shard `shard` of the set with root `root`."""

    format: Literal["mlprov.record-membership/v2"] = MEMBERSHIP
    index: int = Field(ge=0)
    path: list[HexHash]

    def verify(self, root: bytes) -> None:
        """Raise ProofError unless the digest (of its kind) is in the set with this root."""
        self._check_shard(root)
        shard_root = bytes.fromhex(self.shard_root)
        _shard_path(
            f"the {self.noun}", self.index, self.shard_size, self.path, shard_root, self.raw
        )

    @property
    def raw(self) -> bytes:
        """The digest as 32 raw bytes."""
        return bytes.fromhex(self.digest)


class Neighbour(BaseModel):
    """A member next to an absent value, with its inclusion path in the shard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: HexHash
    index: int = Field(ge=0)
    path: list[HexHash]


class NonMembershipProof(_SetProof):
    """`digest` is not in the `kind` half of the set with root `root`.

    Either the shard is empty, or the proof shows the members next to where the digest
    would sit: `left` (the largest member below it) at index i-1 and `right` (the smallest
    above it) at index i. At the shard's edges only one of them exists.
    """

    format: Literal["mlprov.record-non-membership/v2"] = NON_MEMBERSHIP
    left: Neighbour | None = None
    right: Neighbour | None = None

    def verify(self, root: bytes) -> None:
        """Raise ProofError unless the digest (of its kind) is absent from the set."""
        self._check_shard(root)
        shard_root, size = bytes.fromhex(self.shard_root), self.shard_size
        left, right = self.left, self.right
        if size == 0:
            if left is not None or right is not None:
                raise ProofError(f"shard {self.shard} is empty, yet the proof names members")
            if shard_root != merkle.EMPTY_ROOT:
                raise ProofError(f"shard {self.shard} has size 0 but not the empty root", _FOREIGN)
            return
        if left is None and right is None:
            msg = f"shard {self.shard} has {size} members, but the proof names no neighbour"
            raise ProofError(msg, "a value in the shard is present; ask for a membership proof")
        if left is not None:
            self._check_neighbour("left neighbour", left, shard_root)
        if right is not None:
            self._check_neighbour("right neighbour", right, shard_root)
        if left is not None and right is not None:
            if right.index != left.index + 1:
                raise ProofError(
                    f"the neighbours are at indices {left.index} and {right.index}, "
                    "which are not adjacent",
                    "members between them may equal the digest; " + _FOREIGN,
                )
        elif right is not None and right.index != 0:
            msg = f"the only neighbour is above the digest but at index {right.index}, not 0"
            raise ProofError(msg, "a member below it may equal the digest; " + _FOREIGN)
        elif left is not None and left.index != size - 1:
            msg = (
                f"the only neighbour is below the digest but at index {left.index}, "
                f"not the last index {size - 1}"
            )
            raise ProofError(msg, "a member above it may equal the digest; " + _FOREIGN)

    def _check_neighbour(self, what: str, member: Neighbour, shard_root: bytes) -> None:
        digest = bytes.fromhex(member.digest)
        if digest[0] != self.shard:
            msg = f"the {what} {member.digest} is not in shard {self.shard}"
            raise ProofError(msg, _FOREIGN)
        below = what.startswith("left")
        if (member.digest >= self.digest) if below else (member.digest <= self.digest):
            side = "below" if below else "above"
            msg = f"the {what} {member.digest} is not strictly {side} {self.noun} {self.digest}"
            raise ProofError(msg, "a present value has no non-membership proof; " + _FOREIGN)
        _shard_path(f"the {what}", member.index, self.shard_size, member.path, shard_root, digest)


def load_set_proof(data: bytes, source: str = "proof") -> MembershipProof | NonMembershipProof:
    """Parse a record-set proof file of either class; InputError names what is wrong."""
    hint = "make the proof again from the record set"
    found = parse_tagged(data, (MembershipProof, NonMembershipProof), source, hint)
    if isinstance(found, MembershipProof | NonMembershipProof):
        return found
    if _format_of(data) in _RETIRED:
        raise InputError(
            f"{source} is a {_format_of(data)} proof, made for the record-set root of "
            "mlprov before subject hashes were committed; it cannot be checked against "
            "today's roots",
            "make the proof again from the record set with this version of mlprov",
        )
    raise InputError(
        f"{source} is not an mlprov record-set proof file",
        f"its `format` must be {MEMBERSHIP} or {NON_MEMBERSHIP}",
    )


def _format_of(data: bytes) -> object:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed.get("format") if isinstance(parsed, dict) else None
