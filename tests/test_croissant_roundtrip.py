"""Each source's facts survive a Croissant export and `manifest record` into a fresh ledger
exactly, read from the properties of its FileObject: a fact whose text reads like the
export's sentence (`, owner `, `, rights basis `) or is not ASCII changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlprov.capture.handwritten import record
from mlprov.errors import InputError
from mlprov.export.croissant import dumps, metadata
from mlprov.facade import Ledger

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["Mon colis est en retard", "ログインできません", "Refund please", "Où est-il ?"],
    }
)
OPT_OUTS = pa.table({"email": ["ann@example.com"]})
#: Facts that the sentence in rai:dataCollection could not carry back.
TICKET_FACTS: dict[str, Any] = {
    "rights_basis": "conditions générales 2025 §4, owner Müller; rights basis ours",
    "license": "CC-BY-4.0",
    "owner": "Société Exemple, owner of the 支持 desk",
    "collected": ("2024-01", "ongoing"),
    "personal_data": True,
    "acquisition": "user",
    "purpose": "answering customers, owner support; routing, description n/a",
    "modality": "text",
    "languages": ("fr", "ja", "en"),
    "description": "tickets, owner Zoë Ødegård, rights basis none, purpose x. ",
    "copyright": "mixed",
    "aggregate_consumer_info": False,
}
#: Recorded by a pipeline from its in-memory table, not by a file's import.
DERIVED = ("columns",)


def payloads(ledger: Ledger) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for e in ledger.entries(type="source"):
        found[str(e.event.name)] = dict(e.event.payload)
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A pipeline's dataset of two sources exported as Croissant, beside its files; and
    the source events' payloads as the first ledger recorded them."""
    home = tmp_path_factory.mktemp("pipeline")
    for name, table in (("tickets", TICKETS), ("opt-outs", OPT_OUTS)):
        pq.write_table(table, home / f"{name}.parquet")
    with Ledger.init(home) as ledger:
        with ledger.pipeline("ticket-training") as p:
            tickets = p.source(home / "tickets.parquet", "tickets@2026-06-01", **TICKET_FACTS)
            lists = p.source(home / "opt-outs.parquet", "opt-outs@2026-06-01")  # no facts
            kept = p.exclude("opt-out-removal-v1", tickets, using=lists, on="email")
            p.dataset(kept, "ticket-training", version="1.0.0")
        kept_rows = TICKETS.filter(pc.not_equal(TICKETS["email"], "ann@example.com"))
        pq.write_table(kept_rows, home / "training.parquet")
        doc = metadata(ledger, "ticket-training@1.0.0", [home / "training.parquet"], home)
        original = payloads(ledger)
    away = tmp_path_factory.mktemp("imported")
    (away / "metadata.json").write_bytes(dumps(doc))
    for name in ("tickets", "opt-outs", "training"):
        shutil.copy(home / f"{name}.parquet", away / f"{name}.parquet")
    return away, original


def test_every_fact_of_every_source_round_trips_exactly(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    home, original = exported
    doc = json.loads((home / "metadata.json").read_text(encoding="utf-8"))
    assert ", owner Zoë Ødegård" in doc["rai:dataCollection"]  # the sentence, for people
    with Ledger.init(home) as ledger:
        record(ledger, home / "metadata.json")
        imported = payloads(ledger)
    assert set(imported) == set(original)
    for ref, before in original.items():
        after = imported[ref]
        facts = {k for k in (*before, *after) if k not in DERIVED}
        for fact in sorted(facts):
            assert after.get(fact) == before.get(fact), f"{ref}: {fact}"
        assert after["byte_digest"] == before["byte_digest"], ref
        assert after["record_count"] == before["record_count"], ref
    assert original["tickets@2026-06-01"]["purpose"] == TICKET_FACTS["purpose"]
    assert "personal_data" not in imported["opt-outs@2026-06-01"]  # not recorded stays so


def test_the_source_facts_are_properties_of_its_file_object(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    home, _ = exported
    doc = json.loads((home / "metadata.json").read_text(encoding="utf-8"))
    files = {f["@id"]: f for f in doc["distribution"]}
    tickets = files["source/tickets@2026-06-01"]
    assert tickets["license"] == "CC-BY-4.0"
    assert tickets["mlprov:rightsBasis"] == TICKET_FACTS["rights_basis"]
    assert tickets["mlprov:owner"] == TICKET_FACTS["owner"]
    assert (tickets["mlprov:collectedFrom"], tickets["mlprov:collectedUntil"]) == (
        "2024-01",
        "ongoing",
    )
    assert tickets["mlprov:personalData"] is True and tickets["mlprov:optOut"] is False
    assert tickets["mlprov:languages"] == ["fr", "ja", "en"]
    assert tickets["mlprov:reviewStatus"] == "never_reviewed"
    lists = files["source/opt-outs@2026-06-01"]
    assert lists["mlprov:optOut"] is True
    assert "license" not in lists and "mlprov:personalData" not in lists
    assert "mlprov" in doc["@context"]


def test_a_fact_of_the_wrong_kind_is_refused_and_nothing_is_recorded(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    home, _ = exported
    for name in ("tickets", "opt-outs", "training"):
        shutil.copy(home / f"{name}.parquet", tmp_path / f"{name}.parquet")
    doc = json.loads((home / "metadata.json").read_text(encoding="utf-8"))
    with Ledger.init(tmp_path) as ledger:
        for (prop, value), needle in (
            (("mlprov:personalData", "yes"), 'mlprov:personalData is "yes", not true or false'),
            (("mlprov:acquisition", "stolen"), "acquisition"),
            (("mlprov:collectedFrom", "last spring"), "collected"),
        ):
            changed = json.loads(json.dumps(doc))
            [tickets] = [f for f in changed["distribution"] if "tickets" in f["@id"]]
            tickets[prop] = value
            path = tmp_path / "metadata.json"
            path.write_text(json.dumps(changed), encoding="utf-8")
            with pytest.raises(InputError) as caught:
                record(ledger, path)
            assert needle in caught.value.message
            assert ledger.size == 0
