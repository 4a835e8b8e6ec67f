"""`LedgerCore.at_size`: the ledger as it stood at a past log size, on each store. Every
read leaves out what was recorded later; writing, signing and verifying are refused."""

from __future__ import annotations

import pytest

from mlprov.errors import InputError, NotFoundError
from mlprov.facade import Ledger
from mlprov.ledger.events import Entry


def note(ledger: Ledger, text: str, parents: list[Entry] | None = None) -> Entry:
    return ledger.record(
        "source",
        {"name": "notes", "version": text, "byte_digest": "sha256:" + "0" * 63 + str(len(text))},
        parents=[p.digest for p in parents or []],
    )


def test_reads_leave_out_what_came_later(ledger: Ledger) -> None:
    first = note(ledger, "1")
    ledger.checkpoint()
    second = note(ledger, "22", [first])
    ledger.checkpoint()
    third = note(ledger, "333", [second])
    past = ledger.at_size(2)
    assert past.size == 2 and ledger.size == 3
    assert [e.digest for e in past.entries()] == [first.digest, second.digest]
    assert [e.digest for e in past.entries(newest_first=True, limit=1)] == [second.digest]
    assert past.find("notes", ("source",)).entry.digest == second.digest  # the newest then
    assert [e.digest for e in past.children(first.digest)] == [second.digest]
    assert past.children(second.digest) == []
    with pytest.raises(NotFoundError):
        past.get(third.digest)
    with pytest.raises(NotFoundError):
        past.resolve(third.digest.hex[:12])
    assert past.resolve(first.digest.hex[:12]) == first.digest
    assert past.root() == ledger.root(2)
    assert [c.checkpoint.size for c in past.checkpoints()] == [1, 2]
    proof = past.inclusion_proof(first.digest)
    assert proof.tree_size == 2 and proof.root == ledger.root(2).hex()
    proof.verify()
    with pytest.raises(InputError, match="tree size 3 is out of range"):
        past.root(3)
    with pytest.raises(InputError, match="size 4 is out of range"):
        ledger.at_size(4)


def test_the_past_is_read_only(ledger: Ledger) -> None:
    first = note(ledger, "1")
    note(ledger, "22")
    past = ledger.at_size(1)
    for act, what in (
        (lambda: note(past, "333"), "record events"),
        (past.checkpoint, "sign a checkpoint"),
        (past.verify, "verify"),
    ):
        with pytest.raises(InputError, match=f"cannot {what} in the ledger as it stood at size 1"):
            act()
    past.close()  # the ledger it came from still reads its store
    assert ledger.size == 2 and ledger.get(first.digest).digest == first.digest
