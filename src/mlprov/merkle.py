"""Merkle trees as defined by RFC 9162 §2.1 (the RFC 6962 Certificate Transparency hashing).

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``; a tree of ``n`` leaves splits at the largest power of two
below ``n``. Proof builders read the tree through a :class:`PerfectSubtree` callback, so the
same code serves an in-memory tree, a database or a tile store.

Errors: arguments the caller controls (sizes, indices, its own hashes) raise
:class:`~mlprov.errors.InputError`; a proof that is malformed or does not lead to the
expected root raises :class:`~mlprov.errors.ProofError`.

RFC 9162 defines the consistency proof ``PROOF(m, D[n])`` only for ``0 < m < n``. Here
``m == n`` takes an empty proof and equal roots; ``m == 0`` takes an empty proof and always
verifies, since the empty tree is a prefix of every tree (transparency-dev/merkle rejects it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256
from typing import Protocol

from mlprov.errors import InputError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryTree",
    "PerfectSubtree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "range_root",
    "root_from_inclusion",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: int = 32
EMPTY_ROOT: bytes = sha256(b"").digest()

_OnNode = Callable[[int, int, bytes], None]
_TAMPER_HINT = "the proof, the root or the tree sizes were altered, or come from another tree"


class PerfectSubtree(Protocol):
    """Hash of the ``2**height`` leaves from leaf ``index * 2**height``; height 0 is a leaf."""

    def __call__(self, height: int, index: int) -> bytes: ...


def _node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        hint = "pass a raw SHA-256 digest (32 bytes), not hex text or a truncated value"
        raise InputError(f"{what} is {len(value)} bytes long, expected {HASH_SIZE}", hint)


def _check_size(size: int, what: str = "tree size") -> None:
    if size < 0:
        raise InputError(f"{what} {size} is negative", "tree sizes count leaves from 0")


def _check_index(index: int, size: int) -> None:
    _check_size(size)
    if not 0 <= index < size:
        hint = f"valid indices are 0 to {size - 1}" if size else "an empty tree has no leaves"
        raise InputError(f"leaf index {index} is out of range for a tree of {size} leaves", hint)


def _check_sizes(old_size: int, new_size: int) -> None:
    _check_size(old_size, "old tree size")
    _check_size(new_size, "new tree size")
    if old_size > new_size:
        msg = f"old tree size {old_size} is larger than new tree size {new_size}"
        raise InputError(msg, "a log only grows: pass the smaller (older) size first")


def _heights(size: int) -> list[int]:
    # The compact range of a tree has one perfect subtree per set bit of its size.
    return [h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1]


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || data)``."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``."""
    _check_hash(left, "left child hash")
    _check_hash(right, "right child hash")
    return _node(left, right)


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    if set(map(len, leaf_hashes)) - {HASH_SIZE}:  # one C-speed pass in the common case
        bad = next(i for i, h in enumerate(leaf_hashes) if len(h) != HASH_SIZE)
        _check_hash(leaf_hashes[bad], f"leaf hash {bad}")


def _parents(level: list[bytes]) -> list[bytes]:
    # zip drops an odd last node: it has no sibling at this level.
    pairs = zip(level[0::2], level[1::2], strict=False)
    return [sha256(b"\x01" + a + b).digest() for a, b in pairs]


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH over already-hashed leaves (``EMPTY_ROOT`` for none), level by level."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    # Pairing each level and promoting a lone last node yields exactly the RFC's
    # largest-power-of-two split, without recursion.
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _parents(level) + level[len(level) & ~1 :]
    return bytes(level[0])


def _fetch(perfect: PerfectSubtree, height: int, index: int) -> bytes:
    value = perfect(height, index)
    if len(value) != HASH_SIZE:
        msg = f"subtree ({height}, {index}) has a {len(value)}-byte hash, expected {HASH_SIZE}"
        raise InputError(msg, "the tree storage returned a malformed node hash")
    return value


def _aligned_root(start: int, count: int, perfect: PerfectSubtree) -> bytes:
    # With start a multiple of bitceil(count), the split rule peels off one aligned perfect
    # subtree per set bit of count, largest first; the one of height h is the last whole
    # block of 2**h leaves before the end.
    end = start + count
    return _fold([_fetch(perfect, h, (end >> h) - 1) for h in _heights(count)])


def _fold(parts: list[bytes]) -> bytes:
    # Hash a right edge (largest subtree first) into its root: MTH nests to the right.
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = _node(part, acc)
    return acc


def range_root(start: int, end: int, perfect: PerfectSubtree) -> bytes:
    """Return MTH(D[start:end]) built from the perfect subtrees of the whole tree."""
    _check_size(start, "range start")
    if end < start:
        raise InputError(f"range end {end} is before range start {start}", "pass start <= end")
    count = end - start
    if count == 0:
        return EMPTY_ROOT
    height = (start & -start).bit_length() - 1 if start else count.bit_length()
    if 1 << height >= count:
        return _aligned_root(start, count, perfect)
    # Unaligned start: the range's own subtrees are global subtrees only up to this height.
    chunks, rest = divmod(count, 1 << height)
    parts = [_fetch(perfect, height, (start >> height) + i) for i in range(chunks)]
    if rest:
        parts.append(_aligned_root(end - rest, rest, perfect))
    return root_of(parts)


def _split(count: int) -> int:
    return 1 << ((count - 1).bit_length() - 1)  # largest power of two strictly below count


def inclusion_proof(index: int, size: int, perfect: PerfectSubtree) -> list[bytes]:
    """Return the audit path PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf side first."""
    _check_index(index, size)
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(range_root(lo + k, hi, perfect))
            hi = lo + k
        else:
            proof.append(_fetch(perfect, k.bit_length() - 1, lo // k))  # lo: a multiple of k
            lo += k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, perfect: PerfectSubtree) -> list[bytes]:
    """Return PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1 (empty if a size is 0)."""
    _check_sizes(old_size, new_size)
    proof: list[bytes] = []
    if old_size in (0, new_size):
        return proof
    lo, hi, whole = 0, new_size, True  # `whole`: SUBPROOF's b flag, old tree is [0, hi)
    while hi != old_size:
        k = _split(hi - lo)
        if old_size - lo <= k:
            proof.append(range_root(lo + k, hi, perfect))
            hi = lo + k
        else:
            proof.append(_fetch(perfect, k.bit_length() - 1, lo // k))  # lo: a multiple of k
            lo += k
            whole = False
    if not whole:
        proof.append(range_root(lo, hi, perfect))
    proof.reverse()
    return proof


def _proof_hash(value: bytes, position: int, what: str) -> bytes:
    if len(value) != HASH_SIZE:
        msg = f"{what} has a {len(value)}-byte hash at position {position}, expected {HASH_SIZE}"
        raise ProofError(msg, "the proof is malformed or was truncated in transit")
    return value


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root that ``proof`` implies for ``leaf_hash`` at ``index`` (§2.1.3.2)."""
    _check_index(index, size)
    _check_hash(leaf_hash, "leaf hash")
    what = f"inclusion proof for leaf {index} of {size}"
    last = size - 1
    inner = (index ^ last).bit_length()  # levels below where the leaf's path meets the edge
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        hint = "the proof was made for another leaf index or tree size, or was truncated"
        raise ProofError(f"{what} has {len(proof)} hashes, expected {expected}", hint)
    acc = leaf_hash
    for i, sibling in enumerate(proof):
        sibling = _proof_hash(sibling, i, what)
        # Past the inner levels the path climbs the right edge: every sibling is on the left.
        acc = _node(sibling, acc) if i >= inner or index >> i & 1 else _node(acc, sibling)
    return acc


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree ``(size, root)``."""
    _check_hash(root, "root hash")
    if root_from_inclusion(leaf_hash, index, size, proof) != root:
        msg = f"inclusion proof for leaf {index} of {size} does not lead to the expected root"
        raise ProofError(msg, f"the leaf is not at that index in that tree, or {_TAMPER_HINT}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)`` (§2.1.4.2).

    ``old_size == 0`` needs an empty proof and always verifies, see the module docstring.
    """
    _check_sizes(old_size, new_size)
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    what = f"consistency proof from size {old_size} to {new_size}"
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"{what} has {len(proof)} hashes, expected none", _TAMPER_HINT)
        if old_size and old_root != new_root:
            hint = "two different trees were published at the same size: the log forked"
            raise ProofError(f"the two roots of size {old_size} differ", hint)
        return
    first, last = old_size - 1, new_size - 1
    shift = ((first + 1) & ~first).bit_length() - 1  # number of trailing one bits of `first`
    first, last = first >> shift, last >> shift
    inner = (first ^ last).bit_length()
    perfect_old = old_size & (old_size - 1) == 0
    expected = inner + (first >> inner).bit_count() + (0 if perfect_old else 1)
    if len(proof) != expected:
        hint = "the proof was made for other tree sizes, or was truncated"
        raise ProofError(f"{what} has {len(proof)} hashes, expected {expected}", hint)
    path = [_proof_hash(h, i, what) for i, h in enumerate(proof)]
    if perfect_old:  # then it is a node of the new tree, which the proof leaves out
        path.insert(0, old_root)
    old_acc = new_acc = path[0]
    for i, sibling in enumerate(path[1:]):
        if i >= inner or first >> i & 1:
            old_acc = _node(sibling, old_acc)
            new_acc = _node(sibling, new_acc)
        else:
            new_acc = _node(new_acc, sibling)
    if old_acc != old_root:
        raise ProofError(f"{what} does not lead to the expected old root", _TAMPER_HINT)
    if new_acc != new_root:
        raise ProofError(f"{what} does not lead to the expected new root", _TAMPER_HINT)


class Frontier:
    """Streaming (compact-range) builder: append leaf hashes one by one, O(log n) memory.

    ``on_node(height, index, hash)`` is called for every perfect subtree of height >= 1 as
    soon as it is complete, so callers can persist tiles while streaming.
    """

    __slots__ = ("_hashes", "_on_node", "_size")

    def __init__(self, on_node: _OnNode | None = None) -> None:
        self._size = 0
        self._hashes: list[bytes] = []  # one per set bit of _size, largest subtree first
        self._on_node = on_node

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at index ``size``."""
        if len(leaf_hash) != HASH_SIZE:
            _check_hash(leaf_hash, f"leaf hash {self._size}")
        hashes, size, acc = self._hashes, self._size, leaf_hash
        height = 0
        while size >> height & 1:  # each trailing one bit is a subtree that now completes
            acc = sha256(b"\x01" + hashes.pop() + acc).digest()
            height += 1
            if self._on_node is not None:
                self._on_node(height, size >> height, acc)
        hashes.append(acc)
        self._size = size + 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append every leaf hash of ``leaf_hashes`` in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """Return the root of the tree of the leaves so far (``EMPTY_ROOT`` when none)."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def nodes(self) -> list[tuple[int, bytes]]:
        """Return the ``(height, hash)`` perfect subtrees of the right edge, largest first."""
        return list(zip(_heights(self._size), self._hashes, strict=True))

    @classmethod
    def from_nodes(
        cls, size: int, nodes: Iterable[tuple[int, bytes]], on_node: _OnNode | None = None
    ) -> Frontier:
        """Resume from a state saved with :attr:`size` and :meth:`nodes`."""
        _check_size(size)
        saved = list(nodes)
        if (got := [h for h, _ in saved]) != (want := _heights(size)):
            msg = f"frontier nodes have heights {got}, but a tree of {size} leaves needs {want}"
            raise InputError(msg, "pass the size and nodes() saved together from one Frontier")
        for height, value in saved:
            _check_hash(value, f"frontier node at height {height}")
        frontier = cls(on_node)
        frontier._size = size
        frontier._hashes = [bytes(value) for _, value in saved]
        return frontier


class MemoryTree:
    """A whole tree in memory (all levels), for small/medium trees and for tests."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        _check_leaves(leaf_hashes)
        # _levels[h][i] is perfect(h, i); only complete subtrees are stored.
        self._levels = [[bytes(h) for h in leaf_hashes]]
        while len(self._levels[-1]) > 1:
            self._levels.append(_parents(self._levels[-1]))

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def _size_arg(self, size: int | None) -> int:
        if size is None:
            return self.size
        _check_size(size)
        if size > self.size:
            msg = f"tree size {size} is larger than this tree of {self.size} leaves"
            raise InputError(msg, "ask about a size the tree has reached")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (default: all)."""
        return range_root(0, self._size_arg(size), self.perfect)

    def perfect(self, height: int, index: int) -> bytes:
        """Return the hash of a complete subtree; usable as a :class:`PerfectSubtree`."""
        levels = self._levels
        if not (0 <= height < len(levels) and 0 <= index < len(levels[height])):
            msg = f"no complete subtree at height {height}, index {index} in a tree of {self.size}"
            raise InputError(msg, "only subtrees whose 2**height leaves all exist can be asked for")
        return levels[height][index]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the first ``size`` leaves."""
        return inclusion_proof(index, self._size_arg(size), self.perfect)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the consistency proof from ``old_size`` to ``new_size`` (default: all)."""
        return consistency_proof(old_size, self._size_arg(new_size), self.perfect)
