"""The lineage graph (`mlprov graph`): its nodes and states agree with triage and the
postmortem on the same ledger, and the DOT text survives any recorded text when real
Graphviz lays it out."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.test_cli import assert_error, mlprov, ok

from mlprov.answers.dot import to_dot, to_svg
from mlprov.answers.explain import explain
from mlprov.answers.lineage import Lineage, Node, lineage
from mlprov.answers.triage import triage
from mlprov.answers.view import view
from mlprov.errors import InputError, MissingProgramError
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_review

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4, 5],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "di@example.com", "ed@x"],
        "text": ["Parcel LATE", "Cannot LOG in", "Refund please", "Where IS it", "Hello"],
    }
)
# Text a step or a reviewer may record, written to break a DOT file that pasted it in.
NASTY = 'x"] ; evil [label="pwned"]; a -> b //\n<b>&amp;</b> \\N \\" ]'
UNICODE_VERSION = "2026-06-01-Zürich-日本-📦"
REVIEWER = "Zoë Ærøskøbing"


def fail(table: pa.Table) -> pa.Table:
    raise ValueError("the tokenizer blew up")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, dict[str, str]]:
    """Sources (one with a unicode version), an older and a newer opt-out list, a failed
    step, an exclusion with the older list, a transform with awkward parameters, a
    dataset, reviews, a quarantine and a build forced past it."""
    ledger = Ledger.init(tmp_path_factory.mktemp("lineage"))
    with ledger.pipeline("intake") as p:
        p.source(pa.table({"email": ["bob@example.com"]}), "opt-outs@2026-05-01", subject="email")
    with ledger.pipeline("training") as p:
        tickets = p.source(
            TICKETS, f"tickets@{UNICODE_VERSION}", key="ticket_id", subject="email",
            rights_basis="conditions d’utilisation §4 — ✓",
        )  # fmt: skip
        old = next(ledger.entries(type="source", name="opt-outs@2026-05-01"))
        with pytest.raises(ValueError, match="tokenizer"):
            p.transform("tokenize-v1", fail, tickets)
        kept = p.exclude(
            "opt-out-removal-v1", tickets, using=p.source(
                pa.table({"email": ["bob@example.com"]}), "opt-outs@2026-05-01", subject="email"
            ), on="email",
        )  # fmt: skip
        lower = p.transform(
            "lowercase-v2",
            lambda t: t.set_column(2, "text", pc.utf8_lower(t["text"])),
            kept,
            params={"pattern": NASTY, "esc": '\\N\\"<&>]\n}', "language": "日本語", "arrow": "→"},
        )
        dataset = p.dataset(lower, "ticket-training", version="v1")
    with ledger.pipeline("later") as p:
        p.source(
            pa.table({"email": ["bob@example.com", "cy@example.com"]}),
            "opt-outs@2026-06-01",
            subject="email",
        )
    record_review(
        ledger, f"tickets@{UNICODE_VERSION}", "accepted_with_limits", REVIEWER,
        limits=[NASTY],
    )  # fmt: skip
    record_review(ledger, "opt-outs@2026-05-01", "accepted", REVIEWER)
    record_quarantine(
        ledger, f"tickets@{UNICODE_VERSION}", trigger=NASTY, exit_condition="a new review"
    )
    build = ledger.build("ticket-router-v1", dataset=dataset, gates=None, force=True,
                         code_version="abc123")  # fmt: skip
    assert old.digest != ""  # the intake's list and the training run's are the same event
    return ledger, {"dataset": str(dataset.digest), "build": str(build.digest)}


def by_label(graph: Lineage) -> dict[str, Node]:
    """The nodes by label, but quarantines and releases (labelled by what they hold)."""
    return {n.label: n for n in graph.nodes if n.kind not in ("quarantine", "release")}


def test_the_build_graph_has_its_nodes_in_order_with_the_states_triage_and_explain_give(
    story: tuple[Ledger, dict[str, str]],
) -> None:
    ledger, ids = story
    graph = lineage(ledger, "ticket-router-v1")
    facts = explain(ledger, "ticket-router-v1").facts
    v = view(ledger, "ticket-router-v1")
    # the steps in order are the frozen manifest's, as the postmortem sentence names them
    assert [n.label for n in graph.steps] == list(facts.transforms)
    assert [n.step for n in graph.steps] == [2, 3]
    assert [n.step_kind for n in graph.steps] == ["exclusion", "transform"]
    nodes = by_label(graph)
    build = graph.node(graph.target)
    assert (build.kind, build.event, build.status) == ("build", ids["build"], "forced")
    assert any(k == "forced past" and "MPG002" in v for k, v in build.details)
    findings = ledger.get(ids["build"]).event.payload["findings"]
    assert len(findings) > 1  # the quarantine and the newer opt-out list: each one shown
    assert [v for k, v in build.details if k == "forced past"] == list(findings)
    assert {"what": "forced past", "value": findings[-1]} in build.to_json()["details"]
    dataset = nodes["ticket-training@v1"]
    assert (dataset.kind, dataset.event) == ("dataset", ids["dataset"])
    assert dataset.review == facts.reviewer_status
    manifest = graph.of_kind("manifest")[0]
    assert (manifest.digest, manifest.status) == (facts.manifest_digest, "frozen")
    # each source's review state at build time is the view's, which triage reads
    for s in v.sources:
        node = nodes[s.ref]
        assert s.entry is not None and s.at_build is not None
        assert (node.event, node.review) == (s.entry.digest, s.at_build.state)
    tickets = nodes[f"tickets@{UNICODE_VERSION}"]
    assert (tickets.kind, tickets.review) == ("source", "quarantined")
    rows = {r.question: r for r in triage(ledger, "ticket-router-v1").rows}
    assert rows["Was the source allowed?"].answer == "no"  # the quarantined source
    # the older list the exclusion used is superseded: triage says exclusion ran partially
    listed = nodes["opt-outs@2026-05-01"]
    assert (listed.kind, listed.review, listed.status) == ("list", "accepted", "superseded")
    assert ("newest version", "opt-outs@2026-06-01") in listed.details
    assert rows["Did exclusion run?"].answer == "partially"
    # the quarantine, linked to its source
    quarantine = graph.of_kind("quarantine")[0]
    assert any(
        (e.tail, e.head, e.relation) == (quarantine.id, tickets.id, "quarantined")
        for e in graph.edges
    )


def test_the_edges_follow_what_each_step_recorded_it_used(
    story: tuple[Ledger, dict[str, str]],
) -> None:
    ledger, _ = story
    graph = lineage(ledger, "ticket-router-v1")
    n = {k: v.id for k, v in by_label(graph).items()}
    edges = {(e.tail, e.head, e.relation, e.role) for e in graph.edges}
    assert {
        (graph.target, n["frozen manifest"], "used", None),
        (n["frozen manifest"], n["ticket-training@v1"], "derived", None),
        (n["ticket-training@v1"], n["lowercase-v2"], "generated", None),
        (n["lowercase-v2"], n["opt-out-removal-v1"], "informed", None),
        (n["opt-out-removal-v1"], n[f"tickets@{UNICODE_VERSION}"], "used", "input"),
        (n["opt-out-removal-v1"], n["opt-outs@2026-05-01"], "used", "using"),
    } <= edges
    failed = [x for x in graph.of_kind("step") if x.status == "failed"]
    assert [x.label for x in failed] == ["tokenize-v1"]
    assert ("error", "ValueError: the tokenizer blew up") in failed[0].details
    # a failed step is shown beside the data's path, never on it
    assert (failed[0].id, n[f"tickets@{UNICODE_VERSION}"], "used", "input") in edges
    assert not any(e.head == failed[0].id for e in graph.edges)
    assert graph.to_json()["nodes"][0]["event"] == graph.node(graph.target).event


def test_a_dataset_graph_shows_the_builds_on_it(story: tuple[Ledger, dict[str, str]]) -> None:
    ledger, ids = story
    graph = lineage(ledger, "ticket-training@v1")
    target = graph.node(graph.target)
    assert (target.kind, target.event) == ("dataset", ids["dataset"])
    builds = graph.of_kind("build")
    assert [(b.label, b.status) for b in builds] == [("ticket-router-v1", "forced")]
    assert (builds[0].id, target.id, "used", None) in {
        (e.tail, e.head, e.relation, e.role) for e in graph.edges
    }
    assert not graph.of_kind("manifest")


def svg_nodes(svg: bytes) -> dict[str, tuple[str, str | None, str | None]]:
    """Each node group of the SVG: its text, link and tooltip."""
    root = ET.fromstring(svg)
    found = {}
    for g in root.iter(f"{SVG}g"):
        if "node" not in (g.get("class") or "").split():
            continue
        link = next(g.iter(f"{SVG}a"), None)
        text = " ".join(t.text or "" for t in g.iter(f"{SVG}text"))
        found[g.get("id") or ""] = (
            text,
            link.get(f"{XLINK}href") if link is not None else None,
            link.get(f"{XLINK}title") if link is not None else None,
        )
    return found


@needs_dot
def test_the_svg_parses_and_holds_every_label_and_link(
    story: tuple[Ledger, dict[str, str]],
) -> None:
    ledger, _ = story
    graph = lineage(ledger, "ticket-router-v1")
    svg = to_svg(graph, "/events/{digest}")
    nodes = svg_nodes(svg)
    assert set(nodes) == {f"lineage-{n.id}" for n in graph.nodes} | {"lineage-legend"}
    for n in graph.nodes:
        text, href, title = nodes[f"lineage-{n.id}"]
        assert n.label in text, (n.label, text)  # unicode versions survive whole
        assert n.event is not None
        assert href == f"/events/{n.event}"
        assert title is not None and str(n.event) in title  # the full digest, on hover
    legend = nodes["lineage-legend"][0]
    for state in ("accepted", "accepted with limits", "quarantined", "rejected", "never reviewed"):
        assert state in legend
    failed = next(n for n in graph.nodes if n.status == "failed")
    assert "FAILED" in nodes[f"lineage-{failed.id}"][0]
    assert "FORCED" in nodes[f"lineage-{graph.target}"][0]
    # a function gives the links as well as a template
    again = svg_nodes(to_svg(graph, lambda d: f"https://ledger.example/e/{d.hex}"))
    assert again[f"lineage-{graph.target}"][1] == (
        f"https://ledger.example/e/{graph.node(graph.target).event.hex}"  # type: ignore[union-attr]
    )


@needs_dot
def test_recorded_text_cannot_break_the_graph(story: tuple[Ledger, dict[str, str]]) -> None:
    """Quotes, brackets, newlines, angle brackets, ampersands and DOT escapes in a
    parameter, a limit, a trigger and a link stay text on their node."""
    ledger, _ = story
    graph = lineage(ledger, "ticket-router-v1")
    template = '/events/{digest}?x="] ; b [label=y]&z=<1>'
    dot = to_dot(graph, template)
    assert "pwned" in dot and 'label="pwned"' not in dot
    svg = to_svg(graph, template)
    nodes = svg_nodes(svg)
    assert set(nodes) == {f"lineage-{n.id}" for n in graph.nodes} | {"lineage-legend"}
    step = by_label(graph)["lowercase-v2"]
    text, href, _ = nodes[f"lineage-{step.id}"]
    assert 'pattern: x"] ; evil [label="pwned"]; a -&gt;' not in text
    assert 'pattern: x"] ; evil [label="pwned"]; a -> b // <b>&amp;…' in text  # shortened
    assert 'esc: \\N\\"<&>] }' in text  # DOT's escapes stay text; the newline a space
    assert "language: 日本語" in text and "arrow: →" in text
    assert href == f"/events/{step.event}?x=%22]%20;%20b%20[label=y]&z=%3C1%3E"
    edges = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == len(graph.edges)  # nothing added: no `a -> b`, no `evil` node
    quarantine = graph.of_kind("quarantine")[0]
    assert "trigger: x\"] ; evil" in nodes[f"lineage-{quarantine.id}"][0]


def test_a_link_template_without_its_digest_is_refused(
    story: tuple[Ledger, dict[str, str]],
) -> None:
    ledger, _ = story
    with pytest.raises(InputError, match="holds no"):
        to_dot(lineage(ledger, "ticket-router-v1"), "/events/")


def test_without_graphviz_the_svg_is_refused_with_how_to_install_it(
    story: tuple[Ledger, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ledger, _ = story
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no dot on it
    with pytest.raises(MissingProgramError) as caught:
        to_svg(lineage(ledger, "ticket-router-v1"))
    assert caught.value.exit_code == 6
    assert "apt-get install graphviz" in (caught.value.hint or "")
    assert "to_dot" in (caught.value.hint or "")  # the Python face's way round it


# -- the command -----------------------------------------------------------------------------


@needs_dot
def test_the_graph_command(story: tuple[Ledger, dict[str, str]], tmp_path: Path) -> None:
    ledger, ids = story
    cwd = ledger.blobs_dir.parent.parent
    svg = ok(mlprov("graph", "ticket-router-v1", "--link", "/events/", cwd=cwd))
    nodes = svg_nodes(svg.encode())
    assert any(href == f"/events/{ids['build']}" for _, href, _ in nodes.values())
    link = ("--link", "/e/{digest}/x")
    dot = ok(mlprov("graph", "ticket-router-v1", "--format", "dot", *link, cwd=cwd))
    assert f'URL="/e/{ids["build"]}/x"' in dot
    written = tmp_path / "g.dot"
    result = mlprov("graph", ids["dataset"][7:19], "--format", "dot", "--out", written, cwd=cwd)
    assert ok(result) == "" and f"wrote {written}" in result.stderr
    assert written.read_text(encoding="utf-8").startswith("digraph lineage {")
    import json

    got = json.loads(ok(mlprov("graph", "ticket-training", "--format", "json", cwd=cwd)))
    assert got["nodes"][0]["event"] == ids["dataset"]
    assert_error(mlprov("graph", "no-such-build", cwd=cwd), 3, "no-such-build")
    assert_error(mlprov("graph", "tickets@" + UNICODE_VERSION, cwd=cwd), 3, "names a source")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    python_dir = str(Path(os.path.realpath(shutil.which("mlprov") or "")).parent)
    no_dot = f"{empty}:{python_dir}"
    missing = mlprov("graph", "ticket-router-v1", cwd=cwd, PATH=no_dot)
    assert_error(missing, 6, "'dot' (Graphviz)")
    assert "apt-get install graphviz" in missing.stderr and "--format dot" in missing.stderr
    text = mlprov("graph", "ticket-router-v1", "--format", "dot", cwd=cwd, PATH=no_dot)
    assert ok(text).startswith("digraph lineage {")  # the DOT text needs no Graphviz


def test_a_state_changed_since_the_build_and_an_eval_on_the_training_set(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("small") as p:
        rows = p.source(TICKETS, "tickets@1", key="ticket_id")
        dataset = p.dataset(rows, "small-training")
    ledger.build("small-v1", dataset=dataset, gates=(), eval_set=dataset, code_version="x")
    record_review(ledger, "tickets@1", "rejected", REVIEWER)
    record_review(ledger, dataset, "quarantined", REVIEWER, note="a leak was found")
    graph = lineage(ledger, "small-v1")
    nodes = by_label(graph)
    source, data = nodes["tickets@1"], nodes["small-training@v1"]
    assert (source.review, source.review_now) == ("never_reviewed", "rejected")
    rows_ = {r.question: r for r in triage(ledger, "small-v1").rows}
    assert "tickets@1: never_reviewed at build time (now rejected)" in rows_[
        "Was the source allowed?"
    ].evidence
    assert graph.node(graph.target).status == "not_run"
    assert (data.review, data.review_now) == ("never_reviewed", "quarantined")
    quarantine = graph.of_kind("quarantine")[0]  # a quarantining review of the dataset
    assert (quarantine.id, data.id, "quarantined", None) in {
        (e.tail, e.head, e.relation, e.role) for e in graph.edges
    }
    assert ("trigger", "a leak was found") in quarantine.details
    assert ("recorded", "after the build") in quarantine.details
    edges = {(e.tail, e.head, e.relation, e.role) for e in graph.edges}
    assert (graph.target, data.id, "used", "eval set") in edges
    assert (data.id, source.id, "derived", None) in edges  # a dataset straight from a source
    assert not graph.steps
    # a dataset's own graph reads the states now
    now = by_label(lineage(ledger, "small-training"))["tickets@1"]
    assert (now.review, now.review_now) == ("rejected", None)
    dot = to_dot(graph)
    assert "GATES NOT RUN" in dot and "now rejected" in dot and "URL=" not in dot
    assert "rankdir=BT" in dot and "rankdir=RL" in to_dot(graph, direction="LR")


def test_the_graph_reads_the_same_on_each_store(ledger: Ledger) -> None:
    """SQLite and PostgreSQL (the `ledger` fixture of conftest runs on both)."""
    with ledger.pipeline("p") as p:
        rows = p.source(TICKETS, "tickets@1", key="ticket_id", subject="email")
        kept = p.exclude("opt-out-removal-v1", rows, using=p.source(
            pa.table({"email": ["ann@example.com"]}), "opt-outs@1", subject="email"), on="email")
        dataset = p.dataset(kept, "train", version="v1")
    ledger.build("m-v1", dataset=dataset, gates=(), code_version="x")
    graph = lineage(ledger, "m-v1")
    assert [(n.kind, n.label) for n in graph.nodes[:3]] == [
        ("build", "m-v1"),
        ("manifest", "frozen manifest"),
        ("dataset", "train@v1"),
    ]
    assert [(n.label, n.step) for n in graph.steps] == [("opt-out-removal-v1", 1)]
    assert {n.label: n.kind for n in graph.of_kind("source", "list")} == {
        "tickets@1": "source",
        "opt-outs@1": "list",
    }


@needs_dot
def test_steps_on_two_branches_still_read_in_order(tmp_path: Path) -> None:
    import pyarrow as pa_

    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("join") as p:
        a = p.source(TICKETS.slice(0, 3), "tickets-a@1", key="ticket_id")
        b = p.source(TICKETS.slice(3), "tickets-b@1", key="ticket_id")
        a = p.transform("clean-a-v1", lambda t: t, a)
        b = p.transform("clean-b-v1", lambda t: t, b)
        both = p.transform("join-v1", lambda t, u: pa_.concat_tables([t, u]), a, b)
        p.dataset(both, "joined")
    graph = lineage(ledger, "joined")
    n = {k: v.id for k, v in by_label(graph).items()}
    edges = {(e.tail, e.head, e.relation) for e in graph.edges}
    assert {
        (n["join-v1"], n["clean-a-v1"], "informed"),
        (n["join-v1"], n["clean-b-v1"], "informed"),
        (n["clean-a-v1"], n["tickets-a@1"], "used"),
        (n["clean-b-v1"], n["tickets-b@1"], "used"),
    } <= edges
    assert [s.label for s in graph.steps] == ["clean-a-v1", "clean-b-v1", "join-v1"]
    # laid out top-down: each step below the one before it
    root = ET.fromstring(to_svg(graph))
    tops = {}
    for g in root.iter(f"{SVG}g"):
        if (g.get("id") or "").startswith("lineage-n"):
            ys = [float(t.get("y") or 0) for t in g.iter(f"{SVG}text")]
            tops[(g.get("id") or "").removeprefix("lineage-")] = min(ys)
    order = [tops[s.id] for s in graph.steps]
    assert order == sorted(order) and len(set(order)) == 3, order
