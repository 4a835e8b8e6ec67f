"""The incident triage table, before and after the evidence exists (incident-example.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from mlprov.answers.card import patch_card
from mlprov.answers.explain import build_facts, explain
from mlprov.answers.triage import triage
from mlprov.answers.view import view
from mlprov.digest import Digest
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Entry

ROWS = [{"ticket_id": i, "customer_id": f"c{i}@example.com", "text": f"t{i}"} for i in range(8)]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.init(tmp_path)


def answers(ledger: Ledger, ref: str) -> dict[str, str]:
    return {r.question: r.answer for r in triage(ledger, ref).rows}


def weak(ledger: Ledger) -> Entry:
    """The 'before' story: a source with a vague rights basis, no exclusion, no review."""
    with ledger.pipeline("before") as p:
        chats = p.source(
            pa.Table.from_pylist(ROWS),
            "support-chat-export@2026-05-22",
            key="ticket_id",
            rights_basis="internal",
        )
        chats = p.transform("dedupe-v1", lambda t: t, chats)
        dataset = p.dataset(chats, "support-classifier-training")
    ledger.build("support-classifier-v7", dataset=dataset, gates=())
    return dataset


def repaired(ledger: Ledger, tmp_path: Path) -> Entry:
    with ledger.pipeline("after") as p:
        chats = p.source(
            pa.Table.from_pylist(ROWS),
            "support-chat-export@2026-05-23",
            key="ticket_id",
            subject="customer_id",
            rights_basis="internal-use-policy-2026-04",
        )
        optout = p.source(
            pa.table({"customer_id": ["c3@example.com"]}),
            "opt-out-list@2026-05-22",
            subject="customer_id",
            rights_basis="customer-exclusion-log",
        )
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        dataset = p.dataset(chats, "support-classifier-training")
    for source in ("support-chat-export@2026-05-23", "opt-out-list@2026-05-22"):
        record_review(ledger, source, "accepted", "carol@example.com")
    record_review(
        ledger,
        dataset,
        "accepted_with_limits",
        "dana@example.com",
        limits=["English only"],
        risks=["legacy tickets before consent-policy migration"],
    )
    (tmp_path / "model.bin").write_bytes(b"\x01" * 64)
    ledger.build(
        "support-classifier-v8",
        dataset=dataset,
        config={"epochs": 3},
        artifact=tmp_path / "model.bin",
        code_version="abc123",
        eval_set=dataset,
    )
    return dataset


def test_before_the_evidence_exists_the_answers_are_unknown(ledger: Ledger) -> None:
    weak(ledger)
    got = answers(ledger, "support-classifier-v7")
    assert got == {
        "Did the final file change?": "no",
        "Was the source allowed?": "unknown",
        "Did exclusion run?": "unknown",
        "Who approved the manifest?": "unknown",
        "Can the model build be explained?": "partially",
    }
    rows = {r.question: r for r in triage(ledger, "support-classifier-v7").rows}
    assert "never_reviewed" in rows["Was the source allowed?"].evidence
    assert "rights basis internal" in rows["Was the source allowed?"].evidence
    assert "training config" in rows["Can the model build be explained?"].risk


def test_after_the_repair_every_answer_rests_on_evidence(ledger: Ledger, tmp_path: Path) -> None:
    repaired(ledger, tmp_path)
    got = answers(ledger, "support-classifier-v8")
    assert got == {
        "Did the final file change?": "no",
        "Was the source allowed?": "yes",
        "Did exclusion run?": "yes",
        "Who approved the manifest?": "yes",
        "Can the model build be explained?": "yes",
    }
    rows = {r.question: r for r in triage(ledger, "support-classifier-training").rows}
    assert "removed 1 using opt-out-list@2026-05-22" in rows["Did exclusion run?"].evidence
    assert "dana@example.com: accepted_with_limits" in rows["Who approved the manifest?"].evidence
    assert "legacy tickets" in rows["Who approved the manifest?"].risk


def test_an_older_opt_out_list_and_an_altered_set_are_caught(
    ledger: Ledger, tmp_path: Path
) -> None:
    dataset = repaired(ledger, tmp_path)
    with ledger.pipeline("newer-list") as p:
        p.source(
            pa.table({"customer_id": ["c3@example.com", "c5@example.com"]}),
            "opt-out-list@2026-06-01",
            subject="customer_id",
        )
    got = answers(ledger, "support-classifier-v8")
    assert got["Did exclusion run?"] == "partially"
    path = ledger.blobs_dir / f"{Digest(dataset.event.payload['record_root']).hex}.parquet"
    path.write_bytes(path.read_bytes()[:-64] + bytes(64))
    assert answers(ledger, "support-classifier-v8")["Did the final file change?"] == "yes"
    path.unlink()
    assert answers(ledger, "support-classifier-v8")["Did the final file change?"] == "unknown"


def test_an_opt_out_list_that_no_step_used_means_exclusion_did_not_run(ledger: Ledger) -> None:
    with ledger.pipeline("no-removal") as p:
        chats = p.source(pa.Table.from_pylist(ROWS), "chats@1", key="ticket_id")
        p.source(pa.table({"customer_id": ["c1@example.com"]}), "opt-out-list@1")
        p.dataset(chats, "train")
    assert answers(ledger, "train")["Did exclusion run?"] == "no"
    assert answers(ledger, "train")["Can the model build be explained?"] == "unknown"


def test_the_triage_command(ledger: Ledger, tmp_path: Path) -> None:
    import json

    from tests.test_cli import mlprov, ok

    weak(ledger)
    shown = json.loads(ok(mlprov("triage", "support-classifier-v7", "--json", cwd=tmp_path)))
    assert [r["answer"] for r in shown["rows"]] == [
        "no",
        "unknown",
        "unknown",
        "unknown",
        "partially",
    ]
    text = ok(mlprov("triage", "support-classifier-v7", cwd=tmp_path))
    assert "Who approved the manifest?" in text and "never reviewed" in text
    missing = mlprov("triage", "no-such-model", cwd=tmp_path)
    assert missing.returncode == 3


def _agree(ledger: Ledger, build: str) -> None:
    """Triage, the postmortem sentence and the model card say the same of one build."""
    rows = {r.question: r for r in triage(ledger, build).rows}
    facts = build_facts(ledger, build)
    said = explain(ledger, build).sentence
    card = patch_card("", facts)
    approved = rows["Who approved the manifest?"]
    status = facts.reviewer_status
    assert f"reviewer status {status}" in said
    assert f'reviewer_status: "{status}"' in card
    assert status in approved.evidence
    for risk in facts.risks:
        assert risk in approved.risk and risk in card
        assert risk in rows["Was the source allowed?"].risk or facts.approval.basis == "dataset"
    for reviewer in facts.approval.reviewers if facts.approval else ():
        assert reviewer in approved.evidence and reviewer in card
    shown = json.loads(json.dumps(view(ledger, build).to_json()))  # what a page would read
    assert shown["approval_at_build"]["status"] == status
    assert shown["approval_at_build"]["risks"] == list(facts.risks)
    own = facts.approval is not None and facts.approval.basis == "dataset"
    assert ("never reviewed" in approved.evidence) == (not own)
    assert ("the dataset itself was never reviewed" in said) == (
        not own and status != "never_reviewed"
    )


def test_triage_explain_and_card_agree_on_review_risks_and_approver(
    ledger: Ledger, tmp_path: Path
) -> None:
    # v7: the dataset itself is never reviewed; its sources are, one with a risk
    with ledger.pipeline("v7") as p:
        chats = p.source(
            pa.Table.from_pylist(ROWS),
            "support-chat-export@2026-05-22",
            key="ticket_id",
            rights_basis="customer-terms-2024-17",
        )
        dataset = p.dataset(chats, "support-classifier-training", version="v7")
    record_review(
        ledger,
        "support-chat-export@2026-05-22",
        "accepted_with_limits",
        "carol@example.com",
        limits=["English tickets only"],
        risks=["legacy tickets before consent-policy migration"],
    )
    ledger.build("support-classifier-v7", dataset=dataset, gates=())
    rows = {r.question: r for r in triage(ledger, "support-classifier-v7").rows}
    assert rows["Who approved the manifest?"].answer == "partially"
    assert "legacy tickets" in rows["Was the source allowed?"].risk
    _agree(ledger, "support-classifier-v7")
    # v8: the dataset's own review decides, at build time; a later review changes "now" only
    repaired(ledger, tmp_path)
    _agree(ledger, "support-classifier-v8")
    record_review(ledger, "support-classifier-training", "accepted", "erin@example.com")
    _agree(ledger, "support-classifier-v8")
    row = {r.question: r for r in triage(ledger, "support-classifier-v8").rows}
    assert "now accepted" in row["Who approved the manifest?"].evidence
