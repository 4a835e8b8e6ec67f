"""Tests for mlprov.merkle: independent vectors, an RFC reference model, and properties."""

from __future__ import annotations

import json
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlprov import merkle
from mlprov.errors import InputError, ProofError
from mlprov.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_root,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "merkle"
MAX_SIZE = 300


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


TREE = _load("reference_tree.json")
PROBES = _load("probes.json")
REF_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in TREE["leaves"]]
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]


def hx(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


@cache
def tree(size: int) -> MemoryTree:
    return MemoryTree(LEAVES[:size])


# --- Reference model, straight from the recursive definitions of RFC 9162 §2.1 -----------


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --- Vectors from transparency-dev/merkle (see vectors/merkle/README.md) ------------------


def test_hasher_vectors() -> None:
    h = TREE["hasher"]
    assert bytes.fromhex(h["empty_root"]) == EMPTY_ROOT == sha256(b"").digest()
    for v in h["leaf"]:
        assert leaf_hash(bytes.fromhex(v["input"])).hex() == v["hash"]
    for v in h["node"]:
        got = sha256(b"\x01" + bytes.fromhex(v["left"]) + bytes.fromhex(v["right"])).digest()
        assert got.hex() == v["hash"]  # their children are not 32-byte hashes
    assert node_hash(REF_LEAVES[0], REF_LEAVES[1]).hex() == TREE["node_hashes"][1][0]


def test_reference_tree_roots_and_nodes() -> None:
    full = MemoryTree(REF_LEAVES)
    for size, want in enumerate(TREE["roots"]):
        assert root_of(REF_LEAVES[:size]).hex() == want
        assert full.root(size).hex() == want
        assert MemoryTree(REF_LEAVES[:size]).root().hex() == want
        assert range_root(0, size, full.perfect).hex() == want
    for height, level in enumerate(TREE["node_hashes"]):
        for index, want in enumerate(level):
            assert full.perfect(height, index).hex() == want


def test_reference_tree_compact_ranges() -> None:
    frontier = Frontier()
    for size, ids in enumerate(TREE["compact_ranges"]):
        want = [(h, bytes.fromhex(TREE["node_hashes"][h][i])) for h, i in ids]
        assert frontier.size == size
        assert frontier.nodes() == want
        assert frontier.root().hex() == TREE["roots"][size]
        if size < len(REF_LEAVES):
            frontier.append(REF_LEAVES[size])


@pytest.mark.parametrize("v", TREE["inclusion_proofs"], ids=lambda v: f"{v['index']}of{v['size']}")
def test_inclusion_proof_vectors(v: dict[str, Any]) -> None:
    full = MemoryTree(REF_LEAVES)
    index, size, proof = v["index"], v["size"], hx(v["proof"])
    assert full.inclusion_proof(index, size) == proof
    root = bytes.fromhex(TREE["roots"][size])
    verify_inclusion(REF_LEAVES[index], index, size, proof, root)
    assert root_from_inclusion(REF_LEAVES[index], index, size, proof) == root


@pytest.mark.parametrize(
    "v", TREE["consistency_proofs"], ids=lambda v: f"{v['old_size']}to{v['new_size']}"
)
def test_consistency_proof_vectors(v: dict[str, Any]) -> None:
    full = MemoryTree(REF_LEAVES)
    old, new, proof = v["old_size"], v["new_size"], hx(v["proof"])
    assert full.consistency_proof(old, new) == proof
    roots = hx(TREE["roots"])
    verify_consistency(old, new, roots[old], roots[new], proof)


# Probes where mlprov deliberately differs from transparency-dev/merkle.
DIVERGENT = {
    # Their roots are the 12-byte placeholder "don't care 2"; we reject any hash that is not
    # 32 bytes with InputError before looking at the sizes.
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
}


@pytest.mark.parametrize("p", PROBES["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probes(p: dict[str, Any]) -> None:
    args = (bytes.fromhex(p["leafHash"]), p["leafIdx"], p["treeSize"], hx(p["proof"]))
    if p["wantErr"]:
        with pytest.raises((InputError, ProofError)):
            verify_inclusion(*args, bytes.fromhex(p["root"]))
    else:
        verify_inclusion(*args, bytes.fromhex(p["root"]))


@pytest.mark.parametrize("p", PROBES["consistency"], ids=lambda p: p["file"])
def test_consistency_probes(p: dict[str, Any]) -> None:
    args = (p["size1"], p["size2"], bytes.fromhex(p["root1"]), bytes.fromhex(p["root2"]))
    if p["file"] in DIVERGENT:
        with pytest.raises(InputError, match="bytes long"):
            verify_consistency(*args, hx(p["proof"]))
    elif p["wantErr"]:
        with pytest.raises((InputError, ProofError)):
            verify_consistency(*args, hx(p["proof"]))
    else:
        verify_consistency(*args, hx(p["proof"]))


# --- Cross-checks against the reference model -------------------------------------------


def test_root_of_matches_reference() -> None:
    for size in range(70):
        assert root_of(LEAVES[:size]) == ref_mth(LEAVES[:size])


def test_range_root_matches_reference_for_every_range() -> None:
    full = tree(40)
    for start in range(41):
        for end in range(start, 41):
            assert range_root(start, end, full.perfect) == ref_mth(LEAVES[start:end])


def test_proofs_match_reference() -> None:
    for size in range(1, 65):
        t = tree(size)
        for m in range(size):
            assert t.inclusion_proof(m) == ref_path(m, LEAVES[:size])
        for m in range(1, size + 1):
            assert t.consistency_proof(m) == ref_subproof(m, LEAVES[:size], True)


# --- Properties ---------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_every_inclusion_proof_verifies(size: int) -> None:
    t = tree(size)
    root = t.root()
    for index in range(size):
        verify_inclusion(LEAVES[index], index, size, t.inclusion_proof(index), root)


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_every_consistency_proof_verifies(new: int) -> None:
    t = tree(new)
    for old in range(new + 1):
        verify_consistency(old, new, t.root(old), t.root(), t.consistency_proof(old))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampered_inclusion_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, MAX_SIZE))
    index = data.draw(st.integers(0, size - 1))
    t = tree(size)
    proof, root, leaf = t.inclusion_proof(index), t.root(), LEAVES[index]
    pos = data.draw(st.integers(0, len(proof) - 1))
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(proof[pos])
    bad[byte] ^= flip
    tampered = [*proof[:pos], bytes(bad), *proof[pos + 1 :]]
    with pytest.raises(ProofError, match=f"leaf {index} of {size}"):
        verify_inclusion(leaf, index, size, tampered, root)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(leaf, other, size, proof, root)
    # A wrong size is checked against the root that size really has.
    other_size = data.draw(st.integers(index + 1, MAX_SIZE).filter(lambda n: n != size))
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, other_size, proof, tree(other_size).root())
    with pytest.raises(ProofError, match="hashes, expected"):
        verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofError, match="hashes, expected"):
        verify_inclusion(leaf, index, size, [*proof, proof[0]], root)
    with pytest.raises(ProofError, match="does not lead"):
        verify_inclusion(LEAVES[(index + 1) % size], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampered_consistency_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, MAX_SIZE))
    old = data.draw(st.integers(1, new - 1))
    t = tree(new)
    proof, old_root, new_root = t.consistency_proof(old), t.root(old), t.root()
    pos = data.draw(st.integers(0, len(proof) - 1))
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    bad = bytearray(proof[pos])
    bad[byte] ^= data.draw(st.integers(1, 255))
    tampered = [*proof[:pos], bytes(bad), *proof[pos + 1 :]]
    with pytest.raises(ProofError, match=f"from size {old} to {new}"):
        verify_consistency(old, new, old_root, new_root, tampered)
    other_old = data.draw(st.integers(1, new - 1).filter(lambda m: m != old))
    with pytest.raises(ProofError):
        verify_consistency(other_old, new, t.root(other_old), new_root, proof)
    other_new = data.draw(st.integers(old + 1, MAX_SIZE).filter(lambda n: n != new))
    with pytest.raises(ProofError):
        verify_consistency(old, other_new, old_root, tree(other_new).root(), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof, proof[0]])
    with pytest.raises(ProofError):
        verify_consistency(old, new, new_root, new_root, proof)


@settings(max_examples=30, deadline=None)
@given(sizes)
def test_frontier_root_for_every_prefix(size: int) -> None:
    frontier = Frontier()
    t = tree(size)
    for n in range(size + 1):
        want = t.root(n)
        assert frontier.root() == want == root_of(LEAVES[:n])
        if n < size:
            frontier.append(LEAVES[n])
    assert frontier.size == size


@settings(max_examples=50, deadline=None)
@given(st.integers(0, MAX_SIZE), st.integers(0, MAX_SIZE))
def test_frontier_resumes_from_nodes(first: int, total: int) -> None:
    assume(first <= total)
    frontier = Frontier()
    frontier.extend(LEAVES[:first])
    seen: list[tuple[int, int, bytes]] = []
    resumed = Frontier.from_nodes(
        frontier.size, frontier.nodes(), on_node=lambda h, i, v: seen.append((h, i, v))
    )
    assert resumed.size == first and resumed.root() == frontier.root()
    resumed.extend(LEAVES[first:total])
    assert resumed.root() == root_of(LEAVES[:total])
    assert all(height >= 1 and (index + 1) << height > first for height, index, _ in seen)


@settings(max_examples=30, deadline=None)
@given(sizes)
def test_on_node_reports_exactly_the_perfect_subtrees(size: int) -> None:
    seen: list[tuple[int, int, bytes]] = []
    frontier = Frontier(on_node=lambda h, i, v: seen.append((h, i, v)))
    frontier.extend(LEAVES[:size])
    t = tree(size)
    want = [(h, i, t.perfect(h, i)) for h in range(1, size.bit_length()) for i in range(size >> h)]
    assert sorted(seen) == sorted(want)
    assert len(seen) == len({(h, i) for h, i, _ in seen})


# --- Edge cases and errors ----------------------------------------------------------------


def test_small_trees() -> None:
    assert root_of([]) == EMPTY_ROOT == Frontier().root() == MemoryTree([]).root()
    one = MemoryTree(LEAVES[:1])
    assert one.inclusion_proof(0) == []
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert one.consistency_proof(1) == [] and one.consistency_proof(0) == []


def test_consistency_with_empty_tree_is_trivial() -> None:
    # Our documented choice: size 0 is consistent with everything, given an empty proof.
    t = tree(5)
    assert t.consistency_proof(0) == consistency_proof(0, 5, t.perfect) == []
    verify_consistency(0, 5, EMPTY_ROOT, t.root(), [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="expected none"):
        verify_consistency(0, 5, EMPTY_ROOT, t.root(), [t.root()])


def test_equal_sizes_need_equal_roots() -> None:
    t = tree(6)
    verify_consistency(6, 6, t.root(), t.root(), [])
    with pytest.raises(ProofError, match="differ"):
        verify_consistency(6, 6, t.root(), t.root(5), [])
    with pytest.raises(ProofError, match="expected none"):
        verify_consistency(6, 6, t.root(), t.root(), [t.root()])


def test_proof_functions_with_a_callback() -> None:
    t = tree(21)
    assert inclusion_proof(13, 21, t.perfect) == t.inclusion_proof(13)
    assert consistency_proof(7, 21, t.perfect) == t.consistency_proof(7)
    assert t.inclusion_proof(3, 9) == ref_path(3, LEAVES[:9])
    assert t.consistency_proof(3, 9) == ref_subproof(3, LEAVES[:9], True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: node_hash(b"x" * 31, LEAVES[0]), "left child hash is 31 bytes long"),
        (lambda: node_hash(LEAVES[0], b""), "right child hash is 0 bytes long"),
        (lambda: root_of([LEAVES[0], b"abc"]), "leaf hash 1 is 3 bytes long"),
        (lambda: MemoryTree([b"abc"]), "leaf hash 0 is 3 bytes long"),
        (lambda: Frontier().append(LEAVES[0].hex().encode()), "leaf hash 0 is 64 bytes"),
        (lambda: tree(8).inclusion_proof(8), "leaf index 8 is out of range for a tree of 8"),
        (lambda: tree(8).inclusion_proof(-1), "leaf index -1 is out of range"),
        (lambda: tree(8).inclusion_proof(2, 9), "tree size 9 is larger than this tree"),
        (lambda: tree(8).root(-1), "tree size -1 is negative"),
        (lambda: tree(8).consistency_proof(5, 3), "old tree size 5 is larger than new"),
        (lambda: tree(8).perfect(3, 1), "no complete subtree at height 3, index 1"),
        (lambda: tree(8).perfect(0, -1), "no complete subtree at height 0, index -1"),
        (lambda: range_root(5, 4, tree(8).perfect), "range end 4 is before range start 5"),
        (lambda: range_root(0, 3, lambda h, i: b"short"), r"subtree \(1, 0\) has a 5-byte"),
        (lambda: inclusion_proof(0, 0, tree(1).perfect), "an empty tree"),
        (lambda: consistency_proof(-1, 2, tree(2).perfect), "old tree size -1 is negative"),
        (lambda: verify_inclusion(LEAVES[0], 1, 1, [], LEAVES[0]), "leaf index 1 is out"),
        (lambda: verify_inclusion(b"", 0, 1, [], LEAVES[0]), "leaf hash is 0 bytes"),
        (lambda: verify_inclusion(LEAVES[0], 0, 1, [], b"r"), "root hash is 1 bytes"),
        (lambda: root_from_inclusion(LEAVES[0], 3, 2, []), "leaf index 3 is out of range"),
        (lambda: verify_consistency(3, 2, EMPTY_ROOT, EMPTY_ROOT, []), "old tree size 3"),
        (lambda: verify_consistency(1, 2, b"", EMPTY_ROOT, []), "old root hash is 0 bytes"),
        (lambda: verify_consistency(1, 2, EMPTY_ROOT, b"", []), "new root hash is 0 bytes"),
        (lambda: Frontier.from_nodes(3, [(1, LEAVES[0])]), r"a tree of 3 leaves needs \[1, 0\]"),
        (lambda: Frontier.from_nodes(1, [(0, b"")]), "frontier node at height 0 is 0 bytes"),
    ],
)
def test_bad_arguments_raise_input_error(call: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        call()
    assert info.value.hint


def test_malformed_proof_hash_is_a_proof_error() -> None:
    t = tree(8)
    proof = t.inclusion_proof(5)
    proof[1] = proof[1][:31]
    with pytest.raises(ProofError, match="31-byte hash at position 1") as info:
        verify_inclusion(LEAVES[5], 5, 8, proof, t.root())
    assert info.value.hint
    cproof = t.consistency_proof(3)
    cproof[0] = b""
    with pytest.raises(ProofError, match="0-byte hash at position 0"):
        verify_consistency(3, 8, t.root(3), t.root(), cproof)


def test_public_api_is_exported() -> None:
    for name in merkle.__all__:
        assert hasattr(merkle, name)
