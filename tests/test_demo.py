"""`mlprov demo` end to end: its key claims checked against the ledger it leaves, and each
figure it prints checked to be the ledger's."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard
from tests.test_cli import assert_error, mlprov, ok

from mlprov.answers.card import searchable_line
from mlprov.answers.dot import to_svg
from mlprov.answers.explain import build_facts, explain
from mlprov.answers.lineage import lineage
from mlprov.answers.triage import triage
from mlprov.answers.why import why
from mlprov.demo import Demo, Section, run
from mlprov.demo.story import DATASET, EXPORT, NEW_LIST, OLD_LIST
from mlprov.digest import Digest
from mlprov.errors import ConflictError
from mlprov.facade import Ledger
from mlprov.governance.policy import check
from mlprov.governance.review import State, status_of

# An identity planted where mlprov could find one on its own (git, the environment, the
# login name): the demo must record none of it.
PLANTED = {
    "email": "planted.engineer@planted-employer.invalid",
    "name": "Planted Gitname",
    "host": "planted-hostname-7f3a",
    "login": "plantedlogin7f3a",
}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Demo, list[Section], Ledger]:
    sections: list[Section] = []
    base = tmp_path_factory.mktemp("demo")
    gitconfig = base / "gitconfig"
    gitconfig.write_text(
        f"[user]\n\temail = {PLANTED['email']}\n\tname = {PLANTED['name']}\n", encoding="utf-8"
    )
    directory = base / "incident"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLPROV_ACTOR", raising=False)
        env.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        # a repository's own config would win over the global one: plant it on top of all
        env.setenv("GIT_CONFIG_COUNT", "1")
        env.setenv("GIT_CONFIG_KEY_0", "user.email")
        env.setenv("GIT_CONFIG_VALUE_0", PLANTED["email"])
        env.setenv("HOSTNAME", PLANTED["host"])
        for name in ("USER", "LOGNAME", "USERNAME"):
            env.setenv(name, PLANTED["login"])
        demo = run(directory, sections.append)
    return demo, sections, Ledger.open(cwd=directory)


def test_the_planted_identity_is_really_findable(tmp_path: Path) -> None:
    """The planting works: without actors of its own, mlprov would take the git e-mail."""
    from mlprov.identity import default_actor

    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f"[user]\n\temail = {PLANTED['email']}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLPROV_ACTOR", raising=False)
        env.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
        env.setenv("GIT_CONFIG_COUNT", "1")
        env.setenv("GIT_CONFIG_KEY_0", "user.email")
        env.setenv("GIT_CONFIG_VALUE_0", PLANTED["email"])
        assert default_actor() == PLANTED["email"]


def test_nothing_of_the_machines_identity_reaches_the_demo_folder(story: tuple) -> None:
    demo, sections, ledger = story
    files = [p for p in demo.directory.rglob("*") if p.is_file()]
    assert any(p.name == "ledger.db" for p in files) and any(p.suffix == ".json" for p in files)
    printed_text = "\n".join(line for s in sections for line in (s.title, *s.lines))
    for what, planted in PLANTED.items():
        needle = planted.encode()
        leaks = [str(p) for p in files if needle in p.read_bytes()]
        assert leaks == [], f"the planted {what} was recorded in {leaks}"
        assert planted not in printed_text
    actors = {e.event.actor for e in ledger.entries()}
    assert actors == {"erin@example.com", "carol@example.com", "dana@example.com"}


def test_the_finished_demo_audits_with_only_the_findings_the_story_intends(story: tuple) -> None:
    from mlprov.answers.audit import audit
    from mlprov.demo.story import INTENDED

    demo, sections, ledger = story
    found = audit(ledger)
    assert found.ok
    assert [(f.id, f.subject.digest) for f in found.findings] == [("AU011", demo.v7.digest)]
    assert set(INTENDED) == {"AU011"}
    closing = printed(sections, "14. Audit")
    assert f"AU011 warning, as the story intends: {INTENDED['AU011']}" in closing
    assert "not intended" not in closing


def printed(sections: list[Section], prefix: str) -> str:
    return "\n".join(line for s in sections if s.title.startswith(prefix) for line in s.lines)


def test_v7_holds_the_asker_because_it_used_the_older_list(story: tuple) -> None:
    demo, sections, ledger = story
    answer = why(ledger, demo.v7, subject=demo.asker)
    assert answer.present is True
    root = bytes.fromhex(Digest(answer.dataset.event.payload["record_root"]).hex)
    for proof in answer.proofs:
        proof.proof.verify(root)
    codes = [c.code for c in answer.causes]
    assert codes[0] == "stale-list" and "build-forced" in codes
    stale = answer.causes[0].text
    assert f"used {OLD_LIST}" in stale and NEW_LIST in stale
    assert stale in printed(sections, "5. A customer asks")  # printed as the ledger answers


def test_v7_was_forced_past_the_opt_out_gate_and_the_override_is_recorded(story: tuple) -> None:
    demo, sections, _ = story
    payload = demo.v7.event.payload
    assert payload["forced"] is True and payload["gate"] == "blocked"
    assert any(f.startswith("MPG005") for f in payload["findings"])
    for finding in payload["findings"]:
        assert finding in printed(sections, "4. Training")


def test_v8_proves_the_asker_out_and_passed_its_gates(story: tuple) -> None:
    demo, sections, ledger = story
    answer = why(ledger, demo.v8, subject=demo.asker)
    assert answer.present is False
    [proof] = [p for p in answer.proofs if p.proof.kind == "subject"]
    proof.proof.verify(bytes.fromhex(Digest(answer.dataset.event.payload["record_root"]).hex))
    assert all(t.removed_by and t.removed_by.name == "opt-out-removal-v3" for t in answer.trails)
    payload = demo.v8.event.payload
    assert payload["gate"] == "passed" and not payload.get("forced")
    assert check(ledger, payload["dataset"], "training") == []
    assert "No: the subject" in printed(sections, "11. The customer")


def test_the_quarantine_blocked_a_retrain_and_was_released_with_evidence(story: tuple) -> None:
    demo, sections, ledger = story
    state = status_of(ledger, EXPORT)
    assert state.state is State.ACCEPTED_WITH_LIMITS and state.release is not None
    moves = [e.event.type.value for e in state.history]
    assert moves == ["review", "quarantine", "release"]
    quarantine = state.history[1]
    blocked = check(
        ledger,
        demo.v7.event.payload["dataset"],
        "training",
    )
    # After the release the export no longer blocks, but the v7 data still holds opt-outs.
    assert any(str(f).startswith("MPG005") for f in blocked)
    assert quarantine.digest.short in printed(sections, "7. Quarantine")
    assert "MPG002" in printed(sections, "7. Quarantine")  # it blocked while it was open


def test_every_printed_step_count_is_the_ledgers(story: tuple) -> None:
    demo, sections, ledger = story
    for build, title in ((demo.v7, "3. Pipeline v7"), (demo.v8, "8. Pipeline v8")):
        text = printed(sections, title)
        for entry in ledger.trace(build.event.payload["dataset"]):
            if entry.event.type.value != "transform":
                continue
            p = entry.event.payload
            c = p["counts"]
            line = (
                f"step {p['step']} {p['name']}: {c['in']:,} in, removed {c['removed']:,}, "
                f"changed {c['changed']:,}"
            )
            assert line in text
        dataset = ledger.get(build.event.payload["dataset"])
        assert f"{dataset.event.payload['record_count']:,} records" in text


def test_the_triage_diff_card_and_sentence_printed_are_the_ledgers(story: tuple) -> None:
    demo, sections, ledger = story
    rows = triage(ledger, demo.v7).rows
    text = printed(sections, "6. Triage")
    assert all(f"{r.question} {r.answer}" in text for r in rows)
    assert [r.answer for r in rows][2] == "partially"  # exclusion ran with an older list
    diff_text = printed(sections, "10. What changed")
    assert f"source-reversioned: opt-out-list: {OLD_LIST} -> {NEW_LIST}" in diff_text
    assert "transform-reversioned: opt-out-removal: opt-out-removal-v2 -> opt-out-removal-v3" in (
        diff_text
    )
    assert demo.card is not None
    card = demo.card.read_text(encoding="utf-8")
    line = searchable_line(build_facts(ledger, demo.v8))
    assert line in card
    said = printed(sections, "12. Model card")  # each field of the line, the digest whole
    fields = dict(field.split("=", 1) for field in line.split("; "))
    assert f"training manifest {fields.pop('training_manifest')}," in said
    assert all(f"{k}={v}" in said for k, v in fields.items())
    parsed = ModelCard(card)
    assert parsed.data.to_dict()["mlprov"]["build"] == "support-classifier-v8"
    assert parsed.data.to_dict()["license"] == "other"
    assert explain(ledger, demo.v7).sentence in printed(sections, "12. Model card")


def test_the_ledger_verifies_and_the_data_credits_its_packages(story: tuple) -> None:
    _, sections, ledger = story
    found = ledger.verify(ledger.trusted_keys())
    assert found.ok and found.covered == found.events == ledger.size
    assert f"{found.events} events" in printed(sections, "13. Verify")
    data = printed(sections, "1. The data")
    assert "chatterbot-corpus" in data and "BSD License" in data
    assert "Faker" in data and "MIT License" in data
    export = next(ledger.entries(type="source", name=EXPORT))
    assert f"{export.event.payload['record_count']:,} support tickets" in data
    assert ledger.entries(type="dataset", name=DATASET)


def test_a_second_run_in_the_same_folder_is_refused(story: tuple) -> None:
    demo, _, _ = story
    with pytest.raises(ConflictError, match="already holds a ledger"):
        run(demo.directory, lambda s: None)


def test_readmes_first_command_runs_and_leaves_a_ledger_to_explore(tmp_path: Path) -> None:
    # exactly as README runs it, in a terminal of 80 columns
    out = ok(mlprov("demo", cwd=tmp_path, TMPDIR=str(tmp_path), COLUMNS="80"))
    # a path is never split; this test's folder is longer than the /tmp a reader's is in
    lines = out.replace(str(tmp_path), "/tmp").splitlines()
    wide = [line for line in lines if len(line) > 80]
    assert not wide, f"the demo prints lines wider than 80 columns: {wide}"
    assert "[stale-list]" in out and "\n  verified: " in out
    [where] = tmp_path.glob("mlprov-demo.*")
    assert f"cd {where}" in out
    log = json.loads(ok(mlprov("log", "--type", "build", "--json", cwd=where)))
    assert {e["payload"]["name"] for e in log} == {"support-classifier-v7", "support-classifier-v8"}
    assert_error(mlprov("demo", "--dir", where, cwd=tmp_path), 5, "already holds a ledger")


# -- what the command line prints of the finished demo ------------------------------------

#: The reports a reader of the demo runs next, as README and the demo's closing lines say.
REPORTS = (
    ("why", "--model", "support-classifier-v7", "--subject", "jose31@example.com"),
    ("why", "--model", "support-classifier-v8", "--subject", "jose31@example.com"),
    ("explain", "support-classifier-v7"),
    ("explain", "support-classifier-v8"),
    ("card", "support-classifier-v8"),
    ("triage", "support-classifier-v7"),
    ("triage", "support-classifier-v8"),
    ("log", "--limit", "100"),
    ("show", "support-classifier-v7"),
    ("audit",),
)
#: A run of hex digits as long as an id's: an id, whole (64) or shortened (fewer).
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{8,64}(?![0-9A-Za-z])")
#: Ids that are whole at their length: a ledger's origin (mlprov/ and 16 hex digits).
_WHOLE = re.compile(r"mlprov/[0-9a-f]{16}$")


def clipped_ids(text: str) -> list[str]:
    """Hex runs of 8 to 63 digits that neither end in an ellipsis nor are whole ids, each
    with the words before it."""
    found = []
    for m in _HEX_RUN.finditer(text):
        whole = len(m.group()) == 64 or _WHOLE.search(text[max(0, m.start() - 7) : m.end()])
        if not whole and not text.startswith("…", m.end()):
            found.append(text[max(0, m.start() - 20) : m.end()].split("\n")[-1])
    return found


def test_the_clipped_id_check_finds_a_clipped_id() -> None:
    quoted = "why: event adff3655\ncard: training_manifest=sha256:5f1e1bc8; reviewer_status=x"
    assert clipped_ids(quoted) == ["why: event adff3655", "ing_manifest=sha256:5f1e1bc8"]
    assert clipped_ids("event adff3655… of mlprov/0123456789abcdef: sha256:" + "a" * 64) == []


@pytest.mark.parametrize("args", REPORTS, ids=" ".join)
def test_the_reports_clip_no_id_and_fit_80_columns(story: tuple, args: tuple[str, ...]) -> None:
    demo, _, _ = story
    result = mlprov(*args, cwd=demo.directory, COLUMNS="80")
    printed_text = ok(result) + result.stderr
    assert not clipped_ids(printed_text), clipped_ids(printed_text)
    if args[0] != "card" and args[0] != "show":  # a card and a payload are files' contents
        wide = [line for line in printed_text.splitlines() if len(line) > 80]
        assert not wide, f"lines wider than 80 columns: {wide}"


def test_every_id_why_shortens_is_whole_in_its_json(story: tuple) -> None:
    demo, _, _ = story
    args = ("why", "--model", "support-classifier-v7", "--subject", "jose31@example.com")
    text = ok(mlprov(*args, cwd=demo.directory, COLUMNS="80"))
    whole = ok(mlprov(*args, "--json", cwd=demo.directory))
    shortened = re.findall(r"([0-9a-f]{8,63})…", text)
    assert shortened
    for prefix in shortened:
        assert re.search(rf"\b{prefix}[0-9a-f]*", whole), f"{prefix}… is nowhere whole"


def test_every_row_of_the_log_has_a_name(story: tuple) -> None:
    demo, _, ledger = story
    text = ok(mlprov("log", "--limit", "100", cwd=demo.directory))  # 200 columns: a table
    rows = [re.split(r"  +", line.strip()) for line in text.splitlines()[1:]]
    assert len(rows) == ledger.size
    assert all(len(row) == 6 for row in rows), [r for r in rows if len(r) != 6]
    reviews = [row for row in rows if row[2] == "review"]
    assert reviews and all(row[4].startswith(("accepted", "rejected")) for row in reviews)
    assert "accepted_with_limits support-chat-export@2026-05-22" in {r[4] for r in reviews}


# -- golden files: the demo's printed reports, read by eye when they change -------------------
# (`pytest tests/test_demo.py --snapshot-update` rewrites them; review the diff before
# committing.) What differs from run to run is replaced by a placeholder: digests, times,
# the folder, the versions of the packages that supply the data and the classifier.


def _steady(text: str, demo: Demo) -> str:
    import datetime
    import re

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    for pattern, placeholder in (
        (re.escape(str(demo.directory)), "<dir>"),
        (r"sha256:[0-9a-f]{64}", "sha256:<digest>"),
        (r"\b[0-9a-f]{64}\b", "<hex>"),
        (r"\b[0-9a-f]{16}…", "<hex16>…"),
        (r"mlprov/[0-9a-f]{16}", "mlprov/<origin>"),
        (r"\b[0-9a-f]{8}\b", "<short>"),
        (r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?", "<time>"),
        (re.escape(today), "<today>"),
        (r"(chatterbot-corpus|Faker|scikit-learn) \d[\w.]*", r"\1 <version>"),
        (r"\d+\.\d% on", "<accuracy> on"),
    ):
        text = re.sub(pattern, placeholder, text)
    return text


def test_golden_the_demo_as_printed(story: tuple, snapshot: Any) -> None:
    demo, sections, _ = story
    printed_text = "\n".join(
        "\n".join([s.title, *(f"  {line}" for line in s.lines)]) for s in sections
    )
    assert _steady(printed_text, demo) == snapshot


def test_golden_the_reports_of_v8(story: tuple, snapshot: Any) -> None:
    from mlprov.answers.reports import report, to_markdown

    demo, _, ledger = story
    for kind in ("datasheet", "eu-training-summary", "ab2013"):
        made = to_markdown(report(ledger, kind, demo.v8))
        assert str(demo.directory) not in made and "/tmp" not in made
        assert "False" not in made and "('" not in made  # no Python reprs
        assert _steady(made, demo) == snapshot(name=kind)


def test_golden_triage_explain_and_card(story: tuple, snapshot: Any) -> None:
    from mlprov.answers.card import patch_card

    demo, _, ledger = story
    for build in (demo.v7, demo.v8):
        name = build.event.name
        rows = triage(ledger, build).rows
        table = "\n".join(f"{r.question} | {r.answer} | {r.evidence} | {r.risk}" for r in rows)
        assert _steady(table, demo) == snapshot(name=f"triage {name}")
        assert _steady(explain(ledger, build).sentence, demo) == snapshot(name=f"explain {name}")
        card = patch_card("", build_facts(ledger, build))
        assert _steady(card, demo) == snapshot(name=f"card {name}")


def test_the_eu_summary_lists_the_split_with_the_steps_not_as_a_removal(story: tuple) -> None:
    from mlprov.answers.reports import report

    demo, _, ledger = story
    items = {i.id: i for i in report(ledger, "eu-training-summary", demo.v8).items}
    assert "split-v1" not in (items["3.2"].value or "")
    assert "split-v1" in (items["3.3.steps"].value or "")
    assert "holdout=false" in (items["3.3.steps"].value or "")
    user = items["2.4"].value or ""
    assert (
        user.startswith("Y: support-chat-export@2026-05-22")
        and "source.uri" not in items["2.4"].fields
    )


def test_the_diff_names_each_step_once(story: tuple) -> None:
    _, sections, _ = story
    lines = printed(sections, "10. What changed").splitlines()
    assert not [x for x in lines if "split-v1" in x and ("-added" in x or "-removed" in x)]
    assert any(x.startswith("exclusion-report-changed: split-v1") for x in lines)
    assert "records: 0 added, 8 removed" in lines


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")
def test_the_graph_of_v7_shows_the_incident_as_triage_reads_it(story: tuple) -> None:
    """The build page's graph: laid out by real Graphviz, the forced build, the older list
    the exclusion used, the quarantine recorded after the build, each linked to its event."""
    demo, _, ledger = story
    graph = lineage(ledger, demo.v7)
    assert [n.label for n in graph.steps] == list(explain(ledger, demo.v7).facts.transforms)
    assert graph.node(graph.target).status == "forced"
    old = next(n for n in graph.nodes if n.label == OLD_LIST)
    assert (old.kind, old.status, ("newest version", NEW_LIST) in old.details) == (
        "list",
        "superseded",
        True,
    )
    quarantine = graph.of_kind("quarantine")[0]
    assert (quarantine.label, ("recorded", "after the build") in quarantine.details) == (
        EXPORT,
        True,
    )
    svg = to_svg(graph, "/events/{digest}")
    (demo.directory / "support-classifier-v7.svg").write_bytes(svg)  # left to look at
    links = {
        a.get("{http://www.w3.org/1999/xlink}href")
        for a in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}a")
    }
    assert {f"/events/{n.event}" for n in graph.nodes if n.event} <= links
