"""Pairs roots (ADR 0020, docs/spec/record-pairs.md): the test vectors, recomputed by a
reference written from the spec with hashlib alone; pair proofs from memory and from set
files; files of the earlier format; saves of one root merged."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mlprov.errors import ProofError
from mlprov.records.pairs import PairProof, Pairs, load_pair_proof
from mlprov.records.setreader import SetFile, open_set
from mlprov.records.sets import RecordSet

VECTORS = Path(__file__).parent / "vectors" / "records" / "record-pairs-v1.json"


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc9162_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1 over leaf hashes, by its recursive definition."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01" + rfc9162_root(leaves[:k]) + rfc9162_root(leaves[k:]))


def reference(rows: list[tuple[bytes, str | None, bytes | None]]) -> dict[str, Any]:
    """The pairs of the spec: key pairs `d || SHA-256(key)`, subject pairs `d || s`, each
    kind sorted, unique, sharded by leading byte under a 512-leaf top tree."""
    halves = {
        "key": sorted({d + sha(k.encode()) for d, k, _ in rows if k is not None}),
        "subject": sorted({d + s for d, _, s in rows if s is not None}),
    }
    top = []
    shards = {}
    for kind, values in halves.items():
        for shard in range(256):
            mine = [v for v in values if v[0] == shard]
            root = rfc9162_root([sha(b"\x00" + v) for v in mine])
            top.append(sha(b"\x00" + root + len(mine).to_bytes(8, "big")))
            if mine:
                shards[f"{kind}/{shard}"] = [root.hex(), len(mine)]
    return {
        "pairs": {kind: [v.hex() for v in values] for kind, values in halves.items()},
        "leaf_hashes": {k: [sha(b"\x00" + v).hex() for v in vs] for k, vs in halves.items()},
        "shards": shards,
        "pairs_root": rfc9162_root(top).hex(),
    }


def vector_rows(vector: dict[str, Any]) -> list[tuple[bytes, str | None, bytes | None]]:
    return [
        (
            bytes.fromhex(r["digest"]),
            r["key"],
            bytes.fromhex(r["subject"]) if r["subject"] is not None else None,
        )
        for r in vector["rows"]
    ]


def as_set(rows: list[tuple[bytes, str | None, bytes | None]]) -> RecordSet:
    return RecordSet.build([d for d, _, _ in rows], [k for _, k, _ in rows], [s for *_, s in rows])


def test_the_vectors_hold_for_the_reference_and_for_mlprov() -> None:
    vectors = json.loads(VECTORS.read_text())
    assert vectors
    for vector in vectors:
        rows = vector_rows(vector)
        expected = {k: vector[k] for k in ("pairs", "leaf_hashes", "shards", "pairs_root")}
        assert reference(rows) == expected, vector["name"]
        records = as_set(rows)
        assert records.pairs.root.hex() == vector["pairs_root"], vector["name"]
        assert records.root.hex() == vector["record_root"], vector["name"]  # unchanged
        for given in vector["proofs"]:
            proof = load_pair_proof(json.dumps(given).encode())
            proof.verify(bytes.fromhex(vector["pairs_root"]))
            other = proof.key if proof.key is not None else bytes.fromhex(proof.subject or "")
            made = records.prove_pair(
                proof.kind, bytes.fromhex(proof.digest), other, records.pairs.root
            )
            assert made == proof, vector["name"]


def random_rows(rng: random.Random, n: int) -> list[tuple[bytes, str | None, bytes | None]]:
    subjects = [rng.randbytes(32) for _ in range(max(1, n // 5))]
    rows: list[tuple[bytes, str | None, bytes | None]] = []
    for i in range(n):
        # repeats of a digest, with another key or subject, and rows without either
        d = rows[rng.randrange(len(rows))][0] if rows and rng.random() < 0.2 else rng.randbytes(32)
        key = None if rng.random() < 0.1 else f"k-{i}"
        subject = None if rng.random() < 0.3 else rng.choice(subjects)
        rows.append((d, key, subject))
    return rows


@pytest.mark.parametrize("n", [0, 1, 2, 300, 2000])
def test_the_pairs_root_is_the_reference_one(n: int) -> None:
    rows = random_rows(random.Random(n), n)
    assert as_set(rows).pairs.root.hex() == reference(rows)["pairs_root"]


def test_every_pair_is_proven_from_memory_and_from_its_file_alike(tmp_path: Path) -> None:
    rows = random_rows(random.Random(7), 600)
    records = as_set(rows)
    root = records.pairs.root
    view = open_set(records.save(tmp_path))
    assert isinstance(view, SetFile)
    for d, key, subject in rows:
        for kind, other in (("key", key), ("subject", subject)):
            if other is None:
                continue
            proof = records.prove_pair(kind, d, other, root)  # type: ignore[arg-type]
            assert proof is not None and proof == view.prove_pair(kind, d, other, root)  # type: ignore[arg-type]
            proof.verify(root)
    d, key, _ = next(r for r in rows if r[1] is not None)
    assert records.prove_pair("key", d, key + "x", root) is None  # type: ignore[operator]
    assert records.prove_pair("key", d, key, bytes(32)) is None  # type: ignore[arg-type]


def test_a_pair_proof_of_another_key_subject_or_record_is_refused() -> None:
    rows = random_rows(random.Random(3), 200)
    records = as_set(rows)
    root = records.pairs.root
    d, key, subject = next(r for r in rows if r[1] is not None and r[2] is not None)
    assert key is not None and subject is not None
    good = records.prove_pair("key", d, key, root)
    assert good is not None
    swapped = next(r[2] for r in rows if r[2] is not None and r[2] != subject)
    named = records.prove_pair("subject", d, subject, root)
    assert named is not None
    for bad, said in [
        (good.model_copy(update={"key": key + "0"}), "is not the pair"),
        (named.model_copy(update={"subject": swapped.hex()}), "is not the pair"),
        (good.model_copy(update={"digest": d[:31].hex() + f"{d[31] ^ 1:02x}"}), "is not the pair"),
        (
            good.model_copy(update={"kind": "subject", "key": None, "subject": subject.hex()}),
            "pair|inclusion proof",
        ),
        (good.model_copy(update={"shard_size": good.shard_size + 1}), "pair|inclusion proof"),
    ]:
        with pytest.raises(ProofError, match=said):
            PairProof.model_validate_json(bad.model_dump_json()).verify(root)
    with pytest.raises(ProofError, match="not " + "00" * 32):
        good.verify(bytes(32))


def as_v3(path: Path) -> None:
    """Write the set file at `path` again as mlprov.record-set/v3 wrote it: no pairs."""
    file = pq.ParquetFile(path)
    meta = dict(file.metadata.metadata)
    index = json.loads(meta[b"mlprov.index"])
    del index["pairs"]
    table = file.read()
    wanted = {
        b"mlprov.format": b"mlprov.record-set/v3",
        b"mlprov.root": meta[b"mlprov.root"],
        b"mlprov.index": json.dumps(index).encode(),
    }
    pq.write_table(table.replace_schema_metadata(wanted), path, row_group_size=1 << 16)


def test_a_set_file_of_the_earlier_format_is_still_read(tmp_path: Path) -> None:
    rows = random_rows(random.Random(11), 500)
    records = as_set(rows)
    path = records.save(tmp_path)
    as_v3(path)
    assert pq.ParquetFile(path).metadata.metadata[b"mlprov.format"] == b"mlprov.record-set/v3"
    view = open_set(path)
    assert isinstance(view, SetFile) and view.root == records.root
    assert RecordSet.load(path) == records
    d, key, _ = next(r for r in rows if r[1] is not None)
    assert view.prove(d) == records.prove(d)
    # it lists no pairs: the link cannot be proven from it...
    assert view.prove_pair("key", d, key, records.pairs.root) is None  # type: ignore[arg-type]
    # ...until the set is saved again over it, which writes today's format
    records.save(tmp_path)
    again = open_set(path)
    assert pq.ParquetFile(path).metadata.metadata[b"mlprov.format"] == b"mlprov.record-set/v4"
    assert again.prove_pair("key", d, key, records.pairs.root) is not None  # type: ignore[arg-type]


def test_each_save_of_one_root_keeps_its_pairs_provable(tmp_path: Path) -> None:
    """The same records saved with keys and without: one file, both pairs roots listed;
    the keyed save's key pairs and both saves' subject pairs stay provable."""
    rows = random_rows(random.Random(5), 400)
    keyed = as_set(rows)
    bare = as_set([(d, None, s) for d, _, s in rows])
    assert keyed.root == bare.root and keyed.pairs.root != bare.pairs.root
    path = keyed.save(tmp_path)
    assert bare.save(tmp_path) == path
    view = open_set(path)
    d, key, subject = next(r for r in rows if r[1] is not None and r[2] is not None)
    assert view.prove_pair("key", d, key, keyed.pairs.root) == keyed.prove_pair(  # type: ignore[arg-type]
        "key",
        d,
        key,
        keyed.pairs.root,  # type: ignore[arg-type]
    )
    for records in (keyed, bare):
        proof = view.prove_pair("subject", d, subject, records.pairs.root)  # type: ignore[arg-type]
        assert proof is not None
        proof.verify(records.pairs.root)
    listed = json.loads(pq.ParquetFile(path).metadata.metadata[b"mlprov.index"])["pairs"]
    assert [Pairs.from_index(p).root for p in listed] == [keyed.pairs.root, bare.pairs.root]
