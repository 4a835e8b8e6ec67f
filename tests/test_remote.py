"""Recording from another machine: `mlprov.open(URL, token=...)` runs the same pipeline
through a real `mlprov serve` on loopback, and the server's ledger then answers as a
ledger the same pipeline recorded locally; what the server refuses leaves nothing
recorded and a ledger that verifies."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.serving import Served, make_tokens, serving
from tests.test_cli import MLPROV, assert_error, mlprov, ok

import mlprov as api
from mlprov.capture.predictions import _append_once
from mlprov.errors import (
    ConflictError,
    DuplicateError,
    InputError,
    IntegrityError,
    StoreError,
)
from mlprov.facade import Ledger, RemoteLedger
from mlprov.ledger.events import Event
from mlprov.ledger.remote import _event_of
from mlprov.records.subjects import SECRET_FILE

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")

TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["parcel late", "cannot log in", "refund please", "where is my parcel"],
    }
)
OPTOUTS = pa.table({"email": ["ann@example.com"]})


def _shout(table: pa.Table) -> pa.Table:
    return table.set_column(2, "text", pc.utf8_upper(table["text"]))


def run_story(ledger: Ledger) -> None:
    """Two sources, an opt-out exclusion, an upper-casing step, a dataset, a build."""
    with ledger.pipeline("ticket-training", checkpoint=False) as p:
        t = p.source(TICKETS, "tickets@2026-06-01", key="ticket_id", subject="email")
        o = p.source(OPTOUTS, "opt-outs@2026-06-01", subject="email")
        kept = p.exclude("opt-out-removal-v1", t, using=o, on="email", purpose="opt-outs")
        lower = p.transform("shout-v1", _shout, kept, purpose="normalise")
        p.dataset(lower, "ticket-training", version="v1")
    ledger.build("ticket-router-v1", dataset="ticket-training", code_version="v1", gates=())


def _ledger_state(home: Path) -> tuple[int, bytes]:
    with Ledger.open(str(home / ".mlprov" / "ledger.db")) as ledger:
        report = ledger.verify()
        assert report.ok, report.problems
        return ledger.size, report.root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path, Path]]:
    """The server over an empty ledger, its tokens, and a client keys folder holding a
    copy of the ledger's subject secret (what MLPROV_KEYS names on the other machine)."""
    home = tmp_path_factory.mktemp("server")
    with Ledger.init(home) as ledger:
        tokens = make_tokens(ledger)
    keys = tmp_path_factory.mktemp("client-keys")
    shutil.copy(home / ".mlprov" / "keys" / SECRET_FILE, keys / SECRET_FILE)
    with serving(home) as running:
        running.tokens = tokens
        yield running, home, keys


def _open(served: Served, role: str = "recorder") -> RemoteLedger:
    ledger = api.open(served.base.removesuffix("/api/v1"), token=served.tokens[role])
    assert isinstance(ledger, RemoteLedger)
    return ledger


def test_a_pipeline_recorded_through_the_server_answers_as_a_local_one(
    served: tuple[Served, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, home, keys = served
    monkeypatch.setenv("MLPROV_KEYS", str(keys))
    monkeypatch.chdir(tmp_path)  # no .mlprov/ here: only the server's ledger is used
    with _open(server) as remote:
        run_story(remote)
        assert remote.actor == "recorder"
    with _open(server, "reader") as reading:  # a fresh one: the set comes from the server
        dataset = reading.find("ticket-training").entry
        root = dataset.event.payload["record_root"]
        assert "0" + reading.record_set(dataset).root.hex() == "0" + root.removeprefix("sha256:")
    # the same run into a local ledger under the same subject secret
    local = tmp_path / "local"
    local.mkdir()
    with Ledger.init(local) as ledger:
        shutil.copy(keys / SECRET_FILE, local / ".mlprov" / "keys" / SECRET_FILE)
        monkeypatch.delenv("MLPROV_KEYS")
        run_story(ledger)
    ok(mlprov("verify", cwd=home))
    for kind in ("source", "transform", "dataset"):
        shown = [
            json.loads(ok(mlprov("log", "--type", kind, "--json", cwd=where)))
            for where in (home, local)
        ]
        roots = [
            sorted((e["payload"]["name"], e["payload"].get("record_root") or "") for e in s)
            for s in shown
        ]
        assert roots[0] == roots[1] and roots[0], kind
    actors = {e["actor"] for e in json.loads(ok(mlprov("log", "--json", cwd=home)))}
    assert actors == {"recorder"} | {"ops@example.com"}  # the tokens' grants, and the run
    for question in (("--subject", "ann@example.com"), ("--key", "2"), ("--key", "1")):
        answers = [
            json.loads(
                ok(mlprov("why", "--model", "ticket-router-v1", *question, "--json", cwd=where))
            )
            for where in (home, local)
        ]
        assert _without_digests(answers[0]) == _without_digests(answers[1]), question
        assert answers[0]["present"] is (question == ("--key", "2")), question
    # the command line, given the server's URL and a token, reads the same ledger
    remote_env = {
        "MLPROV_STORE": server.base.removesuffix("/api/v1"),
        "MLPROV_TOKEN": server.tokens["reader"],
        "MLPROV_KEYS": str(keys),
    }
    for command in (
        ("log", "--json"),
        ("show", "ticket-training", "--json"),
        ("why", "--model", "ticket-router-v1", "--subject", "ann@example.com", "--json"),
        ("why", "--model", "ticket-router-v1", "--key", "2", "--json"),
    ):
        here = json.loads(ok(mlprov(*command, cwd=tmp_path, **remote_env)))
        assert here == json.loads(ok(mlprov(*command, cwd=home))), command
    refused = mlprov(
        "record",
        "source",
        "--payload",
        '{"name": "x", "version": "1"}',
        cwd=tmp_path,
        **remote_env,
        MLPROV_ACTOR="",
    )
    assert refused.returncode == 4 and "may not record" in refused.stderr
    assert server.tokens["reader"] not in refused.stderr
    for token in server.tokens.values():
        assert token not in server.log()


def test_the_command_line_records_as_the_token_and_refuses_another_actor(
    served: tuple[Served, Path, Path], tmp_path: Path
) -> None:
    server, home, _ = served
    remote_env = {
        "MLPROV_STORE": server.base.removesuffix("/api/v1"),
        "MLPROV_TOKEN": server.tokens["recorder"],
        "MLPROV_ACTOR": "",  # none given: the command line's default is the token's name
    }
    payload = ("--payload", '{"name": "by-hand", "version": "1"}', "--json")
    entry = json.loads(ok(mlprov("record", "source", *payload, cwd=tmp_path, **remote_env)))
    assert entry["actor"] == "recorder"
    size = _ledger_state(home)[0]
    other = mlprov(
        "record", "source", *payload, "--actor", "ann@example.com", cwd=tmp_path, **remote_env
    )
    message, hint = assert_error(other, 3, "ann@example.com", "recorder")
    assert "served" in message and "MLPROV_ACTOR" in hint
    assert _ledger_state(home)[0] == size  # refused before anything was sent
    named = {**remote_env, "MLPROV_ACTOR": "recorder"}  # the token's own name is accepted
    second = ("--payload", '{"name": "by-hand", "version": "2"}', "--json")
    again = json.loads(ok(mlprov("record", "source", *second, cwd=tmp_path, **named)))
    assert again["actor"] == "recorder" and _ledger_state(home)[0] == size + 1


def _without_digests(value: Any) -> Any:
    """An answer without the digests of events (the two ledgers' events differ in actor
    and time, and a frozen manifest names them); roots, proofs, trails and verdicts stay."""
    if isinstance(value, dict):
        return {
            k: _without_digests(v)
            for k, v in value.items()
            if k not in {"event", "source_event", "manifest_digest", "evidence"}
        }
    if isinstance(value, list):
        return [_without_digests(v) for v in value]
    return value


def _changes_file(tmp_path: Path) -> tuple[str, bytes]:
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"change": ["removed"]}), path)
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest() + ".changes.parquet", data


def test_a_blob_whose_bytes_do_not_match_its_name_is_refused(
    served: tuple[Served, Path, Path], tmp_path: Path
) -> None:
    server, home, _ = served
    before = _ledger_state(home)
    name, data = _changes_file(tmp_path)
    wrong = server.as_("recorder", "PUT", f"/blobs/{name}", content=data + b"x")
    assert wrong.status_code == 422, wrong.text
    assert "SHA-256" in wrong.json()["error"] and "nothing was kept" in wrong.json()["error"]
    assert not (home / ".mlprov" / "blobs" / name).exists()
    # a record set whose rows do not give the root in its name
    fake_set = "ab" * 32 + ".parquet"
    refused = server.as_("recorder", "PUT", f"/blobs/{fake_set}", content=data)
    assert refused.status_code == 422 and "record-set" in refused.json()["error"]
    assert not (home / ".mlprov" / "blobs" / fake_set).exists()
    left = [p.name for p in (home / ".mlprov" / "blobs").iterdir()]
    assert not [n for n in left if n.startswith((".upload-", ".check-"))]  # no scraps
    assert _ledger_state(home) == before
    # the right bytes are kept, once
    kept = server.as_("recorder", "PUT", f"/blobs/{name}", content=data)
    assert kept.status_code == 200 and kept.json() == {
        "name": name,
        "bytes": len(data),
        "created": True,
    }
    again = server.as_("recorder", "PUT", f"/blobs/{name}", content=data)
    assert again.status_code == 200 and not again.json()["created"]
    assert server.as_("reader", "GET", f"/blobs/{name}").content == data
    # a blob is not held to the 1 MiB limit of JSON bodies (it is streamed to a file)
    big = os.urandom(3 * 1024 * 1024)
    big_name = hashlib.sha256(big).hexdigest() + ".manifest.json"
    taken = server.as_("recorder", "PUT", f"/blobs/{big_name}", content=big)
    assert taken.status_code == 200, taken.text
    assert (home / ".mlprov" / "blobs" / big_name).read_bytes() == big
    too_big = server.as_("recorder", "POST", "/events", content=b"[" + b" " * 2**21 + b"]")
    assert too_big.status_code == 413


def test_an_event_naming_a_missing_blob_is_refused(
    served: tuple[Served, Path, Path], tmp_path: Path
) -> None:
    server, home, _ = served
    before = _ledger_state(home)
    missing = "sha256:" + "cd" * 32
    with _open(server) as remote:
        with pytest.raises(ConflictError, match="which the server does not hold"):
            remote.record("source", {"name": "ghost", "version": "1", "record_root": missing})
        with pytest.raises(InputError, match="is by someone-else, but the token is recorder"):
            remote.record("source", {"name": "other", "version": "1"}, actor="someone-else")
    assert _ledger_state(home) == before


def test_a_refusal_names_its_kind_and_the_client_tells_a_duplicate_by_it(
    served: tuple[Served, Path, Path],
) -> None:
    server, home, _ = served
    with _open(server) as remote:
        entry = remote.record("source", {"name": "twice", "version": "1"})
        size = _ledger_state(home)[0]
        with pytest.raises(DuplicateError):
            remote.append(entry.event)
        with pytest.raises(ConflictError) as refused:  # a conflict, not a duplicate
            remote.record(
                "source", {"name": "ghost", "version": "2", "record_root": "sha256:" + "0" * 64}
            )
        assert not isinstance(refused.value, DuplicateError)
    assert _ledger_state(home)[0] == size
    sent = [entry.event.to_json()]
    asked: list[tuple[httpx.Response, int, str]] = [
        (server.as_("recorder", "POST", "/events", json=sent), 409, "duplicate"),
        (server.as_("reader", "POST", "/events", json=sent), 403, "forbidden"),
        (server.call("POST", "/events", json=sent), 401, "unauthenticated"),
        (server.as_("reader", "GET", "/events/" + "ab" * 32), 404, "not_found"),
        (server.as_("recorder", "POST", "/events", content=b"{nope"), 422, "invalid"),
        (server.as_("reader", "DELETE", "/events"), 405, "method_not_allowed"),
    ]
    for response, status, kind in asked:
        assert (response.status_code, response.json()["kind"]) == (status, kind), response.text
        assert set(response.json()) == {"error", "hint", "kind"}


def test_a_reader_cannot_record_and_a_bad_token_is_refused(
    served: tuple[Served, Path, Path],
) -> None:
    server, home, _ = served
    before = _ledger_state(home)
    with _open(server, "reader") as remote, pytest.raises(StoreError, match="may not record"):
        remote.record("source", {"name": "sneaky", "version": "1"})
    # what a server sends back is checked against its digest
    shown = server.as_("reader", "GET", "/events", params={"limit": 1}).json()[0]
    assert _event_of(shown).digest == shown["digest"]
    altered = shown | {"actor": "mallory"}
    with pytest.raises(IntegrityError, match="do not give that digest"):
        _event_of(altered)
    with pytest.raises(StoreError, match="the token was refused"):
        _open(server, "revoked")
    with pytest.raises(InputError, match="needs a token"):
        api.open(server.base, token="")
    assert _ledger_state(home) == before
    for token in server.tokens.values():
        assert token not in server.log()


def test_predictions_are_logged_through_the_server(
    served: tuple[Served, Path, Path], tmp_path: Path
) -> None:
    server, home, _ = served
    with _open(server) as remote:
        with remote.pipeline("scoring", checkpoint=False) as p:
            rows = p.source(pa.table({"id": [1, 2]}), "scored-rows@1", key="id")
            p.dataset(rows, "scored", version="v1")
        build = remote.build("scorer-v1", dataset="scored", gates=())
        with pytest.raises(InputError, match="token's name, recorder"):
            remote.predictions(build, actor="someone-else")
        with remote.predictions(build, batch_size=3) as logger:
            for i in range(7):
                logger.log(f"question {i}", f"answer {i}")
            assert logger.flush(60)
        assert logger.stats.written == 7 and logger.stats.failures == 0
        # a batch sent again after its answer was lost: only the events not held are sent
        made = [
            Event.create(
                "prediction",
                {**logged.event.payload, "index": 100 + i},
                actor="recorder",
                parents=(build.digest,),
            )
            for i, logged in enumerate(remote.entries(type="prediction", limit=2))
        ]
        remote.append(made[0])
        _append_once(remote, made)
        assert remote.recorded([e.digest for e in made]) == {e.digest for e in made}
    shown = json.loads(ok(mlprov("log", "--type", "prediction", "--json", cwd=home)))
    assert len(shown) == 9 and {e["actor"] for e in shown} == {"recorder"}
    ok(mlprov("verify", cwd=home))


def test_remote_capture_on_each_store(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run through a server over SQLite and over PostgreSQL: recorded under the
    token's name, with a checkpoint the server signed, and a ledger that verifies."""
    home, elsewhere = tmp_path, tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Ledger.init(home, store=store_url) as ledger:
        tokens = make_tokens(ledger)
    monkeypatch.setenv("MLPROV_KEYS", str(home / ".mlprov" / "keys"))
    monkeypatch.chdir(elsewhere)
    with serving(home, store=store_url) as running:
        running.tokens = tokens
        with _open(running) as remote:
            run_story(remote)
            size = remote.size
            assert remote.checkpoint().checkpoint.size == size  # signed by the server
            answer = remote.why("ticket-router-v1", subject="ann@example.com")
            assert answer.present is False
        status = running.as_("reader", "GET", "/verify").json()
        assert status["ok"] and status["size"] == size
    ok(mlprov("verify", "--store", store_url, cwd=home))
