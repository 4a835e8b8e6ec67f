"""`mlprov serve` over real HTTP on loopback: every route refuses whoever may not call it
(the routes are read from the server's own OpenAPI document, so a new one cannot escape),
the roles record what they may under their token's name, and the answers are the ones the
command line prints."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.serving import REVIEWER, ROLES, Served, build_story, make_tokens, serving
from tests.test_cli import MLPROV, mlprov, ok

from mlprov.facade import Ledger
from mlprov.server.auth import PERMISSION_KEY
from mlprov.server.tokens import PERMISSIONS, Permission, Role, list_tokens

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")

#: A well-formed body for each route that takes one, so that a refusal is shown to come
#: before the work (a route added without one here fails `test_every_route_is_guarded`).
BODIES: dict[str, dict[str, Any]] = {
    "POST /why": {"model": "ticket-router-v1", "subject": "ann@example.com"},
    "POST /events": {"type": "source", "payload": {"name": "more", "version": "1"}},
    "POST /reviews": {"target": "opt-outs@2026-06-01", "status": "rejected"},
    "POST /quarantines": {
        "source": "opt-outs@2026-06-01",
        "trigger": "complaint",
        "exit_condition": "a new list",
    },
    "POST /releases": {"source": "opt-outs@2026-06-01", "evidence": ["ticket-training"]},
    "POST /checkpoints": {},
    "POST /tokens": {"name": "intruder", "role": "admin"},
    "DELETE /tokens/{name}": {},
}
#: What each path parameter is filled with.
PARAMS = {
    "digest": "sha256:" + "0" * 64,
    "ref": "ticket-router-v1",
    "name": "admin",
    "blob": hashlib.sha256(b"changes").hexdigest() + ".changes.parquet",
}
#: The body of each route that takes bytes rather than JSON.
CONTENTS = {"PUT /blobs/{blob}": b"changes"}
QUERIES = {"target": "ticket-router-v1", "build": "ticket-router-v1"}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    home = tmp_path_factory.mktemp("served")
    with Ledger.init(home) as ledger:
        build_story(ledger)
        tokens = make_tokens(ledger)
    with serving(home) as served:
        served.tokens = tokens
        yield served, home


def _operations(served: Served) -> list[tuple[str, str, str]]:
    """(method, path template, permission) of every operation in the OpenAPI document."""
    doc = served.as_("reader", "GET", "/openapi.json").json()
    found = []
    for template, item in doc["paths"].items():
        for method, operation in item.items():
            assert PERMISSION_KEY in operation, f"{method.upper()} {template} declares no role"
            found.append((method.upper(), template, operation[PERMISSION_KEY]))
    return found


def _request(method: str, template: str) -> tuple[str, dict[str, Any]]:
    path = template.removeprefix("/api/v1")
    url = re.sub(r"\{(\w+)(:path)?\}", lambda m: PARAMS[m.group(1)], path)
    options: dict[str, Any] = {"params": QUERIES} if method == "GET" else {}
    if method in ("POST", "DELETE"):
        options["json"] = BODIES[f"{method} {path}"]
    if method == "PUT":
        options["content"] = CONTENTS[f"{method} {path}"]
    return url, options


def _state(home: Path) -> tuple[int, bytes, list[Any]]:
    with Ledger.open(str(home / ".mlprov" / "ledger.db")) as ledger:
        report = ledger.verify()
        assert report.ok, report.problems
        return ledger.size, report.root, list_tokens(ledger.store)


def test_every_route_is_guarded(story: tuple[Served, Path]) -> None:
    served, home = story
    before = _state(home)
    operations = _operations(served)
    assert len(operations) >= 20
    wrong = {
        "none": None,
        "unknown": "mlp_" + "A" * 43,
        "garbage": "not a token",
        "revoked": served.tokens["revoked"],
        "expired": served.tokens["expired"],
    }
    refused = 0
    for method, template, needed in operations:
        url, options = _request(method, template)
        if needed == Permission.PUBLIC:
            assert served.call(method, url).status_code == 200
            continue
        for label, token in wrong.items():
            response = served.call(method, url, token, **options)
            assert response.status_code == 401, (method, url, label, response.text)
            assert set(response.json()) == {"error", "hint", "kind"}
            assert response.headers["www-authenticate"] == "Bearer"
            assert token is None or token not in response.text
            # malformed bodies are refused for the token first, too
            bad = served.call(method, url, token, content=b"{nope", params=options.get("params"))
            assert bad.status_code == 401, (method, url, label, bad.text)
            refused += 2
        for role in ROLES:
            if Permission(needed) in PERMISSIONS[Role(role)]:
                continue
            response = served.as_(role, method, url, **options)
            assert response.status_code == 403, (method, url, role, response.text)
            assert role in response.json()["error"]
            refused += 1
    assert refused > 100
    # the document itself needs a token
    assert served.call("GET", "/openapi.json").status_code == 401
    assert _state(home) == before  # nothing recorded, no token made or revoked
    log = served.log()
    for token in served.tokens.values():
        assert token not in log


def test_each_role_may_use_its_routes(story: tuple[Served, Path]) -> None:
    served, home = story
    for role in ROLES:
        me = served.as_(role, "GET", "/whoami")
        assert me.status_code == 200 and me.json()["name"] == role
        assert me.json()["role"] == role
    extra = {"type": "source", "payload": {"name": "extra", "version": "1"}}
    recorded = served.as_("recorder", "POST", "/events", json=extra)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["actor"] == "recorder"
    signed = served.as_("admin", "POST", "/checkpoints")
    assert signed.status_code == 201 and signed.json()["size"] == recorded.json()["seq"] + 1
    status = served.as_("reader", "GET", "/verify").json()
    assert status["ok"] and status["checkpoint"]["size"] == status["size"]
    # a recorder may not record a review by the back door of /events
    sneaky = {"type": "review", "payload": {"target": recorded.json()["digest"]}}
    assert served.as_("recorder", "POST", "/events", json=sneaky).status_code == 422
    _state(home)


def test_a_reviewer_quarantines_and_releases_under_their_token_name(
    story: tuple[Served, Path],
) -> None:
    served, home = story
    carol = served.tokens["carol"]
    held = served.call(
        "POST",
        "/quarantines",
        carol,
        json={
            "source": "tickets@2026-06-01",
            "trigger": "a customer complained",
            "exit_condition": "a new review",
            "allowed_use": ["incident-reproduction"],
        },
    )
    assert held.status_code == 201, held.text
    assert held.json()["actor"] == REVIEWER
    state = served.as_("reader", "GET", "/status", params={"target": "tickets@2026-06-01"})
    assert state.json()["state"] == "quarantined"
    again = served.call(
        "POST",
        "/quarantines",
        carol,
        json=BODIES["POST /quarantines"] | {"source": "tickets@2026-06-01"},
    )
    assert again.status_code == 409 and "legal moves" in again.json()["error"]
    review = served.call(
        "POST", "/reviews", carol, json={"target": "tickets@2026-06-01", "status": "accepted"}
    )
    assert review.status_code == 201 and review.json()["payload"]["reviewer"] == REVIEWER
    released = served.call(
        "POST",
        "/releases",
        carol,
        json={"source": "tickets@2026-06-01", "evidence": [review.json()["digest"]]},
    )
    assert released.status_code == 201, released.text
    assert released.json()["actor"] == REVIEWER
    assert (
        served.as_("reader", "GET", "/status", params={"target": "tickets@2026-06-01"}).json()[
            "state"
        ]
        == "accepted"
    )
    shown = served.as_("reader", "GET", f"/events/{held.json()['digest']}").json()
    assert released.json()["digest"] in shown["children"]
    ok(mlprov("verify", cwd=home))


def test_why_answers_as_the_command_line_does(story: tuple[Served, Path]) -> None:
    served, home = story
    for query, flag in (({"subject": "ann@example.com"}, "--subject"), ({"key": "2"}, "--key")):
        answer = served.as_("reader", "POST", "/why", json={"model": "ticket-router-v1", **query})
        assert answer.status_code == 200, answer.text
        value = next(iter(query.values()))
        printed = ok(mlprov("why", "--model", "ticket-router-v1", flag, value, "--json", cwd=home))
        assert answer.json() == json.loads(printed)
        proof = home / f"why-{flag[2:]}.json"
        proof.write_text(answer.text)
        ok(mlprov("check-proof", proof, cwd=home))
    for path, command in (
        ("/triage?target=ticket-router-v1", ("triage", "ticket-router-v1")),
        ("/explain?build=ticket-router-v1", ("explain", "ticket-router-v1")),
        ("/builds/ticket-router-v1", ("show", "ticket-router-v1")),
    ):
        given = served.as_("reader", "GET", path).json()
        assert given == json.loads(ok(mlprov(*command, "--json", cwd=home))) | (
            {"note": given["note"]} if "note" in given else {}
        )


def test_tokens_are_managed_by_an_admin_and_shown_once(story: tuple[Served, Path]) -> None:
    served, home = story
    made = served.as_("admin", "POST", "/tokens", json={"name": "ci-bot", "role": "recorder"})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert served.call("GET", "/whoami", token).json()["name"] == "ci-bot"
    listed = served.as_("admin", "GET", "/tokens").json()
    assert "ci-bot" in {t["name"] for t in listed}
    assert token not in json.dumps(listed)
    assert token not in ok(mlprov("tokens", "list", "--json", cwd=home))
    taken = served.as_("admin", "POST", "/tokens", json={"name": "ci-bot", "role": "reader"})
    assert taken.status_code == 409
    slash = served.as_("admin", "POST", "/tokens", json={"name": "../x", "role": "reader"})
    assert slash.status_code == 422 and "token name" in slash.json()["error"]
    revoked = served.as_("admin", "DELETE", "/tokens/ci-bot")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    granted = served.as_("reader", "GET", "/events", params={"type": "access", "name": "ci-bot"})
    assert [(e["payload"]["action"], e["actor"]) for e in granted.json()] == [
        ("revoked", "admin"),
        ("granted", "admin"),
    ]
    assert served.call("GET", "/whoami", token).status_code == 401
    assert served.as_("admin", "DELETE", "/tokens/nobody").status_code == 404
    assert token not in served.log()


def test_the_round_trip_on_each_store(store_url: str, tmp_path: Path) -> None:
    """The same server on SQLite and PostgreSQL: a reviewer's quarantine under their
    token's name, `why` as the command line answers it, and a ledger that verifies."""
    with Ledger.init(tmp_path, store=store_url) as ledger:
        build_story(ledger)
        tokens = make_tokens(ledger)
    with serving(tmp_path, store=store_url) as served:
        served.tokens = tokens
        held = served.as_("carol", "POST", "/quarantines", json=BODIES["POST /quarantines"])
        assert held.status_code == 201 and held.json()["actor"] == REVIEWER
        query = {"model": "ticket-router-v1", "subject": "ann@example.com"}
        answer = served.as_("reader", "POST", "/why", json=query)
        assert answer.status_code == 200 and answer.json()["present"] is False
        printed = mlprov(
            "why",
            "--model",
            "ticket-router-v1",
            "--subject",
            "ann@example.com",
            "--json",
            "--store",
            store_url,
            cwd=tmp_path,
        )
        assert answer.json() == json.loads(ok(printed))
        status = served.as_("reader", "GET", "/verify").json()
        assert status["ok"] and status["checkpoint"]["size"] == status["size"]
        assert served.call("GET", "/whoami").status_code == 401
        assert served.as_("revoked", "GET", "/whoami").status_code == 401
    ok(mlprov("verify", "--store", store_url, cwd=tmp_path))
