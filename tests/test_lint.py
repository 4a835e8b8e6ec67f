"""Lint: each rule fires on a minimal broken manifest and not on the fixed one (so each test
fails when its rule is taken away); the incident's before and after; the lint gate; SARIF
validated against the official schema; the commands through the real console script."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.test_cli import mlprov, ok

from mlprov.digest import Digest
from mlprov.facade import Ledger
from mlprov.governance.gates import GATES
from mlprov.governance.lint import RULES, Finding, all_of, has_errors, lint
from mlprov.governance.manifest import (
    BuildRef,
    ExclusionReport,
    Input,
    Manifest,
    SourceRecord,
    Step,
    from_ledger,
    load,
)
from mlprov.governance.policy import check
from mlprov.governance.review import record_quarantine, record_review
from mlprov.governance.sarif import sarif_log
from mlprov.ledger import Entry, Event

FIXTURES = Path(__file__).parent / "manifests"
SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "vectors/sarif/sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
ALICE, CAROL = "alice@example.com", "carol@example.com"
D1 = Digest.of_bytes(b"changes")
D2 = Digest.of_bytes(b"records")
CHATS, OPTOUT = "support-chat-export@2026-05-22", "opt-out-list@2026-05-22"

FIXED = Manifest(
    dataset="support-classifier-training",
    created_at="2026-05-22T18:10:00Z",
    source_records=(
        SourceRecord(ref=CHATS, rights_basis="internal-use-policy-2026-04"),
        SourceRecord(ref=OPTOUT, rights_basis="customer-exclusion-log", opt_out=True),
    ),
    transforms=(
        Step(name="pii-redaction-v3", version="v3", params={"patterns": ["email"]}),
        Step(
            name="opt-out-removal-v2",
            version="v2",
            kind="exclusion",
            params={"on": "customer_id"},
            used=(Input(role="input", ref=CHATS), Input(role="using", ref=OPTOUT)),
        ),
    ),
    exclusion_reports=(ExclusionReport(step="opt-out-removal-v2", digest=D1, removed=1),),
    reviewer_status="accepted",
    record_root=D2,
)


def ids(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def with_source(i: int, **change: Any) -> Callable[[Manifest], Manifest]:
    def edit(m: Manifest) -> Manifest:
        records = list(m.source_records)
        records[i] = records[i].model_copy(update=change)
        return m.model_copy(update={"source_records": tuple(records)})

    return edit


def with_step(i: int, **change: Any) -> Callable[[Manifest], Manifest]:
    def edit(m: Manifest) -> Manifest:
        steps = list(m.transforms)
        steps[i] = steps[i].model_copy(update=change)
        return m.model_copy(update={"transforms": tuple(steps)})

    return edit


def with_(**change: Any) -> Callable[[Manifest], Manifest]:
    return lambda m: m.model_copy(update=change)


# (rule, severity, how to break the fixed manifest)
BREAKS: list[tuple[str, str, Callable[[Manifest], Manifest]]] = [
    ("MP001", "error", with_source(0, rights_basis="internal")),
    ("MP001", "error", with_source(0, rights_basis="Public")),
    ("MP001", "error", with_source(0, rights_basis="  ")),
    ("MP001", "error", with_source(0, rights_basis=None)),
    ("MP002", "error", with_source(0, ref="support-chat-export")),
    ("MP002", "error", with_(source_records=())),
    ("MP003", "error", with_step(0, name="clean-data", version=None)),
    ("MP003", "error", with_step(0, name="dedupe", version=None)),
    ("MP004", "warning", with_step(0, name="clean-data-v1", version="v1")),
    ("MP004", "note", with_step(0, params={})),
    ("MP005", "error", with_(exclusion_reports=())),
    (
        "MP005",
        "error",
        with_(transforms=(FIXED.transforms[0],), exclusion_reports=()),  # the list, unused
    ),
    ("MP005", "error", with_step(0, name="dedupe-v1", version="v1", counts={"removed": 3})),
    ("MP008", "error", with_(reviewer_status=None)),
    ("MP008", "error", with_(reviewer_status="never_reviewed")),
    ("MP009", "error", with_(reviewer_status="accepted_with_limits")),
    ("MP010", "error", with_(record_root=None)),
    ("MP011", "warning", with_(sha256="4d81c0ee...")),
    ("MP011", "warning", with_(sha256=str(D1))),  # a full digest, but of no named file
    ("MP012", "error", with_source(0, review_status="quarantined")),
    ("MP012", "error", with_source(1, review_status="rejected")),
    ("MP012", "error", with_(reviewer_status="quarantined")),
]


def test_the_fixed_manifest_is_clean() -> None:
    assert lint(FIXED) == []
    fixed = FIXED.model_copy(update={"limits": ("English only",)})
    assert lint(fixed.model_copy(update={"reviewer_status": "accepted_with_limits"})) == []


@pytest.mark.parametrize(("rule", "severity", "breaks"), BREAKS)
def test_each_rule_fires_on_its_break(
    rule: str, severity: str, breaks: Callable[[Manifest], Manifest]
) -> None:
    found = [f for f in lint(breaks(FIXED)) if f.rule == rule]
    assert found, f"{rule} did not fire"
    assert {f.severity for f in found} == {severity}
    assert all(f.message and f.hint and f.name == RULES[rule].name for f in found)
    assert lint(FIXED, rules=[RULES[rule]]) == []


def test_every_rule_is_tested_and_documented() -> None:
    tested = {r for r, _, _ in BREAKS} | {"MP006", "MP007", "MP010", "MP012", "MP013"}
    assert tested == set(RULES) == {f"MP{i:03d}" for i in range(1, 14)}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f"| {rule.id} | {rule.name} | {rule.severity} |" in readme


def test_rules_compose() -> None:
    broken = with_(reviewer_status=None, record_root=None)(FIXED)
    both = all_of(RULES["MP008"], all_of(RULES["MP010"]))
    assert ids(both.run(broken, None, None)) == ["MP008", "MP010"]
    assert ids(lint(broken, rules=[RULES["MP010"]])) == ["MP010"]
    assert has_errors(lint(broken)) and not has_errors(lint(FIXED))


# -- bytes on disk ---------------------------------------------------------------------------


def test_mp010_byte_drift_of_a_named_file_and_mp011_when_it_is_not_here(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("one\n")
    good = Digest.of_bytes(b"one\n")
    named = FIXED.model_copy(update={"data_file": "train.jsonl", "sha256": good})
    assert lint(named, base=tmp_path) == []
    assert lint(named.model_copy(update={"sha256": good.hex[:8] + "..."}), base=tmp_path) == []
    data.write_text("two\n")
    [drift] = lint(named, base=tmp_path)
    assert (drift.rule, drift.severity) == ("MP010", "error") and "byte drift" in drift.message
    data.unlink()
    assert ids(lint(named, base=tmp_path)) == ["MP011"]  # cannot be checked: not an error
    report = FIXED.model_copy(
        update={"exclusion_reports": (ExclusionReport(file="r.json", digest="abcdef12..."),)}
    )
    (tmp_path / "r.json").write_text("{}")
    assert ids(lint(report, base=tmp_path)) == ["MP010"]


# -- the rules that need the ledger ----------------------------------------------------------


def append(ledger: Ledger, kind: str, payload: dict[str, Any], *parents: Entry) -> Entry:
    event = Event.create(kind, payload, actor=ALICE, parents=[p.digest for p in parents])
    return ledger.append(event)


def source(ledger: Ledger, ref: str, basis: str = "customer-exclusion-log") -> Entry:
    name, _, version = ref.partition("@")
    return append(ledger, "source", {"name": name, "version": version, "rights_basis": basis})


def exclusion(ledger: Ledger, data: Entry, *lists: Entry) -> Entry:
    used = [{"role": "input", "event": data.digest, "name": data.event.name}]
    used += [{"role": "using", "event": x.digest, "name": x.event.name} for x in lists]
    payload = {
        "name": "opt-out-removal-v2",
        "version": "v2",
        "kind": "exclusion",
        "params": {"on": "customer_id"},
        "counts": {"removed": 0},
        "used": used,
    }
    return append(ledger, "transform", payload, data, *lists)


def dataset(ledger: Ledger, step: Entry, *others: Entry) -> Entry:
    payload = {"name": "train", "record_root": D2, "sources": [CHATS, OPTOUT]}
    return append(ledger, "dataset", payload, step, *others)


def test_mp006_an_exclusion_recorded_before_its_opt_out_list(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    chats = source(ledger, CHATS, "internal-use-policy-2026-04")
    early = exclusion(ledger, chats)  # the opt-out list is loaded only afterwards
    listed = source(ledger, OPTOUT)
    train = dataset(ledger, early, listed)
    found = [f for f in lint(from_ledger(ledger, train), ledger) if f.rule == "MP006"]
    assert [f.message for f in found] == [
        f"exclusion step opt-out-removal-v2 used none of the opt-out lists ({OPTOUT})",
        "exclusion step opt-out-removal-v2 was recorded (#1) before the opt-out list "
        f"{OPTOUT} was loaded (#2)",
    ]
    assert "MP006" not in ids(lint(from_ledger(ledger, train)))  # needs the ledger
    assert any(f.gate == "MPG008" and "MP006" in f.message for f in check(ledger, train))
    late = exclusion(ledger, chats, listed)
    fixed = dataset(ledger, late, listed)
    assert "MP006" not in ids(lint(from_ledger(ledger, fixed), ledger))


def test_mp007_an_older_opt_out_list_than_the_newest_recorded(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    chats = source(ledger, CHATS, "internal-use-policy-2026-04")
    listed = source(ledger, OPTOUT)
    train = dataset(ledger, exclusion(ledger, chats, listed), listed)
    assert "MP007" not in ids(lint(from_ledger(ledger, train), ledger))
    source(ledger, "opt-out-list@2026-06-01")
    [stale] = [f for f in lint(from_ledger(ledger, train), ledger) if f.rule == "MP007"]
    assert "opt-out-list@2026-06-01" in stale.message and stale.value == OPTOUT


def test_mp012_a_quarantine_in_the_ledger_overrides_the_manifest(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    source(ledger, CHATS, "internal-use-policy-2026-04")
    claims = with_source(0, review_status="accepted")(FIXED)
    assert "MP012" not in ids(lint(claims, ledger))
    record_quarantine(ledger, CHATS, "opt-out record found", "exclusion evidence attached")
    [held] = [f for f in lint(claims, ledger) if f.rule == "MP012"]
    assert held.message == f"source {CHATS} is quarantined"


def test_mp013_a_build_naming_a_manifest_that_does_not_exist(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    chats = source(ledger, CHATS, "internal-use-policy-2026-04")
    listed = source(ledger, OPTOUT)
    train = dataset(ledger, exclusion(ledger, chats, listed), listed)
    ghost = Digest.of_bytes(b"no such manifest")
    append(ledger, "build", {"name": "support-classifier-v7", "manifest": ghost})
    named = FIXED.model_copy(update={"builds": (BuildRef(name="support-classifier-v7"),)})
    [missing] = [f for f in lint(named, ledger) if f.rule == "MP013"]
    assert ghost.short in missing.message
    assert "MP013" not in ids(lint(named))  # needs the ledger
    unknown = FIXED.model_copy(update={"builds": (BuildRef(event=ghost),)})
    assert "MP013" in ids(lint(unknown, ledger))
    append(ledger, "build", {"name": "support-classifier-v7", "manifest": train.digest})
    assert "MP013" not in ids(lint(named, ledger))


# -- the incident, the gate ------------------------------------------------------------------


def test_the_incident_before_fails_and_after_passes() -> None:
    before = lint(load(FIXTURES / "incident-before.yaml"), base=FIXTURES)
    errors = sorted({f.rule for f in before if f.severity == "error"})
    assert errors == ["MP001", "MP002", "MP003", "MP005", "MP008"]
    after = lint(load(FIXTURES / "incident-after.yaml"), base=FIXTURES)
    assert not has_errors(after)
    assert sorted({f.rule for f in after}) == ["MP004", "MP011"]  # unchecked, not wrong


def test_the_lint_gate_blocks_a_dataset_whose_manifest_has_errors(tmp_path: Path) -> None:
    assert GATES["MPG008"].name == "lint-errors"
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("train", actor=ALICE, repo=tmp_path) as p:
        rows = p.source([{"id": 1, "t": "a"}], "tickets@1", key="id", rights_basis="internal")
        train = p.dataset(p.transform("tidy-v1", lambda r: r, rows), "train")
    record_review(ledger, "tickets@1", "accepted", CAROL)
    [finding] = check(ledger, train)
    assert finding.gate == "MPG008" and "MP001" in finding.message
    assert check(ledger, "tickets@1") == []  # a source has no manifest
    with ledger.pipeline("train", actor=ALICE, repo=tmp_path) as p:
        rows = p.source([{"id": 1, "t": "a"}], "tickets@2", key="id", rights_basis="contract-7")
        fixed = p.dataset(p.transform("tidy-v1", lambda r: r, rows), "train")
    record_review(ledger, "tickets@2", "accepted", CAROL)
    assert check(ledger, fixed) == []  # the step's missing parameters are only a note


# -- SARIF and the commands ------------------------------------------------------------------


def test_sarif_validates_against_the_official_schema_with_line_regions() -> None:
    path = FIXTURES / "incident-before.yaml"
    text = path.read_text(encoding="utf-8")
    findings = lint(load(path), base=FIXTURES)
    log = sarif_log(findings, "tests/manifests/incident-before.yaml", text)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == list(RULES)
    lines = text.splitlines()
    for result in run["results"]:
        region = result["locations"][0]["physicalLocation"]["region"]
        assert result["level"] in ("error", "warning", "note")
        assert 1 <= region["startLine"] <= len(lines)
    by_rule = {r["ruleId"]: r["locations"][0]["physicalLocation"]["region"] for r in run["results"]}
    assert lines[by_rule["MP001"]["startLine"] - 1] == "rights_basis: internal"
    assert lines[by_rule["MP003"]["startLine"] - 1] == "  - normalize"
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif_log([], "mlprov:train"))


def test_the_lint_and_manifest_commands(tmp_path: Path) -> None:
    before, after = FIXTURES / "incident-before.yaml", FIXTURES / "incident-after.yaml"
    failed = mlprov("lint", before, cwd=tmp_path)
    assert failed.returncode == 7, failed.stderr
    assert "ERROR MP001 rights-basis: source support-chat-export has the rights basis" in (
        failed.stdout
    )
    assert "hint: name the policy" in failed.stdout and "fails (5 errors" in failed.stdout
    passed = json.loads(ok(mlprov("lint", after, "--format", "json", cwd=tmp_path)))
    assert passed["ok"] is True and passed["dataset"] == "support-classifier-training"
    assert {f["rule"] for f in passed["findings"]} == {"MP004", "MP011"}
    sarif = mlprov("lint", before, "--format", "sarif", cwd=tmp_path)
    assert sarif.returncode == 7
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(sarif.stdout))
    schema = json.loads(ok(mlprov("manifest", "schema", cwd=tmp_path)))
    assert schema["properties"]["schema_version"]["enum"] == [1, 2]
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("train", actor=ALICE, repo=tmp_path) as p:
        rows = p.source([{"id": 1}], "tickets@1", key="id", rights_basis="contract-7")
        p.dataset(p.transform("tidy-v1", lambda r: r, rows, params={"x": 1}), "train")
    ledger.close()
    shown = json.loads(ok(mlprov("manifest", "show", "train", "--format", "json", cwd=tmp_path)))
    assert shown["dataset"] == "train" and shown["source_records"][0]["ref"] == "tickets@1"
    (tmp_path / "m.yaml").write_text(after.read_text(encoding="utf-8"))
    recorded = json.loads(ok(mlprov("manifest", "record", "m.yaml", "--json", cwd=tmp_path)))
    assert recorded["payload"]["manifest"]["reviewer_status"] == "accepted_with_limits"
    unreviewed = mlprov("lint", "train", cwd=tmp_path)
    assert unreviewed.returncode == 7 and "MP008" in unreviewed.stdout


def test_an_opt_out_list_needs_no_rights_basis() -> None:
    # It is consulted to remove records, not trained on (as triage and audit treat it).
    assert "MP001" not in ids(lint(with_source(1, rights_basis=None)(FIXED)))
