"""`mlprov manifest record` given a Croissant file: its files, checksums, licence and RAI
facts recorded as sources and a hand-written dataset, through the manifest route. An
exported file imports back to the same facts; bad input is refused with nothing recorded."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.test_cli import assert_error, mlprov, ok

from mlprov.capture.handwritten import record
from mlprov.errors import InputError
from mlprov.export.croissant import CONFORMS_TO, CONTEXT
from mlprov.facade import Ledger
from mlprov.governance.lint import lint
from mlprov.governance.manifest import from_ledger
from mlprov.ledger.names import label

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["My parcel is late", "I cannot log in", "Refund please", "Where is it?"],
    }
)
OPT_OUTS = pa.table({"email": ["ann@example.com"]})
FACTS: dict[str, Any] = {
    "license": "CC-BY-4.0",
    "owner": "Example Support, Ltd",
    "collected": ("2024-01", "2026-05"),
    "acquisition": "user",
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_payload(ledger: Ledger, ref: str) -> dict[str, Any]:
    found = next(ledger.entries(type="source", name=ref, newest_first=True))
    payload: dict[str, Any] = json.loads(json.dumps(found.event.payload))  # as JSON holds it
    return payload


# -- (a) a round trip: exported by mlprov, recorded into a fresh ledger ------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline's dataset exported as Croissant, with its files, in a folder of its own."""
    home = tmp_path_factory.mktemp("pipeline")
    pq.write_table(TICKETS, home / "tickets.parquet")
    pq.write_table(OPT_OUTS, home / "opt-outs.parquet")
    with Ledger.init(home) as ledger, ledger.pipeline("ticket-training") as p:
        tickets = p.source(
            home / "tickets.parquet",
            "tickets@2026-06-01",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms-2025 §4",
            personal_data=True,
            **FACTS,
        )
        lists = p.source(
            home / "opt-outs.parquet",
            "opt-outs@2026-06-01",
            subject="email",
            rights_basis="customer objections log",
            license="CC-BY-4.0",
        )
        kept = p.exclude("opt-out-removal-v1", tickets, using=lists, on="email")
        p.dataset(kept, "ticket-training", version="1.0.0")
    kept_rows = TICKETS.filter(pc.not_equal(TICKETS["email"], "ann@example.com"))
    pq.write_table(kept_rows, home / "training.parquet")
    ok(
        mlprov(
            "export",
            "croissant",
            "ticket-training@1.0.0",
            "--data",
            "training.parquet",
            "--out",
            "metadata.json",
            cwd=home,
        )
    )
    away = tmp_path_factory.mktemp("imported")
    for name in ("metadata.json", "tickets.parquet", "opt-outs.parquet", "training.parquet"):
        shutil.copy(home / name, away / name)
    return away


def test_an_exported_file_records_back_and_reaches_check_build_and_why(exported: Path) -> None:
    home = exported
    ok(mlprov("init", cwd=home))
    args = ("manifest", "record", "metadata.json", "--key", "ticket_id", "--subject", "email")
    done = json.loads(ok(mlprov(*args, "--json", cwd=home)))
    assert done["recorded"] is True
    assert done["sources"] == {
        "tickets@2026-06-01": "fingerprinted",
        "opt-outs@2026-06-01": "fingerprinted",
    }
    assert done["steps"]["opt-out-removal-v1"].startswith("removed 2, shown by the files")
    with Ledger.open(cwd=home) as ledger:
        size = ledger.size
        tickets = source_payload(ledger, "tickets@2026-06-01")
        lists = source_payload(ledger, "opt-outs@2026-06-01")
    assert {k: tickets[k] for k in FACTS} == {**FACTS, "collected": ["2024-01", "2026-05"]}
    assert tickets["rights_basis"] == "customer-terms-2025 §4" and tickets["personal_data"]
    assert lists["rights_basis"] == "customer objections log" and lists["license"] == "CC-BY-4.0"
    assert "personal_data" not in lists  # the export says it is not recorded
    again = json.loads(ok(mlprov(*args, "--json", cwd=home)))
    assert again["recorded"] is False and again["digest"] == done["digest"]
    with Ledger.open(cwd=home) as ledger:
        assert ledger.size == size  # nothing new the second time
    for ref in ("tickets@2026-06-01", "opt-outs@2026-06-01"):
        ok(mlprov("review", ref, "--status", "accepted", "--reviewer", "c@example.com", cwd=home))
    checked = ok(mlprov("check", "ticket-training@1.0.0", cwd=home))
    assert "ticket-training@1.0.0 for training: clear" in checked
    ok(
        mlprov(
            "build",
            "router-v1",
            "--dataset",
            "ticket-training@1.0.0",
            "--code-version",
            "v1",
            cwd=home,
        )
    )
    answer = ok(
        mlprov("why", "--model", "router-v1", "--subject", "ann@example.com", "--json", cwd=home)
    )
    assert json.loads(answer)["present"] is False
    shown = ok(mlprov("why", "--model", "router-v1", "--key", "2", cwd=home))
    assert "Yes: the key 2 is in the training set of router-v1" in shown
    manifest = json.loads(
        ok(mlprov("manifest", "show", "ticket-training@1.0.0", "--format", "json", cwd=home))
    )
    assert [(s["ref"], s["license"]) for s in manifest["source_records"]] == [
        ("tickets@2026-06-01", "CC-BY-4.0"),
        ("opt-outs@2026-06-01", "CC-BY-4.0"),
    ]
    step = manifest["transforms"][0]
    assert (step["name"], step["version"], step["kind"]) == (
        "opt-out-removal-v1",
        "v1",
        "exclusion",
    )
    assert step["params"]["on"] == "email"
    assert [u["ref"] for u in step["used"]] == ["tickets@2026-06-01", "opt-outs@2026-06-01"]
    assert manifest["data_file"] == "training.parquet"
    assert manifest["sha256"] == "sha256:" + sha(home / "training.parquet")
    ok(mlprov("verify", cwd=home))


# -- (b) a hand-written Croissant 1.1 file --------------------------------------------------


def file_object(ident: str, name: str, url: str, kind: str, digest: str) -> dict[str, Any]:
    return {
        "@type": "cr:FileObject",
        "@id": ident,
        "name": name,
        "contentUrl": url,
        "encodingFormat": kind,
        "sha256": digest,
    }


def field(rs: str, file: str, column: str, kind: str = "sc:Text") -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"{rs}/{column}",
        "name": column,
        "dataType": kind,
        "source": {"fileObject": {"@id": file}, "extract": {"column": column}},
    }


def written(folder: Path) -> dict[str, Any]:
    """A Croissant 1.1 file as a team writes one by hand, and its two files beside it."""
    pq.write_table(TICKETS, folder / "tickets.parquet")
    agents = [{"agent": "a1", "team": "billing"}, {"agent": "a2", "team": "returns"}]
    (folder / "agents.jsonl").write_text("".join(json.dumps(a) + "\n" for a in agents))
    tickets = file_object(
        "tickets.parquet",
        "tickets",
        "tickets.parquet",
        "application/x-parquet",
        sha(folder / "tickets.parquet"),
    )
    tickets["mlprov:rightsBasis"] = "customer-terms-2025 §4"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": "support tickets",
        "description": "Support tickets and the agents who answered them.",
        "url": "https://example.org/datasets/support-tickets",
        "license": "https://spdx.org/licenses/CC-BY-4.0.html",
        "creator": {"@type": "sc:Person", "name": "Dana Engineer"},
        "publisher": {"@type": "sc:Organization", "name": "Example Corp"},
        "datePublished": "2026-06-01T09:00:00Z",
        "version": "2.1.0",
        "citeAs": "Example Corp support tickets",
        "rai:dataCollectionTimeframe": ["2024-01-01T00:00:00Z", "2026-05-31T00:00:00Z"],
        "rai:personalSensitiveInformation": [
            "tickets holds customers' e-mail addresses",
            "agents@2026-05: no personal data, agent codes only",
        ],
        "rai:dataPreprocessingProtocol": [
            "2: Lower-cased the text",
            "1: Removed the tickets of customers who opted out",
        ],
        "distribution": [
            tickets,
            file_object(
                "agents.jsonl",
                "agents@2026-05",
                "agents.jsonl",
                "application/jsonlines",
                sha(folder / "agents.jsonl"),
            ),
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "tickets",
                "name": "tickets",
                "key": {"@id": "tickets/ticket_id"},
                "mlprov:subject": {"@id": "tickets/email"},
                "field": [
                    field("tickets", "tickets.parquet", "ticket_id", "sc:Integer"),
                    field("tickets", "tickets.parquet", "email"),
                    field("tickets", "tickets.parquet", "text"),
                ],
            },
            {
                "@type": "cr:RecordSet",
                "@id": "agents",
                "name": "agents",
                "field": [field("agents", "agents.jsonl", "agent")],
            },
        ],
    }


def save(folder: Path, doc: dict[str, Any], name: str = "croissant.jsonld") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def test_a_hand_written_croissant_file_records_its_sources_and_steps(tmp_path: Path) -> None:
    path = save(tmp_path, written(tmp_path))  # Croissant by its content, not its suffix
    with Ledger.init(tmp_path) as ledger:
        done = record(ledger, path)
        assert done.fresh and label(done.dataset) == "support-tickets@2.1.0"
        assert dict(done.sources) == {
            "tickets@2.1.0": "fingerprinted",
            "agents@2026-05": "fingerprinted",
        }
        tickets = source_payload(ledger, "tickets@2.1.0")
        agents = source_payload(ledger, "agents@2026-05")
        for p in (tickets, agents):
            assert p["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
            assert p["owner"] == "Example Corp"  # the publisher, not the metadata's author
            assert p["collected"] == ["2024-01-01", "2026-05-31"]
        assert tickets["personal_data"] is True and agents["personal_data"] is False
        assert tickets["rights_basis"] == "customer-terms-2025 §4"
        assert "rights_basis" not in agents
        assert tickets["record_count"] == 4 and agents["record_count"] == 2
        manifest = from_ledger(ledger, done.dataset)
        columns = {s.ref: (s.key, s.subject) for s in manifest.source_records}
        assert columns == {"tickets@2.1.0": ("ticket_id", "email"), "agents@2026-05": (None, None)}
        steps = [(t.name, t.kind, t.params) for t in manifest.transforms]
        assert steps == [
            (
                "removed-the-tickets-of-customers-who",
                "exclusion",
                {"description": "Removed the tickets of customers who opted out"},
            ),
            ("lower-cased-the-text", "transform", {"description": "Lower-cased the text"}),
        ]
        assert dict(done.steps)["removed-the-tickets-of-customers-who"].startswith(
            "which records it removed is not known"
        )
        assert done.dataset.event.payload.get("record_root") is None  # two files, no data file
        unbased = [f.value for f in lint(manifest, ledger) if f.rule == "MP001"]
        assert unbased == ["agents@2026-05"]  # recorded without a rights basis: lint says so
        size = ledger.size
        again = record(ledger, path)
        assert not again.fresh and again.dataset.digest == done.dataset.digest
        assert ledger.size == size


# -- (c) bad input: refused, nothing recorded ---------------------------------------------


def _mismatch(doc: dict[str, Any], folder: Path) -> None:
    doc["distribution"][0]["sha256"] = "0" * 64


def _escape(doc: dict[str, Any], folder: Path) -> None:
    doc["distribution"][1]["contentUrl"] = "../agents.jsonl"
    shutil.copy(folder / "agents.jsonl", folder.parent / "agents.jsonl")


def _url(doc: dict[str, Any], folder: Path) -> None:
    doc["distribution"][1]["contentUrl"] = "https://example.org/agents.jsonl"


def _missing(doc: dict[str, Any], folder: Path) -> None:
    (folder / "agents.jsonl").unlink()


def _md5_only(doc: dict[str, Any], folder: Path) -> None:
    del doc["distribution"][1]["sha256"]
    doc["distribution"][1]["md5"] = hashlib.md5((folder / "agents.jsonl").read_bytes()).hexdigest()


def _invalid(doc: dict[str, Any], folder: Path) -> None:
    del doc["distribution"][0]["encodingFormat"]


def _not_croissant(doc: dict[str, Any], folder: Path) -> None:
    for k in [k for k in doc if k != "@context"]:
        del doc[k]
    doc.update({"@type": "sc:Person", "name": "Dana Engineer"})


CASES = [
    (_mismatch, ("file tickets.parquet", "0" * 64, "nothing was recorded")),
    (_escape, ("agents.jsonl", "leaves the manifest's folder")),
    (_url, ("file agents.jsonl is at a URL", "not in the file's folder")),
    (_missing, ("file agents.jsonl is not at agents.jsonl",)),
    (_md5_only, ("file agents.jsonl gives no SHA-256",)),
    (_invalid, ("not valid Croissant: mlcroissant says:", "encodingFormat")),
    (_not_croissant, ("JSON-LD but not Croissant",)),
]


def spoilt(home: Path, spoil: Any) -> Path:
    """A ledger holding one source, and beside it a Croissant file spoilt by `spoil`."""
    home.mkdir()
    doc = written(home)
    with Ledger.init(home) as ledger, ledger.pipeline("intake") as p:
        p.source(home / "tickets.parquet", "tickets@2026-06-01", key="ticket_id")
    spoil(doc, home)
    return save(home, doc, "metadata.json")


@pytest.mark.parametrize(("spoil", "needles"), CASES)
def test_bad_input_is_refused_and_nothing_is_recorded(
    tmp_path: Path, spoil: Any, needles: tuple[str, ...]
) -> None:
    path = spoilt(tmp_path / "project", spoil)
    with Ledger.open(cwd=path.parent) as ledger:
        size = ledger.size
        with pytest.raises(InputError) as caught:
            record(ledger, path)
        assert caught.value.exit_code == 3 and caught.value.hint
        for needle in needles:
            assert needle in caught.value.message
        assert ledger.size == size and ledger.verify().ok


def test_the_command_line_says_what_is_wrong_with_exit_3(tmp_path: Path) -> None:
    path = spoilt(tmp_path / "project", _mismatch)
    actual = sha(path.parent / "tickets.parquet")
    with Ledger.open(cwd=path.parent) as ledger:
        size = ledger.size
    got = mlprov("manifest", "record", "metadata.json", cwd=path.parent)
    assert_error(got, 3, "file tickets.parquet", actual, "0" * 64, "nothing was recorded")
    with Ledger.open(cwd=path.parent) as ledger:
        assert ledger.size == size and ledger.verify().ok


def test_lint_reads_a_croissant_file_as_its_manifest(tmp_path: Path) -> None:
    save(tmp_path, written(tmp_path), "metadata.json")
    got = mlprov("lint", "metadata.json", "--format", "json", cwd=tmp_path)
    assert got.returncode == 7, got.stderr  # an error finding: a source with no rights basis
    found = json.loads(got.stdout)
    assert found["dataset"] == "support-tickets"
    assert [f["value"] for f in found["findings"] if f["rule"] == "MP001"] == ["agents@2026-05"]


def test_a_file_s_own_licence_and_an_open_temporal_coverage(tmp_path: Path) -> None:
    doc = written(tmp_path)
    del doc["rai:dataCollectionTimeframe"], doc["publisher"]
    doc["temporalCoverage"] = "2025-01/.."
    doc["distribution"][1]["license"] = "LicenseRef-internal"
    doc["rai:personalSensitiveInformation"] = "None: the files hold no personal data"
    with Ledger.init(tmp_path) as ledger:
        record(ledger, save(tmp_path, doc))
        tickets = source_payload(ledger, "tickets@2.1.0")
        agents = source_payload(ledger, "agents@2026-05")
    assert tickets["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert agents["license"] == "LicenseRef-internal"
    assert tickets["collected"] == agents["collected"] == ["2025-01", "ongoing"]
    assert tickets["owner"] == "Dana Engineer"  # no publisher: the creator
    assert tickets["personal_data"] is False and agents["personal_data"] is False
