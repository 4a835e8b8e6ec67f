"""Every attack on recorded history must be caught by `verify`, on both backends.

The strongest attacker here has write access to the store and mlprov's own code: they
rebuild the whole log (digests, parent links, tiles, head) around their change. Only the
signed checkpoints, whose private key they do not hold, stand in their way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import sql_engine

from mlprov.digest import Digest
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Event
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.events import utc_now
from mlprov.ledger.keys import SignerKey, write_keypair

Rewrite = Callable[[list[Event]], list[Event]]


def _engine(ledger: Ledger) -> sa.Engine:
    return sql_engine(ledger)


def _sql(ledger: Ledger, statement: str, **params: object) -> None:
    with _engine(ledger).begin() as conn:
        conn.execute(sa.text(statement), params)


def build(ledger: Ledger) -> list[Digest]:
    """A small story: two sources, a chain of steps, a dataset, a review."""
    chats = ledger.append(
        Event.create(
            "source",
            {"name": "chats", "version": "1", "rights_basis": "contract-17"},
            actor="alice",
        )
    )
    optout = ledger.append(
        Event.create("source", {"name": "opt-out-list", "version": "1"}, actor="alice")
    )
    norm = ledger.append(
        Event.create("transform", {"name": "normalize-v1"}, actor="bob", parents=[chats.digest])
    )
    excl = ledger.append(
        Event.create(
            "transform",
            {"name": "opt-out-removal-v2"},
            actor="bob",
            parents=[norm.digest, optout.digest],
        )
    )
    dedupe = ledger.append(
        Event.create(
            "transform",
            {"name": "dedupe-v2", "params": {"threshold": 0.84}},
            actor="bob",
            parents=[excl.digest],
        )
    )
    ds = ledger.append(
        Event.create("dataset", {"name": "train"}, actor="bob", parents=[dedupe.digest])
    )
    review = ledger.append(
        Event.create(
            "review",
            {"target": str(ds.digest), "status": "accepted", "reviewer": "carol"},
            actor="carol",
            parents=[ds.digest],
        )
    )
    return [e.digest for e in (chats, optout, norm, excl, dedupe, ds, review)]


def rebuild(ledger: Ledger, change: Rewrite) -> None:
    """Rewrite history the way a capable attacker would: change events, then recompute
    every digest, every descendant's parent links, the tiles and the head; keep the
    signed checkpoints, which cannot be re-signed without the private key."""
    entries = list(ledger.entries())
    original = {id(e.event): e.digest for e in entries}
    changed = change([e.event for e in entries])
    renamed: dict[Digest, Digest] = {}
    fixed: list[Event] = []
    for position, ev in enumerate(changed):
        # An event the attacker replaced stands where the original stood.
        old_digest = original.get(id(ev), entries[position].digest)
        parents = tuple(sorted(renamed.get(p, p) for p in ev.parents))
        new = dataclasses.replace(ev, parents=parents)
        renamed[old_digest] = Digest.of_bytes(new.encode())
        fixed.append(new)
    for table in ("mlprov_events", "mlprov_edges", "mlprov_tiles"):
        _sql(ledger, f"DELETE FROM {table}")
    _sql(ledger, "UPDATE mlprov_head SET size = 0")
    with Ledger(ledger.store, ledger.location) as again:
        again.append_many(fixed)


def codes(ledger: Ledger, **kw: object) -> set[str]:
    report = ledger.verify(**kw)  # type: ignore[arg-type]
    assert not report.ok, "the attack went unnoticed"
    return {p.code for p in report.problems}


def test_clean_ledger_verifies(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    report = ledger.verify()
    assert report.ok and report.covered == 7 and not report.warnings


def test_edited_payload_with_all_descendants_recomputed(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()

    def weaken_rights(events: list[Event]) -> list[Event]:
        first = events[0]
        payload = {**first.payload, "rights_basis": "internal"}
        return [dataclasses.replace(first, payload=payload), *events[1:]]

    rebuild(ledger, weaken_rights)
    # The rebuilt log is internally consistent: only the signed checkpoint betrays it.
    assert {"checkpoint"} == codes(ledger)
    assert ledger.get(ledger.entries().__next__().digest).event.payload["rights_basis"] == (
        "internal"
    )


def test_deleted_event_leaving_a_gap(ledger: Ledger) -> None:
    build(ledger)
    _sql(ledger, "DELETE FROM mlprov_events WHERE seq = 4")
    found = codes(ledger)
    assert {"log-gap", "parent", "size"} <= found


def test_deleted_event_with_log_rebuilt(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    rebuild(
        ledger,
        lambda events: [
            e
            for e in events
            if e.payload.get("name") != "dedupe-v2"
            and e.type.value != "dataset"
            and e.type.value != "review"
        ],
    )
    assert "checkpoint" in codes(ledger)


def test_two_events_swapped(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    rebuild(ledger, lambda events: [events[1], events[0], *events[2:]])
    assert "checkpoint" in codes(ledger)


def test_two_rows_swapped_in_place(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    _sql(ledger, "UPDATE mlprov_events SET seq = -1 WHERE seq = 0")
    _sql(ledger, "UPDATE mlprov_events SET seq = 0 WHERE seq = 1")
    _sql(ledger, "UPDATE mlprov_events SET seq = 1 WHERE seq = -1")
    assert {"checkpoint", "edge"} <= codes(ledger)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE mlprov_events SET type = 'build' WHERE seq = 2", "index"),
        ("UPDATE mlprov_events SET name = 'normalize-v2' WHERE seq = 2", "index"),
        (
            "UPDATE mlprov_events SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 2",
            "index",
        ),
        ("UPDATE mlprov_edges SET parent = 1 WHERE child = 2", "edge"),
        ("DELETE FROM mlprov_edges WHERE child = 3", "edge"),
        ("UPDATE mlprov_head SET size = 6", "size"),
    ],
)
def test_one_indexed_field_changed(ledger: Ledger, statement: str, expected: str) -> None:
    build(ledger)
    _sql(ledger, statement)
    assert expected in codes(ledger)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM mlprov_tiles",
        "UPDATE mlprov_tiles SET hashes = :forged WHERE level = 0 AND idx = 0",
    ],
)
def test_merkle_tile_changed(ledger: Ledger, statement: str) -> None:
    ledger.append_many(
        [Event.create("source", {"name": f"s{i}", "version": "1"}, actor="a") for i in range(300)]
    )
    _sql(ledger, statement, forged=bytes(8192))
    assert "tile" in codes(ledger)


def test_one_byte_of_a_body_changed(ledger: Ledger) -> None:
    build(ledger)
    body = ledger.get(build_digest := next(ledger.entries()).digest).body
    forged = body.replace(b"contract-17", b"contract-18")
    assert forged != body
    with _engine(ledger).begin() as conn:
        conn.execute(sa.text("UPDATE mlprov_events SET body = :b WHERE seq = 0"), {"b": forged})
    assert "digest" in codes(ledger)
    del build_digest


def test_digest_column_recomputed_for_a_changed_body(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    body = next(ledger.entries()).body.replace(b"contract-17", b"contract-18")
    with _engine(ledger).begin() as conn:
        conn.execute(
            sa.text("UPDATE mlprov_events SET body = :b, digest = :d WHERE seq = 0"),
            {"b": body, "d": Digest.of_bytes(body).raw},
        )
    # The child's parent link no longer names this event, and the signed root moved.
    assert {"parent", "tile", "checkpoint"} & codes(ledger)


def test_checkpoint_with_bad_signature(ledger: Ledger) -> None:
    build(ledger)
    note = ledger.checkpoint().serialize()
    head, sig = note.rsplit(b" ", 1)
    flipped = bytearray(sig)
    flipped[10] = ord("A") if flipped[10] != ord("A") else ord("B")
    with _engine(ledger).begin() as conn:
        conn.execute(
            sa.text("UPDATE mlprov_checkpoints SET note = :n"), {"n": head + b" " + bytes(flipped)}
        )
    assert "signature" in codes(ledger)


def test_checkpoint_signed_by_an_untrusted_key(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint(SignerKey.generate(ledger.origin))  # same name, another key
    assert "signature" in codes(ledger)


def test_log_rewritten_after_a_checkpoint(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()

    def drop_optout_link(events: list[Event]) -> list[Event]:
        out = list(events)
        out[3] = dataclasses.replace(out[3], payload={"name": "opt-out-removal-v3"})
        return out

    rebuild(ledger, drop_optout_link)
    # Even with the real signing key, a fresh checkpoint cannot hide the rewrite.
    ledger.checkpoint()
    assert {"checkpoint", "consistency"} <= codes(ledger)


def test_rewrite_caught_by_a_published_checkpoint(ledger: Ledger, tmp_path: Path) -> None:
    build(ledger)
    published = SignedCheckpoint.parse(ledger.checkpoint().serialize())
    _sql(ledger, "DELETE FROM mlprov_checkpoints")
    rebuild(ledger, lambda events: [events[1], events[0], *events[2:]])
    assert ledger.verify().ok  # nothing stored is left to betray it...
    assert "checkpoint" in codes(ledger, external=[published])  # ...but the outside copy does


def test_truncated_log_caught_by_checkpoint(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    rebuild(ledger, lambda events: events[:-1])
    assert "checkpoint" in codes(ledger)


def _store_checkpoints(ledger: Ledger, notes: list[bytes]) -> None:
    """Replace the stored checkpoints with `notes`, in this order, as rows the ledger
    itself would write (numbered from 1, their size, one time)."""
    when = utc_now()
    with _engine(ledger).begin() as conn:
        conn.execute(sa.text("DELETE FROM mlprov_checkpoints"))
        for i, note in enumerate(notes, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO mlprov_checkpoints (id, size, note, created_at) "
                    "VALUES (:i, :s, :n, :t)"
                ),
                {"i": i, "s": SignedCheckpoint.parse(note).checkpoint.size, "n": note, "t": when},
            )


def test_rolled_back_checkpoint_order(ledger: Ledger) -> None:
    build(ledger)
    first = ledger.checkpoint().serialize()
    second = ledger.checkpoint().serialize()
    _store_checkpoints(ledger, [second, first])  # reorder: newer first, older second
    assert ledger.verify().ok  # same size, same root: reordering equal heads is harmless
    ledger.append(Event.create("source", {"name": "late", "version": "1"}, actor="a"))
    third = ledger.checkpoint().serialize()
    _store_checkpoints(ledger, [third, first])
    assert "consistency" in codes(ledger)


def test_uncovered_events_are_warned(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    ledger.append(Event.create("source", {"name": "late", "version": "1"}, actor="a"))
    report = ledger.verify()
    assert report.ok and report.covered == 7
    assert any("1 of 8 events are not yet covered" in w for w in report.warnings)


def test_no_trusted_key_is_a_warning_not_silence(ledger: Ledger) -> None:
    build(ledger)
    ledger.checkpoint()
    assert ledger.location and ledger.location.keys_dir
    for pub in ledger.location.keys_dir.glob("*.pub"):
        pub.unlink()
    report = ledger.verify()
    assert report.ok and report.signatures == 0
    assert any("signatures were not checked" in w for w in report.warnings)


def test_review_signatures_are_checked(ledger: Ledger) -> None:
    """A review signed by a trusted key verifies; one signed by a key not trusted here is a
    warning; a signature carried over to another judgement, by someone who can write the
    store but holds no reviewer's key, is a problem."""
    build(ledger)
    carol, dave = SignerKey.generate("carol"), SignerKey.generate("dave")
    assert ledger.location and ledger.location.keys_dir
    write_keypair(carol, ledger.location.keys_dir)
    signed = record_review(ledger, "train", "accepted", "carol", signer=carol)
    report = ledger.verify()
    assert report.ok and report.reviews == 1 and report.to_json()["review_signatures"] == 1
    assert not any("review" in w for w in report.warnings)

    record_review(ledger, "chats@1", "accepted", "dave", signer=dave)
    report = ledger.verify()
    assert report.ok and report.reviews == 1
    assert any(dave.key_id in w and "not trusted" in w for w in report.warnings)

    forged = dict(signed.event.payload, status="rejected")
    wrong = ledger.append(Event.create("review", forged, actor="mallory"))
    report = ledger.verify()
    assert [(p.code, p.seq) for p in report.problems] == [("review-signature", wrong.seq)]
    assert f"signature by {carol.key_id} that does not verify" in report.problems[0].message


@pytest.mark.parametrize("chunk", [70, 256])
@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_scan_catches_what_a_single_pass_does(
    ledger: Ledger, workers: int, chunk: int
) -> None:
    ledger.append_many(
        [Event.create("source", {"name": f"s{i}", "version": "1"}, actor="a") for i in range(600)]
    )
    ledger.checkpoint()
    clean = ledger.verify(workers=workers, chunk=chunk)
    assert clean.ok and clean.events == 600 and clean.root == ledger.root()
    body = list(ledger.entries(limit=201))[200].body.replace(b'"s200"', b'"s999"')
    with _engine(ledger).begin() as conn:
        conn.execute(sa.text("UPDATE mlprov_events SET body = :b WHERE seq = 200"), {"b": body})
    _sql(ledger, "DELETE FROM mlprov_events WHERE seq = 150")
    report = ledger.verify(workers=workers, chunk=chunk)
    found = {(p.code, p.seq) for p in report.problems}
    assert {("digest", 200), ("log-gap", 151), ("size", None)} <= found


def test_distinct_events_never_share_bytes() -> None:
    base = Event.create(
        "source",
        {"name": "a", "version": "1"},
        actor="x",
        recorded_at="2026-01-01T00:00:00.000000Z",
    )
    variants = [
        base,
        dataclasses.replace(base, actor="y"),
        dataclasses.replace(base, recorded_at="2026-01-01T00:00:00.000001Z"),
        dataclasses.replace(base, payload={"name": "a", "version": "1 "}),
        dataclasses.replace(base, payload={"name": "a", "version": "1", "owner": ""}),
        dataclasses.replace(base, parents=(Digest.of_bytes(b"p"),)),
        Event.create(
            "dataset", {"name": "a"}, actor="x", recorded_at="2026-01-01T00:00:00.000000Z"
        ),
    ]
    encoded = {v.encode() for v in variants}
    assert len(encoded) == len(variants)
