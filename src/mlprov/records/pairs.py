"""Pairs: a companion commitment to which key and which subject each record carries.

A set's root (ADR 0004) commits its record digests and its subject hashes, not the rows
that join them. The *pairs root* of a set commits those joins (ADR 0020, and
docs/spec/record-pairs.md):

- a **key pair** is ``digest || SHA-256(UTF-8 key)``, one for each row with a key;
- a **subject pair** is ``digest || subject hash``, one for each row naming a subject;

64 bytes each. Each kind is a *half*: its sorted unique pairs, cut into 256 shards by
leading byte (the digest's, so a pair lies in its record's shard), each shard an RFC 9162
tree over ``leaf_hash(pair)``, under the same perfect 512-leaf top tree as a set's root:
key-pair shards 0-255, then subject-pair shards, each leaf ``shard root || size``.

The pairs are computed from a set's columns in memory (no second read of the data), and
a pair proof from one record shard's rows: a proof costs one shard and a log-size path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Final, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mlprov import merkle
from mlprov.errors import InputError, ProofError
from mlprov.formats import parse_tagged
from mlprov.records import hashing
from mlprov.records.halves import DIGEST_SIZE, Matrix
from mlprov.records.hashing import as_matrix
from mlprov.records.setproofs import MAX_SHARD_SIZE, SHARDS, TOP_LEAVES, shard_leaf

__all__ = [
    "PAIR_PROOF",
    "PairKind",
    "PairProof",
    "Pairs",
    "load_pair_proof",
    "pair_value",
    "prove_pair",
]

PAIR_PROOF: Final = "mlprov.record-pair/v1"
PairKind = Literal["key", "subject"]
VALUE_SIZE = 2 * DIGEST_SIZE
HexHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_FOREIGN = "the proof was altered, or was made for another record set"
_COLUMN: dict[PairKind, str] = {"key": "key", "subject": "subject"}


def pair_value(kind: PairKind, digest: bytes, other: str | bytes) -> bytes:
    """The 64 bytes a pair commits: the record digest, then the key's SHA-256 or the
    subject hash."""
    if len(digest) != DIGEST_SIZE:
        raise InputError(f"a record digest is 32 bytes, not {len(digest)}")
    if kind == "key":
        if not isinstance(other, str):
            raise InputError("a key is text")
        return digest + hashlib.sha256(other.encode()).digest()
    if not isinstance(other, bytes) or len(other) != DIGEST_SIZE:
        raise InputError("a subject hash is 32 raw bytes")
    return digest + other


def _column(table: Any, name: str) -> Any:
    column = table.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column


def _values(kind: PairKind, table: Any) -> Matrix:
    """The sorted unique pairs of one kind of a table in SCHEMA sorted by digest, as an
    (n, 64) matrix; hashed a column at a time."""
    column = _column(table, _COLUMN[kind])
    if column.null_count == len(column):
        return np.zeros((0, VALUE_SIZE), np.uint8)
    other = as_matrix(hashing.sha256(column)) if kind == "key" else as_matrix(column)
    digests = as_matrix(_column(table, "digest"))
    valid = None if not column.null_count else np.asarray(column.is_valid(), dtype=bool)
    values = np.empty((len(column) if valid is None else int(valid.sum()), VALUE_SIZE), np.uint8)
    values[:, :DIGEST_SIZE] = digests if valid is None else digests[valid]
    values[:, DIGEST_SIZE:] = other if valid is None else other[valid]
    return _sorted_unique(values)


def _sorted_unique(values: Matrix) -> Matrix:
    """Rows already sorted by their first 32 bytes, sorted on all 64 and made unique.

    Only rows whose digest repeats the one before can be out of order or repeated: those
    alone are sorted (they are runs of one digest each, so sorting them together puts each
    run in order), and repeats dropped."""
    if len(values) < 2:
        return values
    native = values.view(np.uint64)  # equality needs no byte order
    first = native[:, 0]
    ties = np.flatnonzero(first[1:] == first[:-1])  # only these can repeat a digest
    same_digest = np.zeros(len(values) - 1, dtype=bool)
    same_digest[ties] = (native[ties + 1, :4] == native[ties, :4]).all(axis=1)
    if not bool(same_digest.any()):
        return values
    words = values.view(">u8")  # big-endian words order as the bytes do
    tied = np.flatnonzero(same_digest)
    rows = np.union1d(tied, tied + 1)
    part = words[rows]
    words[rows] = part[np.lexsort(tuple(part[:, k] for k in range(7, -1, -1)))]
    repeat = np.zeros(len(values), dtype=bool)
    repeat[1:] = same_digest & (words[1:, 4:] == words[:-1, 4:]).all(axis=1)
    kept: Matrix = values[~repeat]
    return kept


def _shard_roots(values: Matrix) -> list[tuple[bytes, int]]:
    """Each shard's root and size, for sorted unique pairs."""
    leading = np.ascontiguousarray(values[:, 0])
    starts = np.searchsorted(leading, np.arange(SHARDS, dtype=np.uint8), side="left")
    sizes = np.diff(np.append(starts, len(values)))
    messages = np.zeros((len(values), 1 + VALUE_SIZE), np.uint8)  # 0x00 || pair
    messages[:, 1:] = values
    roots = hashing.forest_roots(hashing.sha256_rows(messages), sizes)
    return [(row.tobytes(), int(n)) for row, n in zip(roots, sizes, strict=True)]


@dataclass(frozen=True)
class Pairs:
    """The 512 top-tree leaves of a pairs commitment (shard root and size): key-pair
    shards, then subject-pair shards."""

    leaves: tuple[tuple[bytes, int], ...]

    @classmethod
    def of_table(cls, table: Any) -> Pairs:
        """The pairs of a table in SCHEMA sorted by digest."""
        return cls(
            tuple(_shard_roots(_values("key", table)) + _shard_roots(_values("subject", table)))
        )

    @classmethod
    def from_index(cls, listed: Any) -> Pairs:
        """Read a list of 512 ``[root hex, size]``; ValueError if it is not one."""
        if not isinstance(listed, list) or len(listed) != TOP_LEAVES:
            raise ValueError(f"pairs must list {TOP_LEAVES} shards")
        leaves = []
        for item in listed:
            if not isinstance(item, list) or len(item) != 2:
                raise ValueError("a pairs shard is [root, size]")
            root, size = item
            if not isinstance(size, int) or not 0 <= size <= MAX_SHARD_SIZE:
                raise ValueError(f"a pairs shard size {size!r} is not a count")
            raw = bytes.fromhex(root) if isinstance(root, str) else b""
            if len(raw) != merkle.HASH_SIZE:
                raise ValueError(f"a pairs shard root {root!r} is not 32 bytes")
            leaves.append((raw, size))
        return cls(tuple(leaves))

    def to_index(self) -> list[list[Any]]:
        return [[r.hex(), n] for r, n in self.leaves]

    @cached_property
    def _top(self) -> merkle.MemoryTree:
        return merkle.MemoryTree([merkle.leaf_hash(shard_leaf(r, n)) for r, n in self.leaves])

    @property
    def root(self) -> bytes:
        """The pairs root."""
        return self._top.root()

    def top_path(self, index: int) -> list[bytes]:
        return self._top.inclusion_proof(index)


class PairProof(BaseModel):
    """Record ``digest`` carries ``key`` (or names ``subject``): its pair is member
    ``index`` of shard ``shard`` of the pairs with root ``root``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["mlprov.record-pair/v1"] = PAIR_PROOF
    kind: PairKind
    digest: HexHash  # the record digest
    key: str | None = None
    subject: HexHash | None = None
    root: HexHash  # the pairs root
    shard: int = Field(ge=0, lt=SHARDS)
    shard_size: int = Field(ge=0, le=MAX_SHARD_SIZE)
    shard_root: HexHash
    top_path: list[HexHash]
    index: int = Field(ge=0)
    path: list[HexHash]

    @model_validator(mode="after")
    def _one_other(self) -> PairProof:
        if (self.kind == "key") != (self.key is not None) or (self.kind == "subject") != (
            self.subject is not None
        ):
            raise ValueError("a key pair names a key, a subject pair a subject, not both")
        return self

    def dumps(self) -> bytes:
        """The proof as the bytes of a JSON proof file."""
        return self.model_dump_json(indent=2, exclude_none=True).encode() + b"\n"

    @property
    def value(self) -> bytes:
        """The 64-byte pair the proof is about."""
        other = self.key if self.key is not None else bytes.fromhex(self.subject or "")
        return pair_value(self.kind, bytes.fromhex(self.digest), other)

    @property
    def top_index(self) -> int:
        return self.shard + (SHARDS if self.kind == "subject" else 0)

    def verify(self, root: bytes) -> None:
        """Check the proof against a pairs root; ProofError names what does not hold."""
        if len(root) != merkle.HASH_SIZE:
            hint = "pass the raw 32-byte pairs root, not hex text"
            raise InputError(f"the pairs root is {len(root)} bytes long, expected 32", hint)
        if root.hex() != self.root:
            raise ProofError(
                f"the proof is for the pairs root {self.root}, not {root.hex()}",
                "check it against the pairs root of the event it was made for",
            )
        value = self.value
        if value[0] != self.shard:
            msg = f"record {self.digest} is in shard {value[0]}, but the proof is for {self.shard}"
            raise ProofError(msg, _FOREIGN)
        if not self.index < self.shard_size:
            msg = f"the pair is at index {self.index}, outside a shard of {self.shard_size}"
            raise ProofError(msg, _FOREIGN)
        path = [bytes.fromhex(h) for h in self.path]
        shard_root = merkle.root_from_inclusion(
            merkle.leaf_hash(value), self.index, self.shard_size, path
        )
        if shard_root.hex() != self.shard_root:
            what = f"key {self.key!r}" if self.kind == "key" else f"subject {self.subject}"
            raise ProofError(
                f"record {self.digest} with {what} is not the pair at index {self.index} "
                f"of {self.kind}-pair shard {self.shard}",
                _FOREIGN,
            )
        leaf = merkle.leaf_hash(shard_leaf(bytes.fromhex(self.shard_root), self.shard_size))
        tops = [bytes.fromhex(h) for h in self.top_path]
        if merkle.root_from_inclusion(leaf, self.top_index, TOP_LEAVES, tops) != root:
            msg = (
                f"the root and size ({self.shard_size}) of {self.kind}-pair shard "
                f"{self.shard} do not lead to the pairs root"
            )
            raise ProofError(msg, _FOREIGN)


def load_pair_proof(data: bytes, source: str = "proof") -> PairProof:
    """Parse a pair proof file; InputError names what is wrong."""
    found = parse_tagged(data, (PairProof,), source, "make the proof again from the record set")
    if not isinstance(found, PairProof):
        raise InputError(f"{source} is not an mlprov pair proof", f"its `format` is {PAIR_PROOF}")
    return found


def shard_pairs(kind: PairKind, rows: Any, shard: int) -> list[bytes]:
    """The sorted unique pairs of one kind among one record shard's rows (a few thousand:
    hashlib is quicker here than a query)."""
    found = set()
    for digest, other in zip(
        rows.column("digest").to_pylist(), rows.column(_COLUMN[kind]).to_pylist(), strict=True
    ):
        if other is not None and digest[0] == shard:
            found.add(pair_value(kind, digest, other))
    return sorted(found)


def prove_pair(
    pairs: Pairs, rows: Any, kind: PairKind, digest: bytes, other: str | bytes
) -> PairProof | None:
    """A proof that ``digest`` pairs with ``other`` under ``pairs``, from the rows of the
    digest's record shard; None when those rows do not give the shard that ``pairs``
    commits (a set file holding rows of several saves of one root), or lack the pair."""
    shard = digest[0]
    top = shard + (SHARDS if kind == "subject" else 0)
    values = shard_pairs(kind, rows, shard)
    value = pair_value(kind, digest, other)
    if value not in values:
        return None
    tree = merkle.MemoryTree([merkle.leaf_hash(v) for v in values])
    if (tree.root(), len(values)) != pairs.leaves[top]:
        return None
    index = values.index(value)
    return PairProof(
        kind=kind,
        digest=digest.hex(),
        key=other if isinstance(other, str) else None,
        subject=other.hex() if isinstance(other, bytes) else None,
        root=pairs.root.hex(),
        shard=shard,
        shard_size=len(values),
        shard_root=tree.root().hex(),
        top_path=[h.hex() for h in pairs.top_path(top)],
        index=index,
        path=[h.hex() for h in tree.inclusion_proof(index)],
    )
