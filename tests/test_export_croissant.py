"""`mlprov export croissant`: a dataset's Croissant 1.1 metadata, judged by `mlcroissant`,
which validates it and loads the dataset's records from local Parquet through it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.test_cli import assert_error, mlprov, ok

from mlprov.errors import InputError
from mlprov.export.croissant import metadata
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_review
from mlprov.ledger import Entry, Event

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4, 5],
        "email": [
            "ann@example.com",
            "bob@example.com",
            "cy@example.com",
            "ann@example.com",
            "d@e.f",
        ],
        "text": ["My parcel", "I cannot log in", "Please refund", "Where is it?", "Thanks"],
        "score": [0.5, 1.5, 2.5, 3.5, 4.5],
        "urgent": [True, False, False, True, False],
    }
)
OPT_OUTS = pa.table({"email": ["ann@example.com"]})


@dataclass
class Made:
    home: Path
    ledger: Ledger
    dataset: Entry
    data: pa.Table


def lower(t: pa.Table) -> pa.Table:
    return t.set_column(2, "text", pc.utf8_lower(t["text"]))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    home = tmp_path_factory.mktemp("croissant")
    ledger = Ledger.init(home)
    pq.write_table(TICKETS, home / "tickets.parquet")
    with ledger.pipeline("ticket-training") as p:
        tickets = p.source(
            home / "tickets.parquet",
            "tickets@2026-06-01",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms-2025 §4",
            license="CC-BY-4.0",
            personal_data=True,
            acquisition="user",
            collected=("2024-01", "2026-05"),
        )
        optouts = p.source(OPT_OUTS, "opt-outs@2026-06-01", subject="email", rights_basis="log")
        kept = p.exclude("opt-out-removal-v1", tickets, using=optouts, on="email")
        out = p.transform("lowercase-v1", lower, kept, params={"locale": "en"})
        dataset = p.dataset(out, "ticket-training", version="1.0.0")
    record_review(
        ledger,
        "tickets@2026-06-01",
        "accepted_with_limits",
        "carol@example.com",
        limits=["English tickets only"],
        risks=["legacy tickets before consent"],
    )
    record_review(ledger, "opt-outs@2026-06-01", "accepted", "carol@example.com")
    ledger.build("ticket-router-v1", dataset=dataset, code_version="v1")
    return Made(home, ledger, dataset, out)


def issues(ds: Any) -> tuple[set[str], set[str]]:
    found = ds.metadata.ctx.issues
    return set(found.errors), set(found.warnings)


def load(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The dataset through mlcroissant, and its records keyed by field name."""
    ds = mlc.Dataset(jsonld=str(path))
    [record_set] = ds.metadata.record_sets
    names = {f.id: f.name for f in record_set.fields}
    rows = [
        {names[k]: v.decode() if isinstance(v, bytes) else v for k, v in row.items()}
        for row in ds.records(record_set.id)
    ]
    return ds, rows


def test_mlcroissant_validates_it_and_loads_the_records_from_parquet(made: Made) -> None:
    folder = made.home / "export"
    folder.mkdir()
    pq.write_table(made.data, folder / "train.parquet")
    out = folder / "metadata.json"
    ok(
        mlprov(
            "export",
            "croissant",
            "ticket-training",
            "--data",
            "export/train.parquet",
            "--out",
            out,
            cwd=made.home,
        )
    )
    ds, rows = load(out)
    assert issues(ds) == (set(), set())
    assert rows == made.data.to_pylist()
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    [train] = [f for f in doc["distribution"] if f["@id"] == "train.parquet"]
    assert train["contentUrl"] == "train.parquet"
    assert train["sha256"] == hashlib.sha256((folder / "train.parquet").read_bytes()).hexdigest()
    assert str(made.home) not in out.read_text(encoding="utf-8")


def test_the_rai_and_provenance_properties_come_from_the_ledger(made: Made, tmp_path: Path) -> None:
    pq.write_table(made.data, tmp_path / "train.parquet")
    doc = metadata(made.ledger, "ticket-training@1.0.0", [tmp_path / "train.parquet"], tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps(doc), encoding="utf-8")
    ds = mlc.Dataset(jsonld=str(tmp_path / "metadata.json"))
    md = ds.metadata
    steps = md.data_preprocessing_protocol
    assert [s.split(":")[0] for s in steps] == ["1", "2"]
    assert "opt-out-removal-v1 (version v1), exclusion" in steps[0]
    assert 'lowercase-v1 (version v1), transform, parameters {"locale":"en"}' in steps[1]
    assert "opt-out-removal-v1 removed 2 records" in md.data_collection_missing_data
    assert "tickets@2026-06-01 holds personal data" in " ".join(md.personal_sensitive_information)
    assert "acquisition user, collected 2024-01 to 2026-05" in md.data_collection
    assert md.data_collection_type == ["User-generated content data"]
    assert set(md.data_limitations) == {
        "Limit: English tickets only",
        "Unresolved risk: legacy tickets before consent",
    }
    uses = " ".join(md.data_use_cases)
    assert "reviewer status accepted_with_limits" in uses and "ticket-router-v1" in uses
    assert md.license == ["CC-BY-4.0"]
    sources = {str(e.digest.hex) for e in made.ledger.entries(type="source")}
    assert {d["@id"].rpartition(":")[2] for d in doc["prov:wasDerivedFrom"]} == sources
    steps_done = [e for e in made.ledger.entries(type="transform")]
    assert [g["@id"].rpartition(":")[2] for g in doc["prov:wasGeneratedBy"]] == [
        e.digest.hex for e in steps_done
    ]
    # the source file the ledger recorded, by its project-relative URI and byte digest
    [source] = [f for f in md.distribution if f.content_url == "tickets.parquet"]
    assert source.sha256 == hashlib.sha256((made.home / "tickets.parquet").read_bytes()).hexdigest()


def test_a_quarantined_source_is_a_limitation(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("p") as p:
        out = p.transform("keep-v1", lambda t: t, p.source(TICKETS, "t@1", key="ticket_id"))
        p.dataset(out, "d")
    record_quarantine(ledger, "t@1", trigger="complaint", exit_condition="review")
    pq.write_table(TICKETS, tmp_path / "d.parquet")
    doc = metadata(ledger, "d", [tmp_path / "d.parquet"], tmp_path)
    assert "t@1 is quarantined" in doc["rai:dataLimitations"]


def test_unicode_columns_and_values_load_through_mlcroissant(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    rows = pa.table(
        {
            "clé": ["a", "b", "c"],
            "personne": ["zoë@exemple.fr", "åsa@exemple.se", "李@例子.中国"],
            "texte «brut»": ["Ça ne marche pas", "Håll käften", "你好"],
        }
    )

    def boom(t: pa.Table) -> pa.Table:
        raise ValueError("étape cassée")

    def source(p: Any) -> Any:
        return p.source(
            rows,
            "tickets@été-2026",
            key="clé",
            subject="personne",
            rights_basis="conditions générales §4",
            license="LicenseRef-interne",
        )

    with pytest.raises(ValueError), ledger.pipeline("clients/fr:v+1") as p:
        p.transform("casse-v1", boom, source(p))
    with ledger.pipeline("clients/fr:v+1") as p:
        kept = p.exclude("retrait-v1", source(p), where=[False, True, False])
        dataset = p.dataset(kept, "donnees/fr:v+1", version="v1-été")
    ledger.build("modele-v1", dataset=dataset, force=True)
    data = rows.filter(pa.array([True, False, True]))
    pq.write_table(data, tmp_path / "données.parquet")
    out = tmp_path / "métadonnées.json"
    ok(
        mlprov(
            "export",
            "croissant",
            "donnees/fr:v+1",
            "--data",
            "données.parquet",
            "--out",
            out,
            cwd=tmp_path,
        )
    )
    ds, loaded = load(out)
    assert issues(ds)[0] == set()
    assert loaded == data.to_pylist()
    assert ds.metadata.name == "donnees/fr:v+1"
    assert any("retrait-v1" in s for s in ds.metadata.data_preprocessing_protocol)
    assert not any("casse-v1" in s for s in ds.metadata.data_preprocessing_protocol)


# -- bad input: a clear error, and nothing written ------------------------------------------------


def test_bad_input_is_refused_and_nothing_is_written(made: Made, tmp_path: Path) -> None:
    home = made.home
    pq.write_table(made.data, home / "good.parquet")
    pq.write_table(TICKETS, home / "wrong.parquet")
    pq.write_table(made.data.slice(0, 1), home / "half.parquet")
    (home / "good.csv").write_text("ticket_id\n2\n", encoding="utf-8")
    out = home / "out.json"

    def refused(code: int, needle: str, *args: str | Path) -> None:
        assert_error(mlprov("export", "croissant", *args, cwd=home), code, needle)
        assert not out.exists()

    refused(3, "no dataset no-such", "no-such", "--data", "good.parquet", "--out", out)
    refused(3, "not a dataset", "ticket-router-v1", "--data", "good.parquet", "--out", out)
    refused(3, "no data file", "ticket-training", "--out", out)
    refused(3, "not in dataset", "ticket-training", "--data", "wrong.parquet", "--out", out)
    refused(3, "lack 2 of the 3", "ticket-training", "--data", "half.parquet", "--out", out)
    refused(3, "Parquet or JSON Lines", "ticket-training", "--data", "good.csv", "--out", out)
    refused(3, "no data file at", "ticket-training", "--data", "gone.parquet", "--out", out)
    refused(3, "is a directory", "ticket-training", "--data", "good.parquet", "--out", tmp_path)
    # a data file outside the folder the metadata goes to would need an absolute path
    outside = tmp_path / "meta" / "m.json"
    outside.parent.mkdir()
    assert_error(
        mlprov(
            "export",
            "croissant",
            "ticket-training",
            "--data",
            "good.parquet",
            "--out",
            outside,
            cwd=home,
        ),
        3,
        "is not in",
    )
    assert not outside.exists()


def test_a_dataset_without_a_record_set_is_refused(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    ledger.append(Event.create("dataset", {"name": "bare"}, actor="carol@example.com"))
    pq.write_table(TICKETS, tmp_path / "bare.parquet")
    with pytest.raises(InputError, match="has no record set"):
        metadata(ledger, "bare", [tmp_path / "bare.parquet"], tmp_path)
    assert_error(
        mlprov(
            "export", "croissant", "bare", "--data", "bare.parquet", "--out", "m.json", cwd=tmp_path
        ),
        3,
        "has no record set",
    )
    assert not (tmp_path / "m.json").exists()


def test_records_in_json_lines_load_through_mlcroissant_too(made: Made, tmp_path: Path) -> None:
    with (tmp_path / "train.jsonl").open("w", encoding="utf-8") as f:
        for row in made.data.to_pylist():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    doc = metadata(made.ledger, made.dataset, [tmp_path / "train.jsonl"], tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps(doc), encoding="utf-8")
    ds, rows = load(tmp_path / "metadata.json")
    assert issues(ds)[0] == set()
    assert rows == made.data.to_pylist()
    [train] = [f for f in ds.metadata.distribution if f.content_url == "train.jsonl"]
    assert train.encoding_formats == ["application/jsonlines"]
