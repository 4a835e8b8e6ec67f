"""Tests for record sets (mlprov.records.sets) and their proofs (mlprov.records.setproofs)."""

from __future__ import annotations

import contextlib
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.errors import InputError, IntegrityError, NotFoundError, ProofError
from mlprov.merkle import EMPTY_ROOT as EMPTY
from mlprov.merkle import MemoryTree, leaf_hash
from mlprov.records.setfiles import read_rows
from mlprov.records.setproofs import (
    MembershipProof,
    Neighbour,
    NonMembershipProof,
    load_set_proof,
)
from mlprov.records.sets import FORMAT, RecordSet, SetDiff, diff

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

digests = st.binary(min_size=32, max_size=32)
rngs = st.integers(0, 2**32).map(random.Random)  # seeded: cheap for Hypothesis to draw
# Digests crowded into a few shards, so that most shards are empty and some are full.
crowded = st.builds(
    lambda lead, tail: bytes([lead]) + tail,
    st.sampled_from([0x00, 0x01, 0x7F, 0xFF]),
    st.binary(min_size=31, max_size=31),
)
# Digests whose first 8 bytes tie, so that sorting must look further.
tied = st.builds(lambda tail: b"\x33" * 9 + tail, st.binary(min_size=23, max_size=23))


@st.composite
def digest_lists(draw: st.DrawFn, max_bulk: int = 600) -> list[bytes]:
    """A few drawn digests (which shrink well) plus a bulk from a seeded generator."""
    explicit = draw(st.lists(st.one_of(digests, crowded, tied), max_size=8))
    n = draw(st.integers(0, max_bulk))
    rng = random.Random(draw(st.integers(0, 2**32)))
    leads = draw(st.sampled_from([None, (0x00,), (0x00, 0x01, 0xFF), (0x42,)]))
    bulk = [
        (bytes([rng.choice(leads)]) + rng.randbytes(31)) if leads else rng.randbytes(32)
        for _ in range(n)
    ]
    return explicit + bulk


def _step(d: bytes, delta: int) -> bytes | None:
    v = int.from_bytes(d, "big") + delta
    return v.to_bytes(32, "big") if 0 <= v < 2**256 else None


def absent_probes(members: set[bytes], rng: random.Random) -> list[bytes]:
    """Absent digests: next to members, at both ends, in empty shards, and random."""
    ordered = sorted(members)
    near = [
        _step(d, delta) for d in rng.sample(ordered, min(40, len(ordered))) for delta in (-1, 1)
    ]
    edges: list[bytes | None] = [
        bytes(32),
        b"\xff" * 32,
        bytes([0x7F]) + bytes(31),
        bytes([0x80]) + b"\xff" * 31,
    ]
    if ordered:
        edges += [_step(ordered[0], -1), _step(ordered[-1], 1)]
    empty = [
        bytes([s]) + rng.randbytes(31) for s in range(256) if not any(d[0] == s for d in ordered)
    ]
    probes = [*near, *edges, *empty[:20], *(rng.randbytes(32) for _ in range(20))]
    return [p for p in probes if p is not None and p not in members]


# -- the reference definition, with hashlib only ---------------------------------------


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf data, straight from the definition."""
    if not leaves:
        return sha256(b"").digest()
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _half(values: set[bytes]) -> list[bytes]:
    """The 256 top-leaf data of one half: each shard's root and size."""
    top = []
    for s in range(256):
        shard = sorted(d for d in values if d[0] == s)
        top.append(_mth(shard) + len(shard).to_bytes(8, "big"))
    return top


def reference_root(
    members: set[bytes], subjects: set[bytes] | frozenset[bytes] = frozenset()
) -> bytes:
    """The set root as ADR 0004 defines it: record shards, then subject shards."""
    return _mth(_half(members) + _half(set(subjects)))


def with_subjects(
    ds: list[bytes], subjects: list[bytes], rng: random.Random
) -> tuple[RecordSet, set[bytes]]:
    """A set of the records `ds` (no subject) plus one row per subject, on a new record or
    on one of `ds`, so that its subjects are exactly `set(subjects)`."""
    rows: list[tuple[bytes, bytes | None]] = [(d, None) for d in ds]
    for h in subjects:
        rows.append((rng.choice(ds) if ds and rng.random() < 0.5 else rng.randbytes(32), h))
    rng.shuffle(rows)
    built = RecordSet.build([d for d, _ in rows], subjects=[h for _, h in rows])
    return built, {d for d, _ in rows}


def test_root_matches_the_adr_definition() -> None:
    rng = random.Random(4)
    cases: list[list[bytes]] = [
        [],
        [bytes(32)],
        [b"\xff" * 32],
        [bytes([0x10]) + rng.randbytes(31) for _ in range(7)],  # one shard, not a power of 2
        [rng.randbytes(32) for _ in range(300)],
    ]
    for case in cases:
        assert RecordSet.build(case).root == reference_root(set(case))
        # The same records, each row naming a subject (some twice): the subject half counts.
        # Rows 2k and 2k+1 name one subject (a repeat); every third row names none.
        named = [None if i % 3 == 2 else sha256(case[i - i % 2]).digest() for i in range(len(case))]
        subjects = [h for h in named if h is not None]
        rs = RecordSet.build(case, subjects=named)
        assert rs.root == reference_root(set(case), set(subjects))
        assert rs.subject_count == len(set(subjects))
        # Equivalently, the root joins a record-half root and a subject-half root.
        halves = _mth(_half(set(case))[:128]), _mth(_half(set(case))[128:])
        record_half = sha256(b"\x01" + halves[0] + halves[1]).digest()
        assert record_half == _mth(_half(set(case)))
        subject_half = _mth(_half(set(subjects)))
        assert rs.root == sha256(b"\x01" + record_half + subject_half).digest()
    # Fixed vectors, so that a change to the definition cannot go unnoticed.
    assert reference_root(set()) == _mth([sha256(b"").digest() + bytes(8)] * 512)
    assert RecordSet.build([]).root.hex() == (
        "28c1d5b247417e6dd2e0e39a43e9f258485664cc9fd4c56e38a8ca0deec8e3cb"
    )
    three = [bytes(32), b"\xff" * 32, bytes([0]) + b"\x01" * 31]
    assert RecordSet.build(three).root.hex() == (
        "463357b5b409bf20d8cbd5201535dfb92814ae876e7f6854179077c17856d629"
    )
    # Without subjects, the root joins the record half (the root of the 256-leaf top tree
    # before subjects were committed) with the empty half.
    old_empty = bytes.fromhex("ef10e2aa7949e841960c1c76ab8ccd0f8ad5273b805412a9f1c1115c6c4f63f1")
    old_three = bytes.fromhex("e2a5ca422dfc14b9e7ca90c0e22bcb2a0f56049a8e860fbf928dbdfb8138149c")
    assert RecordSet.build(three).root == sha256(b"\x01" + old_three + old_empty).digest()
    named = RecordSet.build(three, subjects=[None, three[0], sha256(b"C-1").digest()])
    assert named.root.hex() == ("ce66ffbec2f1d907c87491284e00fe2c0524de6c186ca66b3ef3ff6ffb6922ea")


@SETTINGS
@given(digest_lists(max_bulk=200), digest_lists(max_bulk=100), rngs)
def test_root_matches_the_reference_for_random_sets(
    ds: list[bytes], ss: list[bytes], rng: Any
) -> None:
    assert RecordSet.build(ds).root == reference_root(set(ds))
    rs, members = with_subjects(ds, ss, rng)
    assert rs.root == reference_root(members, set(ss))
    assert rs.subjects() == set(ss) and rs.subject_count == len(set(ss))


@SETTINGS
@given(digest_lists(), rngs, st.integers(0, 20))
def test_root_ignores_order_and_duplicates(ds: list[bytes], rng: Any, dups: int) -> None:
    shuffled = ds + [rng.choice(ds) for _ in range(dups if ds else 0)]
    rng.shuffle(shuffled)
    a, b = RecordSet.build(ds), RecordSet.build(shuffled)
    assert a.root == b.root
    assert a.size == b.size == len(set(ds))
    assert b.rows == len(shuffled)
    assert list(b) == sorted(set(ds))


# -- proofs ------------------------------------------------------------------------------


@SETTINGS
@given(digest_lists())
def test_every_member_has_a_verifying_membership_proof(ds: list[bytes]) -> None:
    rs = RecordSet.build(ds)
    root = rs.root
    for d in set(ds):
        assert d in rs
        proof = rs.prove(d)
        assert isinstance(proof, MembershipProof)
        proof.verify(root)
        assert proof.shard_size == rs.shard(d[0])[1]
        with pytest.raises(InputError, match="is in this set"):
            rs.non_membership_proof(d)


@SETTINGS
@given(digest_lists(), rngs)
def test_every_absent_digest_has_a_verifying_non_membership_proof(
    ds: list[bytes], rng: Any
) -> None:
    rs = RecordSet.build(ds)
    root = rs.root
    for d in absent_probes(set(ds), rng):
        assert d not in rs
        proof = rs.prove(d)
        assert isinstance(proof, NonMembershipProof)
        proof.verify(root)
        with pytest.raises(NotFoundError):
            rs.membership_proof(d)


def test_large_and_crowded_sets() -> None:
    """Hypothesis favours small sets; these are big, crowded into few shards, or both."""
    rng = random.Random(7)
    cases = [
        [rng.randbytes(32) for _ in range(600)],
        [bytes([0x42]) + rng.randbytes(31) for _ in range(600)],  # 255 empty shards
        [bytes([rng.choice((0, 1, 255))]) + rng.randbytes(31) for _ in range(500)],
    ]
    for ds in cases:
        rs = RecordSet.build(ds)
        assert rs.root == reference_root(set(ds))
        for d in ds:
            rs.membership_proof(d).verify(rs.root)
        for d in absent_probes(set(ds), rng):
            rs.non_membership_proof(d).verify(rs.root)


def test_sorting_looks_past_the_first_eight_bytes() -> None:
    rng = random.Random(8)
    ds = [b"\x33" * 8 + rng.randbytes(24) for _ in range(50)] + [rng.randbytes(32)]
    rs = RecordSet.build(ds)
    assert list(rs) == sorted(set(ds))
    assert rs.root == reference_root(set(ds))


def test_non_membership_cases() -> None:
    a, b, c = (bytes([0x20]) + bytes([x]) * 31 for x in (0x10, 0x20, 0x30))
    rs = RecordSet.build([c, a, b, b])
    below, between, above = (bytes([0x20]) + bytes([x]) * 31 for x in (0x01, 0x15, 0x40))
    p = rs.non_membership_proof(below)
    assert p.left is None and p.right is not None and p.right.index == 0
    p.verify(rs.root)
    p = rs.non_membership_proof(between)
    assert p.left is not None and p.right is not None
    assert (bytes.fromhex(p.left.digest), bytes.fromhex(p.right.digest)) == (a, b)
    assert (p.left.index, p.right.index) == (0, 1)
    p.verify(rs.root)
    p = rs.non_membership_proof(above)
    assert p.right is None and p.left is not None and p.left.index == 2
    p.verify(rs.root)
    p = rs.non_membership_proof(bytes([0x21]) + bytes(31))  # an empty shard
    assert (p.left, p.right, p.shard_size) == (None, None, 0)
    p.verify(rs.root)


def test_single_member_and_empty_set() -> None:
    d = bytes([0x80]) + b"\x55" * 31
    one = RecordSet.build([d])
    one.membership_proof(d).verify(one.root)
    assert one.membership_proof(d).path == []
    for probe in (bytes([0x80]) + bytes(31), bytes([0x80]) + b"\xff" * 31, bytes(32)):
        one.non_membership_proof(probe).verify(one.root)
    empty = RecordSet.build([])
    assert (empty.size, empty.rows, list(empty)) == (0, 0, [])
    empty.non_membership_proof(d).verify(empty.root)
    with pytest.raises(NotFoundError):
        empty.membership_proof(d)


# -- subjects -------------------------------------------------------------------------


@SETTINGS
@given(digest_lists(max_bulk=100), digest_lists(max_bulk=300), rngs)
def test_every_subject_is_proven_in_and_every_other_out(
    ds: list[bytes], ss: list[bytes], rng: Any
) -> None:
    rs, members = with_subjects(ds, ss, rng)
    root, subjects = rs.root, set(ss)
    for h in subjects:
        assert rs.has_subject(h)
        proof = rs.prove_subject(h)
        assert isinstance(proof, MembershipProof) and proof.kind == "subject"
        assert (proof.top_index, len(proof.top_path)) == (256 + h[0], 9)
        assert proof.shard_size == rs.subject_shard(h[0])[1]
        proof.verify(root)
        with pytest.raises(InputError, match=r"subject hash .* is in this set"):
            rs.subject_non_membership_proof(h)
    for h in absent_probes(subjects, rng):
        assert not rs.has_subject(h)
        proof = rs.prove_subject(h)
        assert isinstance(proof, NonMembershipProof) and proof.kind == "subject"
        proof.verify(root)
        with pytest.raises(NotFoundError, match=r"subject hash .* is not in this set"):
            rs.subject_membership_proof(h)
    for d in list(members)[:5]:  # record proofs still say "record", with a 9-hash top path
        proof = rs.prove(d)
        assert (proof.kind, proof.top_index, len(proof.top_path)) == ("record", d[0], 9)
        proof.verify(root)


def test_subject_non_membership_cases() -> None:
    a, b, c = (bytes([0x20]) + bytes([x]) * 31 for x in (0x10, 0x20, 0x30))
    record = bytes([0x20]) + bytes([0x15]) * 31  # a record digest, not a subject
    rs = RecordSet.build([record, record, record, record], subjects=[c, a, b, b])
    assert rs.subjects() == {a, b, c} and not rs.has_subject(record)
    below, above = (bytes([0x20]) + bytes([x]) * 31 for x in (0x01, 0x40))
    p = rs.subject_non_membership_proof(below)
    assert p.left is None and p.right is not None and p.right.index == 0
    p.verify(rs.root)
    p = rs.subject_non_membership_proof(record)  # between a and b
    assert p.left is not None and p.right is not None
    assert (bytes.fromhex(p.left.digest), bytes.fromhex(p.right.digest)) == (a, b)
    p.verify(rs.root)
    p = rs.subject_non_membership_proof(above)
    assert p.right is None and p.left is not None and p.left.index == 2
    p.verify(rs.root)
    p = rs.subject_non_membership_proof(bytes([0x21]) + bytes(31))  # an empty subject shard
    assert (p.left, p.right, p.shard_size, p.shard_root) == (None, None, 0, EMPTY.hex())
    p.verify(rs.root)
    # The record half is separate: the record is in, as a record, and no subject is.
    rs.membership_proof(record).verify(rs.root)
    for h in (a, b, c):
        rs.non_membership_proof(h).verify(rs.root)


def test_a_set_without_subjects() -> None:
    rng = random.Random(9)
    ds = [rng.randbytes(32) for _ in range(50)]
    rs = RecordSet.build(ds, keys=[str(i) for i in range(50)])
    assert (rs.subject_count, rs.subjects()) == (0, set())
    assert rs.root == reference_root(set(ds))
    assert all(rs.subject_shard(s) == (EMPTY, 0) for s in range(256))
    for h in [*ds[:5], bytes(32), b"\xff" * 32]:
        assert not rs.has_subject(h)
        proof = rs.prove_subject(h)
        assert isinstance(proof, NonMembershipProof) and proof.shard_size == 0
        proof.verify(rs.root)
        with pytest.raises(NotFoundError):
            rs.subject_membership_proof(h)
    # Naming a subject on a row changes the root even though the records are the same.
    assert RecordSet.build(ds, subjects=[None] * 49 + [ds[0]]).root != rs.root
    empty = RecordSet.build([])
    empty.prove_subject(bytes(32)).verify(empty.root)
    with pytest.raises(InputError, match="a subject hash is 1 bytes long"):
        empty.has_subject(b"x")
    with pytest.raises(InputError, match="a subject hash is 64 bytes long"):
        empty.prove_subject(b"ab" * 32)


def _other_kind(proof: Any) -> Any:
    return proof.model_copy(update={"kind": "subject" if proof.kind == "record" else "record"})


def test_a_record_proof_is_no_subject_proof_and_back() -> None:
    rng = random.Random(10)
    ds = [rng.randbytes(32) for _ in range(60)]
    people = [rng.randbytes(32) for _ in range(20)]
    rs = RecordSet.build(ds[:20] + ds, subjects=people + [None] * 60)
    root, outsider = rs.root, rng.randbytes(32)
    proofs = [
        rs.membership_proof(ds[3]),  # a record, not a subject
        rs.subject_membership_proof(people[4]),  # a subject, not a record
        rs.non_membership_proof(people[5]),  # a subject, so not a record... yet a subject
        rs.subject_non_membership_proof(ds[6]),  # a record, so not a subject... yet a record
        rs.non_membership_proof(outsider),  # neither: absent from both halves
        rs.subject_non_membership_proof(outsider),
    ]
    for proof in proofs:
        proof.verify(root)
        flipped = _other_kind(proof)
        with pytest.raises(ProofError, match="do not lead to the set root"):
            flipped.verify(root)
        with pytest.raises(ProofError, match="do not lead to the set root"):
            load_set_proof(
                json.dumps({**json.loads(proof.dumps()), "kind": flipped.kind}).encode()
            ).verify(root)
    # A proof file that leaves out `kind` is about records.
    data = json.loads(rs.membership_proof(ds[3]).dumps())
    assert data["kind"] == "record"
    del data["kind"]
    load_set_proof(json.dumps(data).encode()).verify(root)
    data = json.loads(rs.subject_membership_proof(people[4]).dumps())
    del data["kind"]
    with pytest.raises(ProofError):
        load_set_proof(json.dumps(data).encode()).verify(root)


def test_a_proof_made_before_subjects_were_committed_is_refused() -> None:
    """A v1 file (256-leaf top tree, 8-hash top path, no `kind`) fails clearly."""
    rs = RecordSet.build([bytes(32)])
    for proof in (rs.membership_proof(bytes(32)), rs.non_membership_proof(b"\x01" * 32)):
        old = json.loads(proof.dumps())
        del old["kind"]
        old["top_path"] = old["top_path"][:8]
        old["format"] = old["format"].replace("/v2", "/v1")
        with pytest.raises(InputError, match="before subject hashes were committed"):
            load_set_proof(json.dumps(old).encode())


# -- forged and tampered proofs ---------------------------------------------------------


def test_a_proof_from_another_set_fails() -> None:
    rng = random.Random(1)
    ds = [rng.randbytes(32) for _ in range(300)]
    a, b = RecordSet.build(ds[:200]), RecordSet.build(ds[100:])
    foreign = b.membership_proof(ds[250])  # a member of b only
    with pytest.raises(ProofError, match="is for the record set with root"):
        foreign.verify(a.root)
    relabelled = foreign.model_copy(update={"root": a.root.hex()})
    with pytest.raises(ProofError, match="do not lead to the set root"):
        relabelled.verify(a.root)
    absent = b.non_membership_proof(ds[50])  # a member of a, absent from b
    with pytest.raises(ProofError):
        absent.model_copy(update={"root": a.root.hex()}).verify(a.root)


def test_a_neighbours_path_does_not_prove_an_absent_digest() -> None:
    rng = random.Random(2)
    rs = RecordSet.build([bytes([7]) + rng.randbytes(31) for _ in range(50)])
    members = list(rs)
    for i in (0, 10, 49):
        absent = _step(members[i], 1)
        assert absent is not None and absent not in rs
        forged = rs.membership_proof(members[i]).model_copy(update={"digest": absent.hex()})
        with pytest.raises(ProofError, match="does not lead to the shard root"):
            forged.verify(rs.root)


def test_present_digests_have_no_non_membership_proof() -> None:
    rng = random.Random(3)
    rs = RecordSet.build([bytes([9]) + rng.randbytes(31) for _ in range(40)])
    members, root = list(rs), rs.root
    for i in (0, 17, 39):
        d = members[i]
        after = rs.non_membership_proof(_step(d, 1) or b"")  # left is d itself
        with pytest.raises(ProofError, match="not strictly below"):
            after.model_copy(update={"digest": d.hex()}).verify(root)
        before = rs.non_membership_proof(_step(d, -1) or b"")  # right is d itself
        with pytest.raises(ProofError, match="not strictly above"):
            before.model_copy(update={"digest": d.hex()}).verify(root)
    # Skipping the member: its two neighbours, honest paths, but not adjacent.
    d = members[17]
    skip = rs.non_membership_proof(_step(members[16], 1) or b"")
    right = rs.non_membership_proof(_step(d, 1) or b"").right
    forged = skip.model_copy(update={"digest": d.hex(), "right": right})
    with pytest.raises(ProofError, match="not adjacent"):
        forged.verify(root)
    # Hiding the first or last member: a lone neighbour that is not at the edge.
    below = rs.non_membership_proof(_step(members[0], 1) or b"")
    with pytest.raises(ProofError, match="not 0"):
        below.model_copy(update={"digest": members[0].hex(), "left": None}).verify(root)
    above = rs.non_membership_proof(_step(members[-1], -1) or b"")
    with pytest.raises(ProofError, match="not the last index"):
        above.model_copy(update={"digest": members[-1].hex(), "right": None}).verify(root)


def _hex_paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() if k != "format" for p in _hex_paths(v, (*path, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _hex_paths(v, (*path, i))]
    return [path] if isinstance(obj, str) else []


def _int_paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _int_paths(v, (*path, k))]
    return [path] if isinstance(obj, int) and not isinstance(obj, bool) else []


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def _mutants(proof: MembershipProof | NonMembershipProof, rng: random.Random) -> list[Any]:
    """Tampered copies of a proof (as JSON objects): one change each."""
    base = json.loads(proof.dumps())
    out = []
    m = json.loads(proof.dumps())  # the same proof, said of the other half
    m["kind"] = "subject" if base["kind"] == "record" else "record"
    out.append(m)
    for path in _hex_paths(base):
        m = json.loads(proof.dumps())
        text = _get(m, path)
        i = rng.randrange(len(text))
        _set(
            m, path, text[:i] + rng.choice("0123456789abcdef".replace(text[i], "")) + text[i + 1 :]
        )
        out.append(m)
    for path in _int_paths(base):
        for delta in (-1, 1):
            m = json.loads(proof.dumps())
            _set(m, path, _get(m, path) + delta)
            out.append(m)
    for key in ("path", "top_path"):  # a hash dropped or added
        if base.get(key):
            m = json.loads(proof.dumps())
            m[key].pop()
            out.append(m)
        m = json.loads(proof.dumps())
        m.setdefault(key, []).append("00" * 32)
        out.append(m)
    if "left" in base or "right" in base:
        m = json.loads(proof.dumps())
        m["left"], m["right"] = base.get("right"), base.get("left")
        out.append({k: v for k, v in m.items() if v is not None})
        for side in ("left", "right"):
            if side in base:
                m = json.loads(proof.dumps())
                del m[side]
                out.append(m)
    return out


def _is_true(rs: RecordSet, proof: MembershipProof | NonMembershipProof) -> bool:
    """Does the proof state a true thing about `rs`?"""
    raw = bytes.fromhex(proof.digest)
    present = rs.has_subject(raw) if proof.kind == "subject" else raw in rs
    return present == isinstance(proof, MembershipProof)


@SETTINGS
@given(digest_lists(max_bulk=300), digest_lists(max_bulk=60), rngs)
def test_tampered_proofs_fail(ds: list[bytes], ss: list[bytes], rng: Any) -> None:
    rs, members = (
        with_subjects(ds, ss, rng) if rng.random() < 0.7 else (RecordSet.build(ds), set(ds))
    )
    root, subjects = rs.root, rs.subjects()
    records = rng.sample(sorted(members), min(3, len(members))) + absent_probes(members, rng)[:4]
    people = rng.sample(sorted(subjects), min(3, len(subjects))) + absent_probes(subjects, rng)[:4]
    proofs = [rs.prove(d) for d in records] + [rs.prove_subject(h) for h in people]
    for proof in proofs:
        assert _is_true(rs, proof)
        for mutant in _mutants(proof, rng):
            try:
                tampered = load_set_proof(json.dumps(mutant).encode())
            except InputError:
                continue  # refused as malformed: also a failure to prove
            if tampered == proof:
                continue
            try:
                tampered.verify(root)
            except ProofError:
                continue
            # The only changes that may survive state true things: another absent value
            # between the same neighbours, or (when both halves hold the same values, as
            # when both are empty) the same statement about the other half.
            assert _is_true(rs, tampered)
            if tampered.kind != proof.kind:
                assert set(rs) == subjects
            else:
                assert isinstance(tampered, NonMembershipProof)
                assert tampered.digest != proof.digest


def test_empty_shard_proof_naming_members_fails() -> None:
    rs = RecordSet.build([bytes([1]) * 32, bytes([1]) + bytes(31)])
    empty = rs.non_membership_proof(bytes([2]) * 32)
    neighbour = rs.non_membership_proof(bytes([1]) + b"\x05" * 31).left
    with pytest.raises(ProofError, match="is empty"):
        empty.model_copy(update={"left": neighbour}).verify(rs.root)
    nonempty = rs.non_membership_proof(bytes([1]) + b"\x05" * 31)
    with pytest.raises(ProofError, match="names no neighbour"):
        nonempty.model_copy(update={"left": None, "right": None}).verify(rs.root)


def _dishonest_proof(shard: int, members: list[bytes], size: int, digest: bytes) -> Any:
    """A root whose shard `shard` holds `members` (in this order) but commits `size`, and a
    non-membership proof for `digest` naming the last member as its left neighbour."""
    tree = MemoryTree([leaf_hash(d) for d in members])
    shard_root = tree.root()
    top = MemoryTree(
        [
            leaf_hash((shard_root + size.to_bytes(8, "big")) if s == shard else EMPTY + bytes(8))
            for s in range(512)
        ]
    )
    left = None
    if members:
        i = len(members) - 1
        path = [h.hex() for h in tree.inclusion_proof(i)]
        left = Neighbour(digest=members[i].hex(), index=i, path=path)
    proof = NonMembershipProof(
        digest=digest.hex(),
        root=top.root().hex(),
        shard=shard,
        shard_size=size,
        shard_root=shard_root.hex(),
        top_path=[h.hex() for h in top.inclusion_proof(shard)],
        left=left,
    )
    return proof, top.root()


def test_a_dishonest_builders_shards_are_caught() -> None:
    # The honest shape verifies...
    proof, root = _dishonest_proof(5, [bytes([5]) + bytes(31)], 1, bytes([5]) + b"\x01" * 31)
    proof.verify(root)
    # ...a member filed under the wrong shard does not...
    proof, root = _dishonest_proof(5, [bytes([4]) + b"\xff" * 31], 1, bytes([5]) + bytes(31))
    with pytest.raises(ProofError, match="is not in shard 5"):
        proof.verify(root)
    # ...nor a shard of size 0 whose root is not the empty root.
    proof, root = _dishonest_proof(5, [bytes([5]) + bytes(31)], 0, bytes([5]) + b"\x01" * 31)
    with pytest.raises(ProofError, match="has size 0 but not the empty root"):
        proof.model_copy(update={"left": None}).verify(root)


def test_verify_refuses_a_malformed_root() -> None:
    rs = RecordSet.build([bytes(32)])
    with pytest.raises(InputError, match="32"):
        rs.membership_proof(bytes(32)).verify(rs.root.hex().encode())


# -- proof files ----------------------------------------------------------------------


@SETTINGS
@given(digest_lists(max_bulk=100), digests)
def test_proofs_round_trip_through_json(ds: list[bytes], probe: bytes) -> None:
    rs = RecordSet.build(ds)
    proofs = [rs.prove(probe), *(rs.prove(d) for d in ds[:3])]
    for proof in proofs:
        again = load_set_proof(proof.dumps())
        assert again == proof and type(again) is type(proof)
        again.verify(rs.root)
        assert json.loads(proof.dumps())["format"] == proof.format


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"format": "mlprov.inclusion-proof/v1"}', "not an mlprov record-set proof"),
        (b'{"format": "mlprov.record-membership/v2"}', "not a valid MembershipProof"),
        (b'{"format": "mlprov.record-membership/v1"}', "before subject hashes were committed"),
        (b'{"format": "mlprov.record-non-membership/v1"}', "make the proof again"),
        (b'{"format": "mlprov.record-membership/v2", "kind": "key"}', "kind"),
        (b"[1, 2]", "not a valid MembershipProof"),
    ],
)
def test_malformed_proof_files(data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_set_proof(data)


def test_a_proof_file_with_bad_hex_is_refused() -> None:
    rs = RecordSet.build([bytes(32)])
    m = json.loads(rs.membership_proof(bytes(32)).dumps())
    m["shard_root"] = m["shard_root"].upper()
    with pytest.raises(InputError, match="shard_root"):
        load_set_proof(json.dumps(m).encode())


# -- the set's algebra --------------------------------------------------------------------


subject_pool = [sha256(b"subject %d" % i).digest() for i in range(12)]


@st.composite
def record_sets(draw: st.DrawFn) -> tuple[RecordSet, list[tuple[bytes, bytes | None]]]:
    pool = draw(st.lists(digests, min_size=1, max_size=30, unique=True))
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(pool), st.none() | st.sampled_from(subject_pool)),
            max_size=40,
        )
    )
    built = RecordSet.build([d for d, _ in rows], subjects=[s for _, s in rows])
    return built, rows


@SETTINGS
@given(record_sets(), record_sets(), st.lists(st.sampled_from(subject_pool)))
def test_algebra_matches_python_sets(
    a: tuple[RecordSet, list[Any]], b: tuple[RecordSet, list[Any]], asked: list[bytes]
) -> None:
    (sa, rows_a), (sb, rows_b) = a, b
    ma, mb = {d for d, _ in rows_a}, {d for d, _ in rows_b}
    assert set(sa) == ma
    assert set(sa.difference(sb)) == ma - mb
    assert set(sa.intersection(sb)) == ma & mb
    assert sa.difference(sb).rows == sum(1 for d, _ in rows_a if d not in mb)
    subj_a = {s for _, s in rows_a if s is not None}
    subj_b = {s for _, s in rows_b if s is not None}
    assert set(sa.intersection(sb)) == set(sb.intersection(sa))
    kept = {s for d, s in rows_a if d not in mb and s is not None}
    assert sa.difference(sb).root == reference_root(ma - mb, kept)
    assert sa.difference(sb).subjects() == kept
    assert all(sa.has_subject(s) == (s in subj_a) for s in subject_pool)
    assert sa.subjects() == subj_a
    assert sa.subjects_in(asked) == subj_a & set(asked)
    d = diff(sa, sb)
    assert d == SetDiff(
        added=tuple(sorted(mb - ma)),
        removed=tuple(sorted(ma - mb)),
        subjects_added=len(subj_b - subj_a),
        subjects_removed=len(subj_a - subj_b),
    )
    assert (d.added_count, d.removed_count) == (len(mb - ma), len(ma - mb))


def test_keys_subjects_and_rows() -> None:
    a, b = bytes([3]) * 32, bytes([4]) * 32
    rs = RecordSet.build([b, a, b], keys=["k2", "k1", None], subjects=[None, a, None])
    assert (rs.size, rs.rows) == (2, 3)
    assert rs.keys_of(a) == ["k1"] and rs.keys_of(b) == ["k2"]
    assert rs.keys_of(bytes(32)) == []
    assert rs.subjects_in([a, b]) == {a}
    assert rs.subjects_in([]) == set()
    assert rs.table.column("digest").to_pylist() == [a, b, b]
    assert rs.table.column("key").to_pylist() == ["k1", "k2", None]  # stable among equals
    assert rs.shard(3) == (sha256(b"\x00" + a).digest(), 1)
    with pytest.raises(InputError):
        rs.shard(256)
    assert "not a digest" not in rs


def test_build_refuses_bad_input() -> None:
    with pytest.raises(InputError, match="digest column"):
        RecordSet.build([b"short"])
    with pytest.raises(InputError, match="digest column"):
        RecordSet.build(["ab" * 32])  # type: ignore[list-item]
    with pytest.raises(InputError, match="2 keys were given for 1"):
        RecordSet.build([bytes(32)], keys=["a", "b"])
    with pytest.raises(InputError, match="subject column"):
        RecordSet.build([bytes(32)], subjects=[b"x"])
    with pytest.raises(InputError, match="32 bytes"):
        RecordSet.build([bytes(32)]).membership_proof(b"x")


def test_from_table_and_the_guarded_constructor() -> None:
    rng = random.Random(5)
    ds = [rng.randbytes(32) for _ in range(20)]
    plain = pa.table({"digest": pa.array(ds, pa.binary()), "key": [str(i) for i in range(20)]})
    rs = RecordSet.from_table(plain)
    assert rs.root == RecordSet.build(ds).root
    with pytest.raises(InputError, match="unknown columns"):
        RecordSet.from_table(plain.append_column("text", pa.array(["x"] * 20)))
    with pytest.raises(InputError, match="no `digest` column"):
        RecordSet.from_table(pa.table({"key": ["a"]}))
    with pytest.raises(InputError, match="cannot be read"):
        RecordSet.from_table(pa.table({"digest": pa.array([b"short"])}))
    with pytest.raises(InputError, match="nulls"):
        RecordSet.from_table(pa.table({"digest": pa.array([None, bytes(32)], pa.binary())}))
    with pytest.raises(InputError, match="not sorted"):
        RecordSet(rs.table.take(pa.array(list(range(19, -1, -1)))))
    with pytest.raises(InputError, match="SCHEMA"):
        RecordSet(plain)


# -- files --------------------------------------------------------------------------------


def _files(directory: Path) -> list[str]:
    """What a directory of set files holds, besides the lock saves take turns on."""
    return sorted(p.name for p in directory.iterdir() if p.name != ".save.lock")


@SETTINGS
@given(digest_lists(max_bulk=100))
def test_save_and_load_round_trip(ds: list[bytes]) -> None:
    import tempfile

    keys = [f"k{i}" if i % 3 else None for i in range(len(ds))]
    rs = RecordSet.build(ds, keys=keys)
    with tempfile.TemporaryDirectory() as tmp:
        path = rs.save(Path(tmp) / "sets")
        assert path.name == rs.root.hex() + ".parquet"
        assert RecordSet.load(path) == rs
        assert _files(path.parent) == [path.name]  # no temp file left


def test_save_writes_beside_the_trees_and_leaves_no_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = [bytes([i]) * 32 for i in range(40)]
    first = RecordSet.build(ds, keys=[f"k{i}" for i in range(40)]).save(tmp_path)
    # Again from a fresh set (its root not yet known): the draft is dropped, the file kept.
    again = RecordSet.build(ds, keys=[f"k{i}" for i in range(40)]).save(tmp_path)
    assert again == first and _files(tmp_path) == [first.name]
    meta = pq.read_metadata(first).metadata
    assert meta[b"mlprov.root"] == first.stem.encode()
    assert meta[b"mlprov.format"] == FORMAT.encode()

    def broken(self: RecordSet) -> object:
        raise RuntimeError("the trees failed")

    monkeypatch.setattr(RecordSet, "_top", property(broken))
    with pytest.raises(RuntimeError, match="the trees failed"):
        RecordSet.build([b"\x07" * 32]).save(tmp_path / "other")
    assert list((tmp_path / "other").iterdir()) == []  # the draft went with the error


def test_a_save_that_cannot_take_the_lock_leaves_no_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlprov.records import sets

    def locked_out(directory: Path) -> Any:
        raise PermissionError(f"{directory}: the save lock cannot be opened")

    monkeypatch.setattr(sets, "saving", locked_out)
    fresh = RecordSet.build([bytes([i]) * 32 for i in range(40)])  # root not yet known
    with pytest.raises(PermissionError, match="save lock"):
        fresh.save(tmp_path)  # the draft was written beside the trees, then dropped
    assert list(tmp_path.iterdir()) == []


def test_a_set_is_written_a_row_group_at_a_time_and_reads_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlprov.records import setfiles

    monkeypatch.setattr(setfiles, "GROUP_ROWS", 7)
    rng = random.Random(5)
    ds = [rng.randbytes(32) for _ in range(40)]
    people = [rng.randbytes(32) for _ in range(4)]
    rs = RecordSet.build(
        ds, keys=[f"k{i}" for i in range(40)], subjects=[people[i % 4] for i in range(40)]
    )
    path = rs.save(tmp_path)
    # 40 rows, 7 a group; then the 40 subject rows, 7 a group
    assert pq.read_metadata(path).num_row_groups == 12
    loaded = RecordSet.load(path)
    assert loaded == rs and loaded.table.equals(rs.table)
    assert _files(tmp_path) == [path.name]


def test_load_refuses_an_edited_subject_column(tmp_path: Path) -> None:
    rng = random.Random(11)
    ds = [rng.randbytes(32) for _ in range(10)]
    people = [rng.randbytes(32) for _ in range(3)]
    rs = RecordSet.build(ds, subjects=[people[i % 3] if i < 6 else None for i in range(10)])
    path = rs.save(tmp_path)
    assert RecordSet.load(path) == rs
    saved = read_rows(path)[0]  # the set's rows, without the subject rows after them
    meta = pq.read_table(path).schema.metadata
    column = saved.column("subject").to_pylist()
    edits = {
        "a subject erased": [None if h == people[0] else h for h in column],
        "a subject added": [*column[:-1], rng.randbytes(32)],
        "a subject replaced": [rng.randbytes(32) if h == people[1] else h for h in column],
    }
    for subjects in edits.values():
        edited = saved.set_column(2, "subject", pa.array(subjects, pa.binary(32)))
        pq.write_table(edited.replace_schema_metadata(meta), path)
        with pytest.raises(IntegrityError, match="not the root in its name"):
            RecordSet.load(path)
    # Keys are not committed: editing one is not detected (they are an index).
    keys = saved.set_column(1, "key", pa.array(["k"] * 10, pa.string()))
    pq.write_table(keys.replace_schema_metadata(meta), path)
    assert RecordSet.load(path).root == rs.root
    # Moving a subject to another row of the set keeps the root: the pairing is not committed.
    moved = [column[-1], *column[:-1]]
    pq.write_table(
        saved.set_column(2, "subject", pa.array(moved, pa.binary(32))).replace_schema_metadata(
            meta
        ),
        path,
    )
    assert RecordSet.load(path).root == rs.root


def test_load_refuses_tampered_and_malformed_files(tmp_path: Path) -> None:
    rng = random.Random(6)
    rs = RecordSet.build([rng.randbytes(32) for _ in range(10)])
    path = rs.save(tmp_path)
    table = pq.read_table(path)
    other = RecordSet.build([rng.randbytes(32) for _ in range(10)])
    pq.write_table(other.table.replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(IntegrityError, match="not the root in its name"):
        RecordSet.load(path)
    path.write_bytes(b"PAR1 but not really")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        RecordSet.load(path)
    pq.write_table(rs.table, path)  # no mlprov metadata
    with pytest.raises(InputError, match=r"is not an mlprov\.record-set/v4 file"):
        RecordSet.load(path)
    retired = {b"mlprov.format": b"mlprov.record-set/v1", b"mlprov.root": b"0" * 64}
    pq.write_table(rs.table.replace_schema_metadata(retired), path)
    with pytest.raises(InputError, match="did not commit to subject hashes"):
        RecordSet.load(path)
    with pytest.raises(InputError, match="not the name of a record-set file"):
        RecordSet.load(tmp_path / "sets.parquet")
    with pytest.raises(NotFoundError):
        RecordSet.load(tmp_path / ("0" * 64 + ".parquet"))


def test_saving_a_set_with_the_same_root_merges_its_rows(tmp_path: Path) -> None:
    rng = random.Random(12)
    ds = [rng.randbytes(32) for _ in range(6)]
    person = rng.randbytes(32)
    first = RecordSet.build(ds, keys=[f"a{i}" for i in range(6)], subjects=[person] + [None] * 5)
    # The same members and subjects (so the same root), with other keys and pairing.
    second = RecordSet.build(
        [ds[0], *ds], keys=["b0", "b0", *(None for _ in ds[1:])], subjects=[None] * 6 + [person]
    )
    assert first.root == second.root
    path = first.save(tmp_path)
    before = path.read_bytes()
    assert first.save(tmp_path) == path and path.read_bytes() == before  # nothing new: kept
    assert second.save(tmp_path) == path
    merged = RecordSet.load(path)
    assert merged.root == first.root
    assert merged.keys_of(ds[0]) == ["a0", "b0"]  # no key lost, from either save
    assert all(merged.keys_of(d) == [f"a{i}"] for i, d in enumerate(ds) if i)

    # Every row of the first file is kept as it was; the second adds the rows it lacked.
    def triples(rs: RecordSet) -> set[tuple[Any, ...]]:
        columns = (rs.table.column(c).to_pylist() for c in ("digest", "key", "subject"))
        return set(zip(*columns, strict=True))

    rows = triples(merged)
    assert triples(first) <= rows and triples(second) <= rows
    # All six rows of the first and all seven of the second (none was in the file), the
    # second's repeated row (ds[0], "b0") twice as it had it.
    assert (merged.rows, len(rows)) == (6 + 7, 12)
    again = path.read_bytes()
    second.save(tmp_path)
    assert path.read_bytes() == again  # saving either set again adds nothing


def test_saves_of_one_root_at_once_keep_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two saves that would both read the file before either replaced it: they take turns,
    and the file ends with the rows of both."""
    rng = random.Random(13)
    ds = [rng.randbytes(32) for _ in range(4)]
    RecordSet.build(ds, keys=[f"a{i}" for i in range(4)]).save(tmp_path)
    sets = [RecordSet.build(ds, keys=[f"{who}{i}" for i in range(4)]) for who in "bc"]
    for rs in sets:
        rs.root  # noqa: B018 - known before the threads start, as after a fingerprint
    both_read = threading.Barrier(2)
    merged_with = RecordSet._merged_with

    def read_then_wait(self: RecordSet, path: Path) -> Any:
        table = merged_with(self, path)
        # The other save gets here too, unless it must wait for this one to finish.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=1)
        return table

    monkeypatch.setattr(RecordSet, "_merged_with", read_then_wait)
    with ThreadPoolExecutor(2) as pool:
        paths = set(pool.map(lambda rs: rs.save(tmp_path), sets))
    (path,) = paths
    kept = RecordSet.load(path)
    assert [kept.keys_of(d) for d in ds] == [[f"a{i}", f"b{i}", f"c{i}"] for i in range(4)]
    assert both_read.broken  # the second save waited: the first never met it
    assert _files(tmp_path) == [path.name]


def test_saving_over_an_altered_file_refuses_and_keeps_it(tmp_path: Path) -> None:
    rng = random.Random(13)
    rs = RecordSet.build([rng.randbytes(32) for _ in range(4)])
    path = rs.save(tmp_path)
    other = RecordSet.build([rng.randbytes(32) for _ in range(4)])
    pq.write_table(other.table.replace_schema_metadata(pq.read_table(path).schema.metadata), path)
    altered = path.read_bytes()
    with pytest.raises(IntegrityError, match="move it aside"):
        rs.save(tmp_path)
    assert path.read_bytes() == altered
    path.write_bytes(b"not parquet")
    with pytest.raises(IntegrityError, match="not a valid record set"):
        rs.save(tmp_path)
