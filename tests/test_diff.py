"""Manifest diffs: the incident's process drift, and drift between two recorded runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.test_cli import mlprov, ok

from mlprov.facade import Ledger
from mlprov.governance.diff import diff, yaml_diff
from mlprov.governance.manifest import from_ledger, load
from mlprov.ledger import Entry

MANIFESTS = Path(__file__).parent / "manifests"
ROWS = [{"id": i, "user": f"u{i}@example.com", "text": f"Ticket {i}"} for i in range(10)]


def test_the_incident_diff_shows_exactly_the_examples_changes() -> None:
    before, after = (
        load(MANIFESTS / "incident-before.yaml"),
        load(MANIFESTS / "incident-after.yaml"),
    )
    found = diff(before, after)
    assert [(c.kind, c.item) for c in found.changes] == [
        ("source-reversioned", "support-chat-export"),
        ("source-added", "opt-out-list@2026-05-22"),
        ("rights-changed", "support-chat-export@2026-05-22"),
        ("transform-reversioned", "normalize"),
        ("transform-added", "pii-redaction-v3"),
        ("transform-added", "opt-out-removal-v2"),
        ("transform-reversioned", "dedupe"),
        ("exclusion-report-added", "removed-records-8841.json"),
        ("reviewer-status", "dataset"),
        ("unresolved-risks-added", "non-English coverage gap"),
        ("unresolved-risks-added", "legacy tickets before consent-policy migration"),
        ("sha256", "bytes"),
    ]
    rights = found.changes[2]
    assert (rights.before, rights.after) == (
        "internal",
        "internal-use-policy-2026-04 + customer-exclusion-log",
    )
    rendered = yaml_diff(before, after)
    assert "-  rights_basis: internal\n" in rendered
    assert "+- name: opt-out-removal-v2\n" in rendered
    assert diff(after, after).same and yaml_diff(after, after) == ""


def lower(t: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    return t.set_column(2, "text", pc.utf8_lower(t.column("text")))


def drop_first(t: pa.Table) -> pa.Table:
    return t.slice(1)


def run(ledger: Ledger, name: str, steps: list[tuple[str, Any, dict[str, Any]]]) -> Entry:
    with ledger.pipeline(name) as p:
        rows = p.source(pa.Table.from_pylist(ROWS), "tickets@1", key="id", subject="user")
        for step, fn, params in steps:
            rows = p.transform(step, fn, rows, params=params)
        return p.dataset(rows, name)


def test_two_runs_differ_in_parameters_order_versions_and_records(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    a = run(ledger, "train-a", [("lower-v1", lower, {"locale": "en"}), ("trim-v1", drop_first, {})])
    b = run(ledger, "train-b", [("trim-v2", drop_first, {}), ("lower-v1", lower, {"locale": "de"})])
    found = diff(from_ledger(ledger, a), from_ledger(ledger, b), ledger)
    kinds = {c.kind: c for c in found.changes}
    assert kinds["transform-reparameterised"].before == {"locale": "en"}
    assert kinds["transform-reparameterised"].after == {"locale": "de"}
    assert (kinds["transform-reversioned"].before, kinds["transform-reversioned"].after) == (
        "trim-v1",
        "trim-v2",
    )
    assert kinds["transforms-reordered"].after == ["trim", "lower"]
    assert "record-root" not in kinds  # the same records either way
    c = run(ledger, "train-c", [("lower-v1", lower, {"locale": "en"})])
    records = [str(c) for c in diff(from_ledger(ledger, a), from_ledger(ledger, c), ledger)
               .changes if c.kind in ("records", "subjects")]  # fmt: skip
    assert records == ["records: 1 added, 0 removed", "subjects: 1 added, 0 removed"]


def test_the_diff_command(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    a = run(ledger, "train-a", [("lower-v1", lower, {"locale": "en"})])
    run(ledger, "train-b", [("lower-v2", lower, {"locale": "en"})])
    ledger.build("model-a", dataset=a, gates=())
    shown = json.loads(ok(mlprov("diff", "model-a", "train-b", "--json", cwd=tmp_path)))
    assert [c["kind"] for c in shown["changes"]] == ["transform-reversioned"]
    assert shown["a"].startswith("train-a") and "+- name: lower-v2" in shown["yaml_diff"]
    files = ok(
        mlprov(
            "diff", MANIFESTS / "incident-before.yaml", MANIFESTS / "incident-after.yaml",
            cwd=tmp_path,
        )
    )  # fmt: skip
    assert "rights-changed" in files and "+reviewer_status: accepted_with_limits" in files
    missing = mlprov("diff", "train-a", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 3


@pytest.mark.parametrize("field", ["limits", "unresolved_risks"])
def test_limits_and_risks_added_and_removed(field: str) -> None:
    base = load(MANIFESTS / "incident-after.yaml")
    changed = base.model_copy(update={field: ("one", "two")})
    kinds = [c.kind for c in diff(base, changed).changes]
    name = field.replace("_", "-")
    assert f"{name}-added" in kinds
    assert kinds.count(f"{name}-removed") == (2 if field == "unresolved_risks" else 0)
