"""The ledger audit: an empty ledger, a healthy one, and each finding triggered on its own,
on real ledgers; its JSON, its HTML page and its command."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
import typer
from tests.conftest import sql_engine
from typer.testing import CliRunner

from mlprov.answers.audit import CHECKS, Audit, Finding, audit
from mlprov.answers.audit.html import render_html
from mlprov.cli.audit import register
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_review
from mlprov.ledger import Entry

ROWS = [{"ticket_id": i, "customer_id": f"c{i}@example.com", "text": f"t{i}"} for i in range(6)]
CHATS = "support-chat-export@2026-05-22"
OPTOUT = "opt-out-list@2026-05-22"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.init(tmp_path) as led:
        yield led


def healthy(ledger: Ledger) -> Entry:
    """Reviewed sources with specific rights, an exclusion, a frozen-manifest build, and a
    checkpoint over everything."""
    with ledger.pipeline("train", checkpoint=False) as p:
        chats = p.source(
            pa.Table.from_pylist(ROWS),
            CHATS,
            key="ticket_id",
            subject="customer_id",
            rights_basis="contract-2024-17 §4",
        )
        optout = p.source(
            pa.table({"customer_id": ["c3@example.com"]}),
            OPTOUT,
            subject="customer_id",
            rights_basis="customer-exclusion-log",  # lint's MP001 asks it of lists too
        )
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        dataset = p.dataset(chats, "support-classifier-training")
    for source in (CHATS, OPTOUT):
        record_review(ledger, source, "accepted", "carol@example.com")
    ledger.build("support-classifier-v8", dataset=dataset, code_version="abc123")
    ledger.checkpoint()
    return dataset


def found(result: Audit, check: str, subject: str | None = None) -> list[Finding]:
    """The findings of `check` (on `subject`, by name); there must be at least one."""
    hits = [
        f
        for f in result.findings
        if f.id == check and (subject is None or f.subject.name == subject)
    ]
    assert hits, f"no {check} finding on {subject}: {[str(f.subject) for f in result.findings]}"
    return hits


def ids(result: Audit) -> set[str]:
    return {f.id for f in result.findings}


# -- the whole ledger --------------------------------------------------------------------


def test_an_empty_ledger_has_nothing_to_report(ledger: Ledger) -> None:
    result = audit(ledger)
    assert result.ok and result.findings == ()
    s = result.summary
    assert (s.size, s.sources, s.datasets, s.builds) == (0, 0, 0, 0)
    assert s.source_score is None and s.build_score is None and s.verified and s.read_whole
    assert set(s.events.values()) == {0}
    assert result.to_json()["counts"] == {"error": 0, "warning": 0, "info": 0}


def test_a_healthy_ledger_passes(ledger: Ledger) -> None:
    healthy(ledger)
    calls: list[tuple[int, int]] = []
    result = audit(ledger, progress=lambda done, total: calls.append((done, total)))
    assert result.ok, [str(f.subject) + ": " + f.message for f in result.findings]
    assert result.count("error") == 0 and result.count("warning") == 0
    s = result.summary
    assert (s.sources, s.sources_complete, s.source_score) == (2, 2, 1.0)
    assert (s.datasets, s.builds, s.builds_frozen, s.build_score) == (1, 1, 1, 1.0)
    assert s.covered == s.size == sum(s.events.values())
    assert s.events["review"] == 2 and s.events["run"] == 2 and s.events["prediction"] == 0
    assert calls and calls[-1] == (s.size, s.size)


# -- each finding on its own ---------------------------------------------------------------


def test_a_source_without_rights_basis(ledger: Ledger) -> None:
    healthy(ledger)
    ledger.record("source", {"name": "web-crawl", "version": "1"})
    result = audit(ledger)
    assert found(result, "AU001", "web-crawl@1")[0].severity == "error"
    assert not result.ok and result.summary.sources_complete == 2
    assert "AU001" not in {f.id for f in result.findings if f.subject.name == OPTOUT}


def test_a_vague_rights_basis(ledger: Ledger) -> None:
    ledger.record("source", {"name": "chats", "version": "1", "rights_basis": "internal"})
    record_review(ledger, "chats@1", "accepted", "carol@example.com")
    result = audit(ledger)
    (hit,) = found(result, "AU002", "chats@1")
    assert "'internal'" in hit.message and "AU001" not in ids(result)
    assert result.summary.sources_complete == 0  # accepted, but on a vague basis


def test_never_reviewed_and_an_opt_out_list_needs_no_rights_basis(ledger: Ledger) -> None:
    ledger.record("source", {"name": "chats", "version": "1", "rights_basis": "contract-17"})
    ledger.record("source", {"name": "opt-out-list", "version": "1"})
    result = audit(ledger)
    assert found(result, "AU003", "chats@1")[0].message == "the source was never reviewed"
    assert "opt-out list" in found(result, "AU003", "opt-out-list@1")[0].message
    assert "AU001" not in ids(result) and "AU002" not in ids(result)
    record_quarantine(ledger, "chats@1", "complaint", "a review")
    result = audit(ledger)  # a quarantine is not a review
    assert found(result, "AU003", "chats@1") and found(result, "AU004", "chats@1")


def test_an_open_quarantine_shows_trigger_uses_exit_and_since(ledger: Ledger) -> None:
    healthy(ledger)
    held = record_quarantine(
        ledger,
        CHATS,
        "opt-out record found in a sample",
        "opt-out removal evidence attached",
        blocked_use=("training",),
        allowed_use=("incident-reproduction",),
    )
    (hit,) = found(audit(ledger), "AU004", CHATS)
    facts = dict(hit.facts)
    assert hit.severity == "warning"
    assert facts["trigger"] == "opt-out record found in a sample"
    assert facts["blocked uses"] == "training"
    assert facts["allowed uses"] == "incident-reproduction"
    assert facts["exit condition"] == "opt-out removal evidence attached"
    assert facts["since"] == held.event.recorded_at and facts["quarantine"] == held.digest
    assert hit.subject.digest is not None and hit.subject.type == "source"


def test_a_rejected_source_still_used_by_a_dataset(ledger: Ledger) -> None:
    healthy(ledger)
    record_review(ledger, CHATS, "rejected", "dana@example.com")
    result = audit(ledger)
    (hit,) = found(result, "AU005", CHATS)
    assert "support-classifier-training" in hit.message
    assert "AU003" not in ids(result)  # a rejection is a review


def test_a_dataset_failing_lint(ledger: Ledger) -> None:
    healthy(ledger)
    ledger.record("dataset", {"name": "hand-made"})
    (hit,) = found(audit(ledger), "AU006", "hand-made")
    assert hit.message.startswith("the manifest fails lint with ") and "MP002" in dict(hit.facts)
    assert "MP002" not in hit.message  # the rule is named once, beside its message
    assert "mlprov lint" in hit.hint
    ledger.record("dataset", {"name": "garbled", "manifest": {"dataset": 5}})
    (hit,) = found(audit(ledger), "AU006", "garbled")
    assert hit.message.startswith("its manifest cannot be read: dataset garbled")
    assert "holds a malformed manifest" in hit.message


def test_a_superseded_dataset_is_not_linted_unless_a_build_used_it(ledger: Ledger) -> None:
    ledger.record("dataset", {"name": "scratch"})
    ledger.record("source", {"name": "s", "version": "1", "rights_basis": "contract-17"})
    newer = ledger.record("dataset", {"name": "scratch", "sources": ["s@1"]})
    result = audit(ledger)
    assert [f.subject.digest for f in result.findings if f.id == "AU006"] == [newer.digest]


def test_a_version_a_later_build_superseded_is_not_linted(ledger: Ledger) -> None:
    old = ledger.record("dataset", {"name": "scratch"})
    ledger.record("build", {"name": "m-v1", "dataset": str(old.digest)}, parents=[old.digest])
    assert [f.subject.digest for f in audit(ledger).findings if f.id == "AU006"] == [old.digest]
    newer = ledger.record("dataset", {"name": "scratch"})
    assert {f.subject.digest for f in audit(ledger).findings if f.id == "AU006"} == {
        old.digest,
        newer.digest,
    }  # the old one is still the one a build was last recorded on
    ledger.record("build", {"name": "m-v2", "dataset": str(newer.digest)}, parents=[newer.digest])
    assert [f.subject.digest for f in audit(ledger).findings if f.id == "AU006"] == [newer.digest]


def test_a_build_recorded_by_hand_has_no_dataset_and_no_manifest(ledger: Ledger) -> None:
    healthy(ledger)
    ledger.record("build", {"name": "x"})
    result = audit(ledger)
    assert found(result, "AU007", "x")[0].message == "the build names no dataset"
    assert found(result, "AU008", "x")
    assert (result.summary.builds, result.summary.builds_frozen) == (2, 1)
    assert result.summary.build_score == 0.5


def test_a_missing_and_an_altered_frozen_manifest(ledger: Ledger) -> None:
    healthy(ledger)
    (frozen,) = ledger.blobs_dir.glob("*.manifest.json")
    frozen.write_bytes(frozen.read_bytes() + b" ")
    assert "does not match its digest" in found(audit(ledger), "AU010")[0].message
    frozen.unlink()
    result = audit(ledger)
    assert found(result, "AU009", "support-classifier-v8") and "AU010" not in ids(result)
    assert result.summary.builds_frozen == 0


def test_a_forced_build(ledger: Ledger) -> None:
    dataset = healthy(ledger)
    ledger.build(
        "forced-v1",
        dataset=dataset,
        code_version="abc123",
        gates=[lambda _ledger, _entry: ["legal hold on chats"]],
        force=True,
    )
    (hit,) = found(audit(ledger), "AU011", "forced-v1")
    assert hit.severity == "warning" and dict(hit.facts) == {
        "gate finding 1": "legal hold on chats"
    }


def test_a_run_that_never_closed(ledger: Ledger) -> None:
    healthy(ledger)
    start = {"name": "nightly", "run_id": "0123456789abcdef", "status": "started"}
    ledger.record("run", start)
    closed = {**start, "run_id": "fedcba9876543210"}
    ledger.record("run", closed)
    ledger.record("run", {**closed, "status": "succeeded"})
    result = audit(ledger)
    (hit,) = found(result, "AU012", "nightly")
    assert "0123456789abcdef" in hit.message


def test_a_failed_step(ledger: Ledger) -> None:
    def boom(_table: pa.Table) -> pa.Table:
        raise ValueError("tokenizer crashed")

    with pytest.raises(ValueError), ledger.pipeline("broken", checkpoint=False) as p:
        chats = p.source(pa.Table.from_pylist(ROWS), CHATS, key="ticket_id", rights_basis="c-1")
        p.transform("tokenize-v1", boom, chats)
    result = audit(ledger)
    (hit,) = found(result, "AU013", "tokenize-v1")
    assert hit.severity == "info" and "tokenizer crashed" in hit.message
    assert "AU012" not in ids(result)  # the run closed, as failed


def test_events_no_checkpoint_covers(ledger: Ledger) -> None:
    healthy(ledger)
    newest = ledger.record("source", {"name": "late", "version": "1", "rights_basis": "c-9"})
    (hit,) = found(audit(ledger), "AU014")
    assert hit.subject.digest == newest.digest and "1 of" in hit.message


def test_a_ledger_without_any_checkpoint(ledger: Ledger) -> None:
    ledger.record("source", {"name": "s", "version": "1", "rights_basis": "contract-17"})
    assert "no checkpoint" in found(audit(ledger), "AU014")[0].message


def _sql(ledger: Ledger, statement: str, **params: object) -> None:
    with sql_engine(ledger).begin() as conn:
        conn.execute(sa.text(statement), params)


def test_a_tampered_row_fails_verification(ledger: Ledger) -> None:
    healthy(ledger)
    _sql(ledger, "UPDATE mlprov_events SET name = 'other@1' WHERE seq = 1")
    result = audit(ledger)
    hits = found(result, "AU015", "event at position 1")
    assert hits[0].severity == "error" and hits[0].message.startswith("index:")
    assert not result.ok and not result.summary.verified and result.summary.read_whole


def test_a_damaged_body_is_a_finding_not_a_crash(ledger: Ledger) -> None:
    healthy(ledger)
    _sql(ledger, "UPDATE mlprov_events SET body = :b WHERE seq = 1", b=b"not json")
    result = audit(ledger)
    assert any("cannot be read" in f.message for f in found(result, "AU015"))
    assert not result.summary.read_whole and not result.ok


def test_every_check_is_exercised_by_a_test() -> None:
    source = Path(__file__).read_text()
    exercised = set(re.findall(r'\bfound\([^"\n]*"(AU\d{3})"', source))
    assert exercised == set(CHECKS)


# -- formats -------------------------------------------------------------------------------


def test_json_round_trips_through_json(ledger: Ledger) -> None:
    healthy(ledger)
    ledger.record("build", {"name": "x"})
    data = json.loads(json.dumps(audit(ledger).to_json()))
    assert data["ok"] is False and data["counts"]["error"] == 2
    first = data["findings"][0]
    assert set(first) == {"id", "name", "severity", "subject", "message", "hint", "facts"}
    assert first["subject"]["name"] == "x" and first["subject"]["type"] == "build"
    assert data["summary"]["build_score"] == 0.5


class _Page(HTMLParser):
    """Checks that every element opened is closed in order, and keeps the text."""

    VOID = frozenset({"meta", "br", "link", "img", "hr", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [v or "" for _, v in attrs]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_page_is_self_contained_and_escaped(ledger: Ledger) -> None:
    healthy(ledger)
    ledger.record("source", {"name": "evil", "version": "<script>alert(1)</script>"})
    record_quarantine(ledger, CHATS, "<img src=x onerror=alert(1)>", "a <b>release</b>")
    result = audit(ledger)
    page = render_html(result)
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [] and {"html", "head", "style", "body", "table"} <= parser.tags
    assert "<script" not in page.lower() and "<img" not in page
    assert "http://" not in page and "https://" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not parser.tags & {"script", "link", "img", "iframe", "object"}
    assert not any(a.startswith(("http", "//", "javascript:")) for a in parser.attrs)
    text = "".join(parser.text)
    for f in result.findings:
        assert f.message in text and f.id in text and f.subject.name in text
    assert "evil@<script>alert(1)</script>" in text  # shown literally, as text


def test_the_html_page_of_an_empty_ledger(ledger: Ledger) -> None:
    page = render_html(audit(ledger))
    assert "no findings" in page and "passes" in page


# -- the command ---------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A group, so that `audit` is a subcommand as in mlprov."""

    register(app)
    return app


def test_the_command_passes_a_healthy_ledger(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy(ledger)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(_app(), ["audit"])
    assert done.exit_code == 0, done.output
    assert "passes (0 errors, 0 warnings, 0 info)" in done.output
    assert "sources      2, 2 with a rights basis and an accepting review (100%)" in done.output
    data = json.loads(CliRunner().invoke(_app(), ["audit", "--json"]).stdout)
    assert data["ok"] is True and data["findings"] == []


def test_the_command_exits_7_on_an_error_and_writes_html(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy(ledger)
    ledger.record("build", {"name": "x"})
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "audit.html"
    done = CliRunner().invoke(_app(), ["audit", "--html", str(page)])
    assert done.exit_code == 7, done.output
    assert "AU007" in done.output and "fails (2 errors, 1 warning, 0 info)" in done.output
    assert "the build names no dataset" in page.read_text()
    data = json.loads(CliRunner().invoke(_app(), ["audit", "--json"]).stdout)
    assert data["ok"] is False and {f["id"] for f in data["findings"]} >= {"AU007", "AU008"}
