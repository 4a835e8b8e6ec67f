"""The store suite: the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from mlprov import merkle
from mlprov.digest import Digest
from mlprov.errors import ConflictError, InputError, NotFoundError
from mlprov.facade import Ledger
from mlprov.ledger import Event
from mlprov.store import SqlStore


def source(name: str, version: str = "1", **extra: object) -> Event:
    payload = {"name": name, "version": version, **extra}
    return Event.create("source", payload, actor="alice@example.com")


def step(name: str, *parents: Digest, actor: str = "bob@example.com") -> Event:
    return Event.create("transform", {"name": name}, actor=actor, parents=parents)


def reference_root(ledger: Ledger, size: int | None = None) -> bytes:
    """The RFC 9162 root recomputed from the event digests alone."""
    digests = [e.digest.raw for e in ledger.entries(newest_first=False)]
    return merkle.root_of([merkle.leaf_hash(d) for d in digests[:size]])


def test_append_get_roundtrip(ledger: Ledger) -> None:
    entry = ledger.append(source("chats", "2026-05-22", rights_basis="contract-17"))
    assert entry.seq == 0 and ledger.size == 1
    got = ledger.get(entry.digest)
    assert got == entry
    assert got.body == entry.event.encode()
    assert Digest.of_bytes(got.body) == entry.digest
    assert got.event.name == "chats@2026-05-22"


def test_reopen_sees_the_same_ledger(ledger: Ledger, store_url: str) -> None:
    entry = ledger.append(source("chats"))
    with Ledger(SqlStore.open(store_url)) as again:
        assert again.origin == ledger.origin
        assert again.get(entry.digest) == entry


def test_duplicate_is_refused_and_nothing_written(ledger: Ledger) -> None:
    ev = source("chats")
    ledger.append(ev)
    with pytest.raises(ConflictError, match="already recorded"):
        ledger.append(ev)
    with pytest.raises(ConflictError, match="twice in the batch"):
        twin = source("x")
        ledger.append_many([twin, twin])
    assert ledger.size == 1


def test_unknown_parent_is_refused_and_batch_is_atomic(ledger: Ledger) -> None:
    stranger = Digest.of_bytes(b"not recorded")
    good = source("a")
    with pytest.raises(ConflictError, match="not in the ledger"):
        ledger.append_many([good, step("normalize-v1", stranger)])
    assert ledger.size == 0
    assert ledger.verify().ok


def test_parent_within_batch_must_come_first(ledger: Ledger) -> None:
    a = source("a")
    child = step("normalize-v1", Digest.of_bytes(a.encode()))
    with pytest.raises(ConflictError):
        ledger.append_many([child, a])
    entries = ledger.append_many([a, child])
    assert [p.digest for p in ledger.parents(entries[1].digest)] == [entries[0].digest]


def test_dag_parents_children_trace(ledger: Ledger) -> None:
    chats = ledger.append(source("chats"))
    optout = ledger.append(source("opt-out-list"))
    norm = ledger.append(step("normalize-v1", chats.digest))
    excl = ledger.append(step("opt-out-removal-v2", norm.digest, optout.digest))
    ledger.append(source("unrelated"))
    ds = ledger.append(Event.create("dataset", {"name": "train"}, actor="c", parents=[excl.digest]))
    assert {e.digest for e in ledger.parents(excl.digest)} == {norm.digest, optout.digest}
    assert [e.digest for e in ledger.children(chats.digest)] == [norm.digest]
    traced = ledger.trace(ds.digest)
    assert [e.digest for e in traced] == [
        chats.digest,
        optout.digest,
        norm.digest,
        excl.digest,
        ds.digest,
    ]
    assert ledger.trace(chats.digest) == [chats]


def test_trace_of_deep_chain(ledger: Ledger) -> None:
    prev = ledger.append(source("root")).digest
    for i in range(30):
        prev = ledger.append(step(f"step-v{i}", prev)).digest
    assert len(ledger.trace(prev)) == 31


def test_listing_filters(ledger: Ledger) -> None:
    a = ledger.append(
        Event.create(
            "source",
            {"name": "a", "version": "1"},
            actor="x",
            recorded_at="2026-01-01T00:00:00.000000Z",
        )
    )
    b = ledger.append(
        Event.create(
            "transform",
            {"name": "dedupe-v2"},
            actor="x",
            parents=[a.digest],
            recorded_at="2026-02-01T00:00:00.000000Z",
        )
    )
    c = ledger.append(
        Event.create(
            "source",
            {"name": "a", "version": "2"},
            actor="x",
            recorded_at="2026-03-01T00:00:00.000000Z",
        )
    )
    assert [e.seq for e in ledger.entries()] == [0, 1, 2]
    assert [e.seq for e in ledger.entries(newest_first=True, limit=2)] == [2, 1]
    assert [e.digest for e in ledger.entries(type="source")] == [a.digest, c.digest]
    assert [e.digest for e in ledger.entries(name="a@2")] == [c.digest]
    assert [e.digest for e in ledger.entries(name="dedupe-v2")] == [b.digest]
    got = ledger.entries(since="2026-01-15T00:00:00Z", until="2026-03-01T00:00:00.000000Z")
    assert [e.digest for e in got] == [b.digest]


def test_resolve_prefixes(ledger: Ledger) -> None:
    entry = ledger.append(source("a"))
    hex_ = entry.digest.hex
    assert ledger.resolve(hex_[:8]) == entry.digest
    assert ledger.resolve("sha256:" + hex_[:10]) == entry.digest
    assert ledger.resolve(hex_.upper()) == entry.digest
    with pytest.raises(InputError, match="not a digest"):
        ledger.resolve("abc")
    missing = "0" * 6 if not hex_.startswith("000000") else "f" * 6
    with pytest.raises(NotFoundError):
        ledger.resolve(missing)
    with pytest.raises(NotFoundError):
        ledger.get(Digest.of_bytes(b"nothing"))


def test_roots_match_reference_at_every_size(ledger: Ledger) -> None:
    prev = ledger.append(source("root")).digest
    batch = []
    for i in range(600):
        ev = step(f"s-v{i}", prev)
        batch.append(ev)
        prev = Digest.of_bytes(ev.encode())
        if len(batch) == 97:  # odd batch sizes cross tile edges mid-batch
            ledger.append_many(batch)
            batch = []
    ledger.append_many(batch)
    digests = [merkle.leaf_hash(e.digest.raw) for e in ledger.entries()]
    tree = merkle.MemoryTree(digests)
    for size in (1, 2, 3, 255, 256, 257, 511, 512, 513, 601):
        assert ledger.root(size) == tree.root(size)
    entries = list(ledger.entries())
    for index in (0, 255, 256, 600):
        proof = ledger.inclusion_proof(entries[index].digest)
        proof.verify()
        assert (proof.index, proof.tree_size) == (index, 601)
        assert proof.hashes == [h.hex() for h in tree.inclusion_proof(index, proof.tree_size)]
    cons = ledger.consistency_proof(257, 601)
    cons.verify()
    assert cons.hashes == [h.hex() for h in tree.consistency_proof(257, 601)]


def test_checkpoints_and_verify(ledger: Ledger) -> None:
    ledger.append(source("a"))
    first = ledger.checkpoint()
    ledger.append(source("b"))
    second = ledger.checkpoint()
    assert [c.checkpoint.size for c in ledger.checkpoints()] == [1, 2]
    assert ledger.checkpoints()[0].serialize() == first.serialize()
    assert second.checkpoint.root == ledger.root()
    report = ledger.verify()
    assert report.ok, report.problems
    assert (report.events, report.checkpoints, report.signatures, report.covered) == (2, 2, 2, 2)
    assert report.warnings == []


def _append_worker(url: str, worker: int, count: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    with Ledger(SqlStore.open(url)) as led:
        acked = []
        i = 0
        while i < count:
            if i % 3 == 0:  # a mix of single events and small batches
                entries = led.append_many([source(f"w{worker}-{i + k}") for k in range(3)])
                i += 3
            else:
                entries = [led.append(source(f"w{worker}-{i}"))]
                i += 1
            acked.extend(str(e.digest) for e in entries)
        queue.put(acked)


def test_concurrent_appenders_neither_fork_nor_lose(ledger: Ledger, store_url: str) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_append_worker, args=(store_url, w, 60, queue)) for w in range(4)]
    for p in workers:
        p.start()
    acked = [d for _ in workers for d in queue.get(timeout=120)]
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert len(acked) == len(set(acked)) == 4 * 60
    assert ledger.size == len(acked)
    recorded = {str(e.digest) for e in ledger.entries()}
    assert recorded == set(acked)
    assert [e.seq for e in ledger.entries()] == list(range(len(acked)))
    ledger.checkpoint()
    report = ledger.verify()
    assert report.ok, report.problems
    assert ledger.root() == reference_root(ledger)


def test_init_refuses_existing_store(ledger: Ledger, store_url: str, tmp_path: Path) -> None:
    ledger.append(source("a"))
    with pytest.raises(ConflictError):
        Ledger.init(tmp_path / "other", store=store_url)
    assert ledger.size == 1


def _size_in_another_process(url: str) -> int:
    with Ledger(SqlStore.open(url)) as other:
        return other.size


def test_a_second_open_in_one_process_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    """Opening a ledger again in a process that holds it open must not drop the POSIX
    locks of the open connections (closing any descriptor of the file would): another
    process closing its last connection would then take the WAL away under them, and what
    they record next would be seen by nobody else (sqlite.org/howtocorrupt.html, 2.2)."""
    held = Ledger.init(tmp_path / "home")
    url = held.store.url
    try:
        held.append(source("first"))
        with Ledger(SqlStore.open(url)) as again:  # a second open, closed at once
            assert again.size == 1
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            assert pool.apply(_size_in_another_process, (url,)) == 1  # opens and closes
            held.append(source("second"))
            assert pool.apply(_size_in_another_process, (url,)) == 2
        report = held.verify()
        assert report.ok, report.problems
    finally:
        held.close()
