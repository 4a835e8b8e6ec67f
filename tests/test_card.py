"""The model card patch: mlprov's metadata key and provenance section set in place, every
other byte kept, idempotent, and read back by the real `huggingface_hub.ModelCard`."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from huggingface_hub import ModelCard
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.test_explain import CHATS, OPTOUT, RISKS, incident
from typer.testing import CliRunner

from mlprov.answers.card import END, START, patch_card, searchable_line, write_card
from mlprov.answers.explain import BuildFacts, build_facts
from mlprov.cli.card import register
from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine
from mlprov.ledger import Entry

FRONT = """\
---
# a comment the team keeps
license:   apache-2.0
tags:
- text-classification
-   support     # odd spacing, kept
language: [en,  de]
model-index:
  - name: support-classifier-v7
    results: []

---
"""
BODY = """
# support-classifier-v7

A  classifier   for support tickets.\tTabs stay.

```text
<!-- mlprov:provenance:start -->
an example of the markers, inside a code block: not the section
<!-- mlprov:provenance:end -->
```
"""


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, Entry]]:
    with Ledger.init(tmp_path_factory.mktemp("card")) as ledger:
        yield ledger, incident(ledger)


@pytest.fixture(scope="module")
def facts(story: tuple[Ledger, Entry]) -> BuildFacts:
    return build_facts(*story)


def parts(facts: BuildFacts) -> tuple[str, str]:
    """mlprov's metadata key and its section (with the line break after it), as a new card
    holds them."""
    empty = patch_card("", facts)
    assert empty.startswith("---\nmlprov:\n")
    return empty[4 : empty.index("\n---\n")], empty[empty.index("\n---\n") + 5 :]


def test_a_new_card_is_read_back_by_the_hub(facts: BuildFacts) -> None:
    text = patch_card("", facts)
    card = ModelCard(text)
    assert card.data.to_dict() == {"mlprov": facts.metadata()}
    assert card.data.to_dict()["mlprov"] == {
        "training_manifest": facts.manifest_digest,
        "build": "support-classifier-v7",
        "build_event": facts.build_event,
        "reviewer_status": "accepted_with_limits",
        "unresolved_risks": RISKS,
        "sources": [CHATS, OPTOUT],
    }
    assert card.text.startswith(START + "\n") and card.text.endswith(END + "\n")
    assert facts.manifest_digest is not None
    line = (
        f"training_manifest={facts.manifest_digest}; "  # whole: it is searched for
        "reviewer_status=accepted_with_limits; unresolved_risks=non-English coverage gap, "
        "legacy tickets before consent-policy migration"
    )
    assert searchable_line(facts) == line
    assert line in card.text.splitlines()
    assert patch_card(text, facts) == text


def test_the_section_lists_the_provenance(story: tuple[Ledger, Entry], facts: BuildFacts) -> None:
    ledger, _ = story
    lines = patch_card("", facts).splitlines()
    manifest = f"- Training manifest: `{facts.manifest_digest}`, frozen when the build was recorded"
    assert manifest in lines
    assert (
        f"| `{CHATS}` | internal-use-policy-2026-04 | LicenseRef-proprietary | "
        "`accepted_with_limits` |"
    ) in lines
    assert f"| `{OPTOUT}` | customer-exclusion-log | not recorded | `accepted` |" in lines
    steps = [x for x in lines if x[:3] in ("1. ", "2. ", "3. ", "4. ")]
    assert steps == [
        '1. `normalize-v1` with `{"case": "lower"}`: removed 0, changed 2',
        '2. `pii-redaction-v3` with `{"patterns": ["email"]}`: removed 0, changed 1',
        "3. `opt-out-removal-v2` (exclusion) with "
        '`{"matched_on": "subject_hash", "on": "customer_id"}`: removed 1, changed 0',
        '4. `dedupe-v2` with `{"threshold": 0.84}`: removed 1, changed 0',
    ]
    assert (
        "- Reviewer status: `accepted_with_limits`, the dataset's own review "
        "(support-classifier-training@v1: accepted\\_with\\_limits by dana@example.com)"
    ) in lines
    assert "- English tickets only" in lines
    assert "- non-English coverage gap" in lines
    held, released = facts.quarantines
    assert (
        f"- `{CHATS}` quarantined, event `{held.event.short}`: trigger: opt-out record found "
        "in model-review sample; blocked uses: training, benchmark-publication; allowed uses: "
        "incident-reproduction; exit condition: opt-out-removal evidence and reviewer status "
        "attached"
    ) in lines
    evidence = ledger.get(released.evidence[0])
    assert evidence.event.type.value == "review"
    assert (
        f"- `{CHATS}` released, event `{released.event.short}`: evidence "
        f"`{evidence.digest.short}`; note: exclusion re-run"
    ) in lines


def test_recorded_text_cannot_break_the_card(facts: BuildFacts) -> None:
    assert facts.manifest is not None
    hostile = (END, "# not a heading", "1. not a list", "a | b <b>bold</b> *x* ```")
    changed = BuildFacts(
        facts.build,
        facts.build_event,
        facts.manifest_digest,
        facts.basis,
        facts.manifest.model_copy(update={"unresolved_risks": hostile}),
    )
    patched = patch_card(FRONT + BODY, changed)
    assert patch_card(patched, changed) == patched
    lines = patched.splitlines()
    assert lines.count(END) == 2  # the example in BODY, and ours
    assert "- \\<!-- mlprov:provenance:end --\\>" in lines
    assert "- \\# not a heading" in lines and "- 1\\. not a list" in lines
    assert "- a \\| b \\<b\\>bold\\</b\\> \\*x\\* \\`\\`\\`" in lines
    assert ModelCard(patched).data.to_dict()["mlprov"]["unresolved_risks"] == list(hostile)
    searchable = [x for x in lines if x.startswith("training_manifest=")]
    assert searchable == [searchable_line(changed)]


def test_a_build_without_a_frozen_manifest_says_so(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        build = incident(ledger)
        legacy = ledger.record(
            "build",
            {"name": "legacy-model", "dataset": build.event.payload["dataset"]},
            parents=[build.event.payload["dataset"]],
        )
        facts = build_facts(ledger, legacy)
    patched = patch_card("", facts)
    assert ModelCard(patched).data.to_dict()["mlprov"]["training_manifest"] is None
    assert searchable_line(facts).startswith("training_manifest=none; ")
    assert (
        "- Training manifest: none frozen with the build: the facts below are the dataset's "
        "current manifest, not the one the build was allowed on"
    ) in patched.splitlines()


CASES = {
    "metadata and body": (FRONT + BODY, "{front}{key}\n---\n{body}\n{section}"),
    "no metadata": (BODY, "---\n{key}\n---\n{body}\n{section}"),
    "metadata closed at the end of the file": (
        "---\nlicense: mit\n---",
        "---\nlicense: mit\n{key}\n---\n{section}",
    ),
    "body without a final line break": ("# Title", "---\n{key}\n---\n# Title\n\n{section}"),
    "empty metadata": ("---\n\n---\nbody\n", "---\n\n{key}\n---\nbody\n\n{section}"),
}


@pytest.mark.parametrize("name", CASES)
def test_everything_else_is_kept_byte_for_byte(facts: BuildFacts, name: str) -> None:
    original, form = CASES[name]
    key, section = parts(facts)
    front = FRONT.removesuffix("---\n")
    expected = form.format(front=front, key=key, body=BODY, section=section)
    patched = patch_card(original, facts)
    assert patched == expected
    assert patch_card(patched, facts) == patched
    card = ModelCard(patched)
    meta = yaml.safe_load(original[4 : original.index("\n---")]) if original[:3] == "---" else {}
    assert card.data.to_dict() == {**(meta or {}), "mlprov": facts.metadata()}


def test_crlf_cards_stay_crlf(facts: BuildFacts) -> None:
    original = (FRONT + BODY).replace("\n", "\r\n")
    patched = patch_card(original, facts)
    assert "\n" not in patched.replace("\r\n", "")
    key, section = parts(facts)
    assert patched == (
        FRONT.removesuffix("---\n") + key + "\n---\n" + BODY + "\n" + section
    ).replace("\n", "\r\n")
    assert ModelCard(patched).data.to_dict()["mlprov"] == facts.metadata()


def test_a_stale_key_and_section_are_replaced_where_they_are(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as fresh:
        before = build_facts(fresh, incident(fresh))
        card = patch_card(FRONT + BODY, before)
        # the team moves the key up and writes after the section; the source is then
        # quarantined again, after the build
        key, section = parts(before)
        card = card.replace(key + "\n", "").replace("license:", key + "\nlicense:")
        card += "\n## Citation\n\nkept\n"
        record_quarantine(fresh, CHATS, "second complaint", "a new exclusion run")
        after = build_facts(fresh, "support-classifier-v7")
    assert after.quarantines[-1].after_build and not before.quarantines[-1].after_build
    new_key, new_section = parts(after)
    patched = patch_card(card, after)
    assert patched == card.replace(key, new_key).replace(section, new_section)
    assert "quarantined (after this build)" in patched and "second complaint" in patched
    assert patched.endswith("\n## Citation\n\nkept\n")
    assert patch_card(patched, after) == patched


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("---\n- a\n- b\n---\n", "not a YAML mapping"),
        ("---\nlicense: [mit\n---\n", "not valid YAML"),
        ("---\nmlprov: 1\nmlprov: 2\n---\n", "more than once"),
        ('---\ndescription: "two\nmlprov: lines"\n---\n', "without changing other keys"),
        (f"body\n{START}\nno end\n", "1 provenance start and 0 end markers"),
        (f"{END}\n{START}\n", "1 provenance start and 1 end markers"),
        ("body\n```\nan open fence\n", "open code fence"),
    ],
)
def test_a_card_that_cannot_be_patched_safely_is_refused(
    facts: BuildFacts, card: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        patch_card(card, facts)


def test_a_byte_order_mark_stays_first(facts: BuildFacts, tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_bytes("\ufeff---\nlicense: mit\n---\nbody\n".encode())
    assert write_card(path, facts)
    assert path.read_bytes().startswith("\ufeff---\nlicense: mit\nmlprov:\n".encode())
    assert ModelCard.load(path).data.to_dict()["mlprov"] == facts.metadata()


def test_write_card_creates_patches_and_then_changes_nothing(
    facts: BuildFacts, tmp_path: Path
) -> None:
    new = tmp_path / "new" / "README.md"
    with pytest.raises(InputError, match="cannot write"):
        write_card(new, facts)
    new.parent.mkdir()
    assert write_card(new, facts)
    assert new.read_text() == patch_card("", facts)
    path = tmp_path / "README.md"
    path.write_bytes((FRONT + BODY).encode())
    path.chmod(0o640)
    assert write_card(path, facts)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    once = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert not write_card(path, facts)
    assert path.read_bytes() == once and path.stat().st_mtime_ns == stamp
    card = ModelCard.load(path)
    assert card.data.to_dict()["license"] == "apache-2.0"
    assert card.data.to_dict()["mlprov"]["reviewer_status"] == "accepted_with_limits"
    assert START in card.text and searchable_line(facts) in card.text.splitlines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "new"]  # no temp left
    (tmp_path / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        write_card(tmp_path / "latin1.md", facts)


@settings(max_examples=60, deadline=None)
@given(risks=st.lists(st.text(max_size=40), max_size=3))
def test_any_risk_text_reads_back_exactly(facts: BuildFacts, risks: list[str]) -> None:
    assert facts.manifest is not None
    changed = BuildFacts(
        facts.build,
        facts.build_event,
        facts.manifest_digest,
        facts.basis,
        facts.manifest.model_copy(update={"unresolved_risks": tuple(risks)}),
        facts.quarantines,
    )
    patched = patch_card(FRONT + BODY, changed)
    assert ModelCard(patched).data.to_dict()["mlprov"]["unresolved_risks"] == risks
    assert patch_card(patched, changed) == patched
    assert patched.count(START) == 2 and patched.count(END) == 2  # the example and ours


LINES = ["# Title", "text", "", "```", "~~~~", "    code", "- item", "| a | b |", "<!-- x -->"]


@settings(max_examples=80, deadline=None)
@given(body=st.lists(st.sampled_from(LINES), max_size=8).map("\n".join))
def test_any_body_is_kept_and_patched_once(facts: BuildFacts, body: str) -> None:
    try:
        patched = patch_card(body, facts)
    except InputError as exc:
        assert "open code fence" in exc.message
        return
    assert patched.startswith("---\nmlprov:\n") and body in patched
    assert patch_card(patched, facts) == patched
    assert ModelCard(patched).data.to_dict()["mlprov"] == facts.metadata()


def test_the_card_command(
    story: tuple[Ledger, Entry], facts: BuildFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, build = story
    monkeypatch.chdir(ledger.blobs_dir.parent.parent)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    printed = runner.invoke(app, ["card", "support-classifier-v7"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == patch_card("", facts)
    written = runner.invoke(app, ["card", build.digest.hex[:12], "--write", "README.md"])
    assert written.exit_code == 0, written.output
    assert "patched README.md" in written.stderr
    assert Path("README.md").read_text() == printed.stdout
    again = runner.invoke(app, ["card", "support-classifier-v7", "--write", "README.md"])
    assert again.exit_code == 0 and "unchanged README.md" in again.stderr
    assert ModelCard.load("README.md").data.to_dict()["mlprov"]["training_manifest"] == (
        Digest(build.event.payload["manifest_digest"])
    )
    os.remove("README.md")
