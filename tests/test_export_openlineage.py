"""OpenLineage events of pipeline runs, judged by the format's own schema: every event
validates against the official OpenLineage JSON Schema (vendored in
tests/vectors/openlineage, with its source) and every facet against the schema its
`_schemaURL` names — OpenLineage's for its facets, the one mlprov ships for its own.
`--emit` is received by a real HTTP server on loopback."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from tests.test_cli import assert_error, mlprov, ok
from tests.test_export_intoto import TICKETS, Built, fail, make_ledger

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.export.intoto import statement
from mlprov.export.openlineage import SCHEMA_BASE, SCHEMAS, emit_events, ndjson, run_events
from mlprov.facade import Ledger

VECTORS = Path(__file__).parent / "vectors" / "openlineage"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _registry() -> Registry[Any]:
    files = [*VECTORS.glob("*.json"), *SCHEMAS.glob("*.json")]
    resources = [Resource.from_contents(json.loads(p.read_text("utf-8"))) for p in files]
    return Registry().with_resources((r.id(), r) for r in resources if r.id())


REGISTRY = _registry()


def validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=FormatChecker())


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from event["run"].get("facets", {}).items()
    yield from event["job"].get("facets", {}).items()
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for group in ("facets", "inputFacets", "outputFacets"):
            yield from dataset.get(group, {}).items()


def check_events(lines: list[dict[str, Any]]) -> int:
    """Each event valid against OpenLineage's RunEvent, each facet against its own schema;
    the number of mlprov facets checked."""
    ours = 0
    for event in lines:
        validator(RUN_EVENT).validate(event)
        for key, facet in facets_of(event):
            url = facet["_schemaURL"]
            assert REGISTRY.get(url.partition("#")[0]) is not None, f"no schema for {url}"
            validator(url).validate(facet)
            if key.startswith("mlprov_"):
                assert url.startswith(SCHEMA_BASE)
                assert facet["_producer"].startswith("urn:mlprov:producer:")
                ours += 1
    return ours


def decoded(ledger: Ledger, target: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ndjson(run_events(ledger, target)).splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return make_ledger(tmp_path_factory.mktemp("ol"), "ledger.example/lignée-ø", "été-2026")


def test_every_event_and_facet_validates_against_the_official_schemas(built: Built) -> None:
    events = decoded(built.ledger)
    assert check_events(events) > 10
    kinds = {f for e in events for f, _ in facets_of(e)}
    assert {"mlprov_recordSet", "mlprov_review", "mlprov_changes", "parent", "schema"} <= kinds


def test_a_facet_breaking_its_shipped_schema_is_caught(built: Built) -> None:
    event = next(e for e in decoded(built.ledger) if e["inputs"])
    facet = event["inputs"][0]["facets"]["mlprov_review"]
    with pytest.raises(ValidationError):
        validator(facet["_schemaURL"]).validate({**facet, "reviewStatus": "archived"})
    record_set = event["inputs"][0]["facets"]["mlprov_recordSet"]
    with pytest.raises(ValidationError):
        validator(record_set["_schemaURL"]).validate({**record_set, "recordSetRoot": "abc"})


def test_runs_and_steps_follow_the_ledger(built: Built) -> None:
    ledger = built.ledger
    events = decoded(ledger)
    runs = [e for e in ledger.entries(type="run") if e.event.payload["status"] == "started"]
    starts = [e for e in events if e["job"]["name"] in {"ticket-training", "heldout"}]
    assert [e["eventType"] for e in starts] == [
        "START",
        "FAIL",
        "START",
        "COMPLETE",
        "START",
        "COMPLETE",
    ]
    assert [e["eventTime"] for e in starts[::2]] == [r.event.recorded_at for r in runs]
    failed_run = starts[1]["run"]["facets"]["errorMessage"]
    assert "tokenizer ran out of memory" in failed_run["message"]
    # the failed step: START then FAIL, under the failed run, with the error
    tokenize = [e for e in events if e["job"]["name"] == "ticket-training.tokenize-v1"]
    assert [e["eventType"] for e in tokenize] == ["START", "FAIL"]
    assert tokenize[1]["run"]["facets"]["parent"]["run"]["runId"] == starts[0]["run"]["runId"]
    assert tokenize[1]["outputs"] == []
    # the exclusion step: its removal count, its parent, its times, from the ledger
    step = ledger.find("opt-out-removal-v1", ("transform",)).entry
    removal = [e for e in events if e["job"]["name"] == "ticket-training.opt-out-removal-v1"]
    assert [e["eventTime"] for e in removal] == [
        step.event.payload["started_at"],
        step.event.payload["ended_at"],
    ]
    changes = removal[1]["run"]["facets"]["mlprov_changes"]
    assert changes["removed"] == step.event.payload["counts"]["removed"] == 2
    assert changes["event"] == str(step.digest) and changes["kind"] == "exclusion"
    assert removal[1]["run"]["facets"]["parent"]["run"]["runId"] == starts[2]["run"]["runId"]
    assert removal[1]["run"]["facets"]["parent"]["job"]["name"] == "ticket-training"
    # its output is the next step's input, under one name and version
    lower = [e for e in events if e["job"]["name"] == "ticket-training.lowercase-v1"]
    [out] = removal[1]["outputs"]
    [inp] = lower[0]["inputs"]
    assert (out["name"], out["facets"]["version"]) == (inp["name"], inp["facets"]["version"])
    # the dataset, with its record-set root, and the sources' review status at the time
    [dataset] = starts[3]["outputs"]
    entry = ledger.find("ticket-training", ("dataset",)).entry
    assert dataset["name"] == "ticket-training@v1-été-2026"
    assert (
        dataset["facets"]["mlprov_recordSet"]["recordSetRoot"] == entry.event.payload["record_root"]
    )
    assert dataset["outputFacets"]["outputStatistics"]["rowCount"] == 2
    # the columns the pipeline recorded, as the schema facet, for sources, steps and datasets
    columns = [(c["name"], c["type"]) for c in entry.event.payload["columns"]]
    assert [c[0] for c in columns] == ["ticket_id", "email", "text"]
    assert [(f["name"], f["type"]) for f in dataset["facets"]["schema"]["fields"]] == columns
    assert out["facets"]["schema"] == inp["facets"]["schema"] == dataset["facets"]["schema"]
    inputs = {i["name"]: i for i in starts[3]["inputs"]}
    assert [f["name"] for f in inputs["opt-outs@été-2026"]["facets"]["schema"]["fields"]] == [
        "email"
    ]
    reviews = {i["name"]: i["facets"]["mlprov_review"]["reviewStatus"] for i in starts[3]["inputs"]}
    assert reviews == {"tickets@été-2026": "never_reviewed", "opt-outs@été-2026": "never_reviewed"}


def test_a_target_gives_only_the_runs_that_made_it(built: Built) -> None:
    events = decoded(built.ledger, "ticket-router-v1")
    assert {e["job"]["name"].partition(".")[0] for e in events} == {"ticket-training"}
    assert len({e["run"]["runId"] for e in events if "." not in e["job"]["name"]}) == 1
    assert decoded(built.ledger, "ticket-router-v1") == events  # the same ledger, the same events


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_emit_sends_every_event_in_order_to_a_real_server(
    built: Built, server: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, received = server
    events = run_events(built.ledger)
    assert emit_events(events, url) == len(events)
    assert {path for path, _ in received} == {"/api/v1/lineage"}
    assert [json.loads(b) for _, b in received] == decoded(built.ledger)
    received.clear()
    cwd = built.folder
    out = cwd / "events.ndjson"
    text = ok(mlprov("export", "openlineage", "--emit", f"{url}/lineage", "--out", out, cwd=cwd))
    assert f"sent {len(events)} events" in text
    lines = out.read_bytes().splitlines()
    assert [b for _, b in received] == lines and {p for p, _ in received} == {"/lineage"}
    check_events([json.loads(line) for line in lines])


def test_emit_to_a_closed_port_and_an_unknown_target_are_clear_errors(built: Built) -> None:
    cwd = built.folder
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    port = closed.server_address[1]
    closed.server_close()
    result = mlprov("export", "openlineage", "--emit", f"http://127.0.0.1:{port}/x", cwd=cwd)
    assert_error(result, 3, "could not send OpenLineage events", "0 were sent")
    out = cwd / "nothing.ndjson"
    assert_error(mlprov("export", "openlineage", "no-such-set", "--out", out, cwd=cwd), 3)
    assert not out.exists()


def test_the_demo_ledger_exports_valid_events_and_verifiable_attestations(
    tmp_path: Path,
) -> None:
    pytest.importorskip("faker")
    from mlprov.demo import run

    demo = run(tmp_path / "demo", lambda _section: None)
    ledger = Ledger.open(cwd=demo.directory)
    events = decoded(ledger)
    assert check_events(events) > 0
    assert {e["eventType"] for e in events} >= {"START", "COMPLETE"}
    for build in (demo.v7, demo.v8):
        doc = statement(ledger, build)
        assert (
            doc["subject"][0]["digest"]["sha256"]
            == Digest(build.event.payload["artifact_digest"]).hex
        )
    assert (
        statement(ledger, demo.v7)["predicate"]["buildDefinition"]["internalParameters"]["forced"]
        is True
    )


def test_without_openlineage_python_the_extra_is_named(built: Built, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked" / "openlineage"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed here')\n")
    path = os.pathsep.join([str(blocked.parent), os.environ.get("PYTHONPATH", "")])
    out = tmp_path / "events.ndjson"
    result = mlprov("export", "openlineage", "--out", out, cwd=built.folder, PYTHONPATH=path)
    assert_error(result, 6, "openlineage-python")
    assert "mlprov[openlineage]" in result.stderr and not out.exists()


def test_a_pipeline_told_to_emits_its_events_as_it_runs(
    tmp_path: Path, server: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, received = server
    ledger = Ledger.init(tmp_path, origin="feed.example/lignée")
    with ledger.pipeline("feed-training", openlineage=f"{url}/feed") as p:
        tickets = p.source(
            TICKETS, "tickets@1", key="ticket_id", subject="email", rights_basis="customer-terms §4"
        )
        p.wait()
        assert [json.loads(b)["eventType"] for _, b in received] == ["START"]  # as it runs
        kept = p.transform("lowercase-v1", lambda d: d.assign(text=d.text.str.lower()), tickets)
        data = p.dataset(kept, "feed-set", version="v1")
        assert len(received) == 3  # the step's START and COMPLETE, once it is recorded
    sent = [json.loads(b) for _, b in received]
    assert sent == decoded(ledger, str(data.digest))  # what the export gives afterwards
    assert [e["eventType"] for e in sent] == ["START", "START", "COMPLETE", "COMPLETE"]
    check_events(sent)
    received.clear()
    with pytest.raises(ValueError), ledger.pipeline("feed-training", openlineage=url) as p:
        p.transform(
            "tokenize-v1",
            fail,
            p.source(
                TICKETS,
                "tickets@1",
                key="ticket_id",
                subject="email",
                rights_basis="customer-terms §4",
            ),
        )
    assert [json.loads(b)["eventType"] for _, b in received] == ["START", "START", "FAIL", "FAIL"]
    assert {path for path, _ in received} == {"/api/v1/lineage"}


def test_an_unreachable_feed_never_stops_the_recording(tmp_path: Path) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    port = closed.server_address[1]
    closed.server_close()
    ledger = Ledger.init(tmp_path)
    with (
        pytest.raises(InputError, match="OpenLineage events stopped after 0"),
        ledger.pipeline("feed-training", openlineage=f"http://127.0.0.1:{port}/x") as p,
    ):
        p.dataset(p.source(TICKETS, "tickets@1", key="ticket_id"), "feed-set")
    closed_runs = [e for e in ledger.entries(type="run") if e.event.payload["status"] != "started"]
    assert [e.event.payload["status"] for e in closed_runs] == ["succeeded"]
    assert ledger.find("feed-set", ("dataset",)).entry.event.payload["record_count"] == 4
    assert ledger.verify().ok
