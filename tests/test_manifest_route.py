"""The route without a pipeline: a hand-written manifest recorded with the files it names
(`mlprov manifest record`) reaches check, build, why with proofs, triage and diff."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.test_cli import mlprov, ok

from mlprov.answers.triage import triage
from mlprov.answers.why import to_json, why
from mlprov.capture.handwritten import record
from mlprov.errors import ConflictError, InputError
from mlprov.facade import Ledger
from mlprov.governance.manifest import WRITTEN, from_ledger
from mlprov.governance.policy import check
from mlprov.governance.review import record_review
from mlprov.ledger.names import label

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["My parcel is late", "I cannot log in", "Refund please", "Where is it?"],
    }
)
SOURCES = """source_records:
  - ref: tickets@2026-06-01
    file: tickets.parquet
    key: ticket_id
    subject: email
    rights_basis: customer-terms-2025 §4
  - ref: opt-outs@2026-06-01
    file: opt-outs.parquet
    subject: email
    rights_basis: customer objections log
"""
ONE_STEP = f"""dataset: ticket-training
created_at: 2026-06-01
{SOURCES}transforms:
  - opt-out-removal-v1 on=email
data_file: training.parquet
key: ticket_id
subject: email
"""


def files(folder: Path) -> Path:
    pq.write_table(TICKETS, folder / "tickets.parquet")
    pq.write_table(pa.table({"email": ["ann@example.com"]}), folder / "opt-outs.parquet")
    kept = TICKETS.filter(pc.not_equal(TICKETS["email"], "ann@example.com"))
    pq.write_table(kept, folder / "training.parquet")
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def accept(ledger: Ledger) -> None:
    for ref in ("tickets@2026-06-01", "opt-outs@2026-06-01"):
        record_review(ledger, ref, "accepted", "carol@example.com")


def test_a_manifest_with_its_files_reaches_check_build_why_and_triage(
    ledger: Ledger, tmp_path: Path
) -> None:
    manifest = write(files(tmp_path), "manifest.yaml", ONE_STEP)
    done = record(ledger, manifest)
    assert done.fresh and label(done.dataset) == "ticket-training@v1"
    assert dict(done.sources) == {
        "tickets@2026-06-01": "fingerprinted",
        "opt-outs@2026-06-01": "fingerprinted",
    }
    assert dict(done.steps)["opt-out-removal-v1"].startswith("removed 2, shown by the files")
    size = ledger.size
    again = record(ledger, manifest)
    assert not again.fresh and again.dataset.digest == done.dataset.digest
    assert ledger.size == size  # nothing new recorded: not the sources, steps or dataset
    accept(ledger)
    assert check(ledger, done.dataset) == []  # MPG005 reads the data file's record set
    build = ledger.build("router-v1", dataset="ticket-training", code_version="v1")
    assert build.event.payload["gate"] == "passed"

    out = why(ledger, build, subject="ann@example.com")
    assert out.present is False and out.proofs and not out.proofs[0].present
    assert {t.key for t in out.trails} == {"1", "4"}
    assert all(t.removed_by is not None for t in out.trails)
    assert "hand-written manifest" in out.trails[0].removed_by.detail  # type: ignore[union-attr]
    inside = why(ledger, build, key="2")
    assert inside.present is True and inside.proofs[0].present
    # the key's record is proven in the hand-written dataset, as in a captured one
    assert done.dataset.digest in {link.event.digest for link in inside.links}
    assert to_json(out)["dataset"]["recorded_from"] == "manifest"

    shown = from_ledger(ledger, done.dataset)
    assert [t.name for t in shown.transforms] == ["opt-out-removal-v1"]
    assert shown.transforms[0].counts["removed"] == 2 and shown.version == "v1"
    ran = next(r for r in triage(ledger, build).rows if r.question == "Did exclusion run?")
    assert ran.answer == "yes" and "opt-out-removal-v1" in ran.evidence
    assert "described by a hand-written manifest" in ran.evidence


def test_what_the_files_cannot_show_is_said_with_what_to_record(
    ledger: Ledger, tmp_path: Path
) -> None:
    text = ONE_STEP.replace(
        "  - opt-out-removal-v1 on=email\n",
        "  - opt-out-removal-v1 on=email\n  - lowercase-v1 column=text\n",
    )
    done = record(ledger, write(files(tmp_path), "two.yaml", text))
    assert "not known from the files" in dict(done.steps)["opt-out-removal-v1"]
    accept(ledger)
    out = why(ledger, done.dataset, subject="ann@example.com")
    assert out.present is False  # the data file's record set still proves it
    fate = out.trails[0].fates[0]
    assert fate.did == "unknown" and "removed_keys" in fate.detail
    assert any("removed_keys" in m for m in out.missing)
    ran = next(r for r in triage(ledger, done.dataset).rows if r.question == "Did exclusion run?")
    assert ran.answer == "partially" and "removed_keys" in ran.risk
    assert [f.gate for f in check(ledger, done.dataset)] == ["MPG008", "MPG008"]

    (tmp_path / "removed.txt").write_text("1\n4\n")
    keyed = text.replace(
        "  - opt-out-removal-v1 on=email\n",
        "  - name: opt-out-removal-v1\n    kind: exclusion\n    on: email\n"
        "    removed_keys: removed.txt\n",
    )
    fixed = record(ledger, write(tmp_path, "keyed.yaml", keyed))
    assert label(fixed.dataset) == "ticket-training@v2"  # another history: a new version
    removed = why(ledger, fixed.dataset, subject="ann@example.com").trails[0].removed_by
    assert removed is not None and removed.name == "opt-out-removal-v1"


def test_bad_manifests_record_nothing(ledger: Ledger, tmp_path: Path) -> None:
    record(ledger, write(files(tmp_path), "manifest.yaml", ONE_STEP))
    size = ledger.size
    with pytest.raises(InputError, match="need schema_version 2"):
        record(ledger, write(tmp_path, "old.yaml", "schema_version: 1\n" + ONE_STEP))
    other = tmp_path / "other"
    other.mkdir()
    files(other)
    pq.write_table(TICKETS.slice(0, 3), other / "tickets.parquet")
    with pytest.raises(ConflictError, match="tickets@2026-06-01 is already recorded"):
        record(ledger, write(other, "manifest.yaml", ONE_STEP))
    (tmp_path / "removed.txt").write_text("9\n")
    wrong = ONE_STEP.replace(
        "  - opt-out-removal-v1 on=email\n",
        "  - name: opt-out-removal-v1\n    kind: exclusion\n    removed_keys: removed.txt\n",
    )
    with pytest.raises(InputError, match="removed key '9' is not a key of its input"):
        record(ledger, write(tmp_path, "wrong.yaml", wrong))
    assert ledger.size == size


def test_the_command_line_route_with_proofs(tmp_path: Path) -> None:
    Ledger.init(tmp_path).close()
    write(files(tmp_path), "manifest.yaml", ONE_STEP)
    recorded = ok(mlprov("manifest", "record", "manifest.yaml", cwd=tmp_path))
    assert "recorded dataset ticket-training@v1" in recorded
    assert "source tickets@2026-06-01: fingerprinted" in recorded
    for ref in ("tickets@2026-06-01", "opt-outs@2026-06-01"):
        ok(
            mlprov(
                "review", ref, "--status", "accepted", "--reviewer", "c@example.com", cwd=tmp_path
            )
        )
    checked = ok(mlprov("check", "ticket-training@v1", cwd=tmp_path))
    assert "ticket-training@v1 for training: clear" in checked
    assert "hand-written manifest" in " ".join(checked.split())
    ok(
        mlprov(
            "build",
            "router-v1",
            "--dataset",
            "ticket-training@v1",
            "--code-version",
            "v1",
            cwd=tmp_path,
        )
    )
    answer = ok(
        mlprov(
            "why", "--model", "router-v1", "--subject", "ann@example.com", "--json", cwd=tmp_path
        )
    )
    assert json.loads(answer)["present"] is False
    (tmp_path / "ann.json").write_text(answer)
    assert "NOT IN set" in ok(mlprov("check-proof", "ann.json", cwd=tmp_path))
    shown = ok(mlprov("why", "--model", "router-v1", "--key", "2", cwd=tmp_path))
    assert "Yes: the key 2 is in the training set of router-v1" in shown
    assert WRITTEN.split(":")[0] in " ".join(shown.split())
    table = json.loads(ok(mlprov("triage", "router-v1", "--json", cwd=tmp_path)))
    steps = json.loads(
        ok(mlprov("manifest", "show", "ticket-training", "--format", "json", cwd=tmp_path))
    )
    ran = next(r for r in table["rows"] if r["question"] == "Did exclusion run?")
    assert ran["answer"] == "yes"
    assert all(
        t["name"] in ran["evidence"] for t in steps["transforms"] if t["kind"] == "exclusion"
    )
    drift = ok(mlprov("diff", "manifest.yaml", "ticket-training@v1", cwd=tmp_path))
    assert "exclusion-report-added: opt-out-removal-v1" in drift
    assert "ticket-training@v1 (" in drift and "from a hand-written manifest" in drift
