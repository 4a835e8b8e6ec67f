"""The postmortem sentence of a build (incident-example.md, "the closing sentence"), from a
real ledger: every part computed, and missing evidence said rather than left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mlprov.answers.explain import BuildFacts, build_facts, explain, sentence
from mlprov.cli.card import register
from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_release, record_review
from mlprov.ledger import Entry

CHATS = "support-chat-export@2026-05-22"
OPTOUT = "opt-out-list@2026-05-22"
RISKS = ["non-English coverage gap", "legacy tickets before consent-policy migration"]
TICKETS = [
    {"ticket_id": 1, "customer_id": "ann@example.com", "text": "  My invoice is WRONG "},
    {"ticket_id": 2, "customer_id": "bob@example.com", "text": "mail me at bob@example.com"},
    {"ticket_id": 3, "customer_id": "cat@example.com", "text": "refund please"},
    {"ticket_id": 4, "customer_id": "dan@example.com", "text": "Refund please"},
]


def lower(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{**r, "text": " ".join(str(r["text"]).split()).lower()} for r in rows]


def redact(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{**r, "text": str(r["text"]).replace("bob@example.com", "[email]")} for r in rows]


def dedupe(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    first = {str(r["text"]): r for r in reversed(rows)}
    return [r for r in rows if first[str(r["text"])] is r]


def incident(ledger: Ledger) -> Entry:
    """The repaired story: two sources, four steps, a quarantine lifted with evidence, a
    dataset accepted with limits and two risks, and the build."""
    with ledger.pipeline("support-classifier-training") as p:
        chats = p.source(
            TICKETS,
            CHATS,
            key="ticket_id",
            subject="customer_id",
            rights_basis="internal-use-policy-2026-04",
            license="LicenseRef-proprietary",
        )
        optout = p.source(
            [{"customer_id": "ann@example.com"}],
            OPTOUT,
            subject="customer_id",
            rights_basis="customer-exclusion-log",
        )
        chats = p.transform("normalize-v1", lower, chats, params={"case": "lower"})
        chats = p.transform("pii-redaction-v3", redact, chats, params={"patterns": ["email"]})
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        chats = p.transform("dedupe-v2", dedupe, chats, params={"threshold": 0.84})
        dataset = p.dataset(chats, "support-classifier-training")
    held = record_quarantine(
        ledger,
        CHATS,
        "opt-out record found in model-review sample",
        "opt-out-removal evidence and reviewer status attached",
        blocked_use=["training", "benchmark-publication"],
        allowed_use=["incident-reproduction"],
    )
    evidence = record_review(
        ledger, CHATS, "accepted_with_limits", "carol@example.com", limits=["English only"]
    )
    record_release(ledger, CHATS, [evidence], note="exclusion re-run", actor=None)
    assert held.seq < evidence.seq
    record_review(ledger, OPTOUT, "accepted", "carol@example.com")
    record_review(
        ledger,
        dataset,
        "accepted_with_limits",
        "dana@example.com",
        limits=["English tickets only"],
        risks=RISKS,
    )
    return ledger.build("support-classifier-v7", dataset=dataset, code_version="abc123")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.init(tmp_path)


def test_the_closing_sentence_of_the_incident(ledger: Ledger) -> None:
    build = incident(ledger)
    short = Digest(build.event.payload["manifest_digest"]).short
    assert explain(ledger, "support-classifier-v7").sentence == (
        f"Model support-classifier-v7 trained on manifest {short}, built from "
        "support-chat-export@2026-05-22 and opt-out-list@2026-05-22, after normalize-v1, "
        "pii-redaction-v3, opt-out-removal-v2 and dedupe-v2, with reviewer status "
        "accepted_with_limits and two unresolved risks."
    )
    assert explain(ledger, build.digest).sentence == explain(ledger, build).sentence


def test_the_sentence_states_the_build_time_manifest_not_today_s(ledger: Ledger) -> None:
    build = incident(ledger)
    before = explain(ledger, build).sentence
    # After the build the source is quarantined again and the dataset rejected: the
    # sentence still says what the build was allowed on.
    record_quarantine(ledger, CHATS, "second complaint", "a new exclusion run")
    record_review(ledger, "support-classifier-training", "rejected", "erin@example.com")
    assert explain(ledger, build).sentence == before
    moves = build_facts(ledger, build).quarantines
    assert [(m.kind, m.after_build) for m in moves] == [
        ("quarantine", False),
        ("release", False),
        ("quarantine", True),
    ]


def test_missing_evidence_is_said(ledger: Ledger) -> None:
    with ledger.pipeline("weak") as p:
        chats = p.source(TICKETS, "chats@1", key="ticket_id", rights_basis="internal")
        dataset = p.dataset(chats, "weak-set")
    weak = ledger.build("weak-model", dataset=dataset, gates=(), code_version="abc")
    short = Digest(weak.event.payload["manifest_digest"]).short
    assert explain(ledger, weak).sentence == (
        f"Model weak-model trained on manifest {short}, built from chats@1, with no recorded "
        "transforms, with reviewer status never_reviewed and no unresolved risks."
    )
    # A build recorded by hand, before manifests were frozen: today's manifest, said so.
    legacy = ledger.record(
        "build", {"name": "legacy-model", "dataset": dataset.digest}, parents=[dataset.digest]
    )
    facts = build_facts(ledger, legacy)
    assert facts.basis == "not_frozen" and facts.manifest_digest is None
    assert explain(ledger, "legacy-model").sentence == (
        "Model legacy-model trained on no recorded manifest, built (per the dataset's current "
        "manifest) from chats@1, with no recorded transforms, with reviewer status "
        "never_reviewed and no unresolved risks."
    )
    bare = ledger.record("build", {"name": "bare-model"})
    assert build_facts(ledger, bare).basis == "no_dataset"
    assert explain(ledger, bare).sentence == (
        "Model bare-model trained on no recorded manifest, built from no recorded sources, "
        "with no recorded transforms, with reviewer status never_reviewed and no unresolved "
        "risks."
    )


def test_a_missing_frozen_file_is_said_and_an_altered_one_refused(ledger: Ledger) -> None:
    build = incident(ledger)
    digest = Digest(build.event.payload["manifest_digest"])
    path = ledger.blobs_dir / f"{digest.hex}.manifest.json"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"accepted_with_limits", b"accepted", 1))
    with pytest.raises(IntegrityError, match="does not match its digest"):
        explain(ledger, build)
    path.unlink()
    facts = build_facts(ledger, build)
    assert facts.basis == "frozen_file_missing" and facts.manifest is not None
    assert explain(ledger, build).sentence.startswith(
        f"Model support-classifier-v7 trained on manifest {digest.short}, whose frozen file is "
        "missing, built (per the dataset's current manifest) from support-chat-export@"
    )


@pytest.mark.parametrize(
    ("count", "words"),
    [
        (0, "no unresolved risks"),
        (1, "one unresolved risk"),
        (2, "two unresolved risks"),
        (10, "ten unresolved risks"),
        (11, "11 unresolved risks"),
    ],
)
def test_numbers_are_words_up_to_ten(ledger: Ledger, count: int, words: str) -> None:
    facts = build_facts(ledger, incident(ledger))
    assert facts.manifest is not None
    risks = tuple(f"risk {i}" for i in range(count))
    changed = BuildFacts(
        facts.build,
        facts.build_event,
        facts.manifest_digest,
        facts.basis,
        facts.manifest.model_copy(update={"unresolved_risks": risks}),
    )
    assert sentence(changed).endswith(f"accepted_with_limits and {words}.")


def test_only_a_recorded_build_is_explained(ledger: Ledger) -> None:
    incident(ledger)
    with pytest.raises(NotFoundError, match="no build support-classifier-v9 in this ledger"):
        explain(ledger, "support-classifier-v9")
    with pytest.raises(InputError, match="not a build"):
        explain(ledger, "support-classifier-training")


def test_the_explain_command(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    build = incident(ledger)
    monkeypatch.chdir(ledger.blobs_dir.parent.parent)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    text = runner.invoke(app, ["explain", "support-classifier-v7"], env={"COLUMNS": "80"})
    assert text.exit_code == 0, text.output
    # the sentence, wrapped to the terminal at spaces only
    assert text.stdout.split() == explain(ledger, build).sentence.split()
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    found = runner.invoke(app, ["explain", build.digest.hex[:12], "--json"])
    assert found.exit_code == 0, found.output
    got = json.loads(found.stdout)
    assert got["sentence"] == explain(ledger, build).sentence
    facts = got["facts"]
    assert facts["training_manifest"] == build.event.payload["manifest_digest"]
    assert facts["manifest_basis"] == "frozen"
    assert facts["sources"] == [CHATS, OPTOUT]
    assert facts["transforms"] == [
        "normalize-v1",
        "pii-redaction-v3",
        "opt-out-removal-v2",
        "dedupe-v2",
    ]
    assert facts["reviewer_status"] == "accepted_with_limits"
    assert facts["unresolved_risks"] == RISKS
    assert [q["kind"] for q in facts["quarantines"]] == ["quarantine", "release"]
    missing = runner.invoke(app, ["explain", "nope"])
    assert isinstance(missing.exception, NotFoundError) and missing.exception.exit_code == 3
