"""Bad input over HTTP: every malformed, oversized or unknown request is refused with a
clear 4xx and the one error body, and nothing is recorded; then the whole API is fuzzed
from its own OpenAPI document (schemathesis): no 5xx, every answer as documented."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.serving import Served, build_story, make_tokens, serving
from tests.test_cli import MLPROV, cli_env

from mlprov.facade import Ledger
from mlprov.server.auth import PERMISSION_KEY
from mlprov.server.tokens import PERMISSIONS, Permission, Role, create_token

pytestmark = pytest.mark.skipif(MLPROV is None, reason="the mlprov console script is not installed")

BUILD = "ticket-router-v1"


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    home = tmp_path_factory.mktemp("inputs")
    with Ledger.init(home) as ledger:
        build_story(ledger)
        tokens = make_tokens(ledger)
        # the fuzzer's own tokens, with names it cannot guess and so cannot revoke
        for role in Role:
            name = f"fuzz-{role}-{secrets.token_hex(8)}"
            tokens[f"fuzz-{role}"] = create_token(ledger, name, role, actor="ops")[0]
    with serving(home) as served:
        served.tokens = tokens
        yield served, home


def _size_and_verdict(home: Path) -> tuple[int, bool]:
    with Ledger.open(str(home / ".mlprov" / "ledger.db")) as ledger:
        return ledger.size, ledger.verify().ok


JSON = {"Content-Type": "application/json"}
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # (role, method, path, request options, status, words in the error)
    ("carol", "POST", "/reviews", {"content": b'{"target": ', "headers": JSON},
     422, "not valid JSON"),
    ("carol", "POST", "/reviews", {"content": b"[1, 2]", "headers": JSON}, 422, "JSON object"),
    ("carol", "POST", "/reviews", {"json": {"target": 5, "status": "accepted"}}, 422, "target"),
    ("carol", "POST", "/reviews", {"json": {"target": "x", "status": "fine"}}, 422, "status"),
    ("carol", "POST", "/reviews", {"json": {"target": "x", "status": "accepted", "by": "me"}},
     422, "by"),
    ("carol", "POST", "/reviews", {"json": {"target": "nope@1", "status": "accepted"}},
     404, "nope@1"),
    ("carol", "POST", "/reviews",
     {"json": {"target": "tickets@2026-06-01", "status": "accepted_with_limits"}}, 409, "limit"),
    ("carol", "POST", "/quarantines",
     {"json": {"source": "ticket-training", "trigger": "t", "exit_condition": "c"}},
     422, "dataset"),
    ("carol", "POST", "/releases",
     {"json": {"source": "tickets@2026-06-01", "evidence": ["ticket-training"]}}, 409, "accepted"),
    ("carol", "POST", "/releases", {"json": {"source": "tickets@2026-06-01", "evidence": []}},
     422, "evidence"),
    ("reader", "POST", "/why", {"json": {"model": BUILD}}, 422, "exactly one"),
    ("reader", "POST", "/why", {"json": {"model": BUILD, "key": "1", "digest": "ab"}},
     422, "exactly one"),
    ("reader", "POST", "/why", {"json": {"model": "no-such-model", "key": "1"}},
     404, "no-such-model"),
    ("reader", "POST", "/why", {"json": {"model": BUILD, "digest": "zz"}}, 422, "digest"),
    ("reader", "GET", "/builds/no-such-build", {}, 404, "no-such-build"),
    ("reader", "GET", "/sources/tickets@1999", {}, 404, "tickets@2026-06-01"),
    ("reader", "GET", "/builds/tickets@2026-06-01", {}, 422, "source"),
    ("reader", "GET", "/events/" + "0" * 64, {}, 404, "no event"),
    ("reader", "GET", "/events/xyz", {}, 422, "not a digest"),
    ("reader", "GET", "/events/" + "0" * 79, {}, 422, "not a digest"),
    ("reader", "GET", "/events", {"params": {"type": "bogus"}}, 422, "bogus"),
    ("reader", "GET", "/events", {"params": {"limit": "0"}}, 422, "limit"),
    ("reader", "GET", "/events", {"params": {"since": "yesterday"}}, 422, "not a time"),
    ("reader", "GET", "/triage", {}, 422, "target"),
    ("reader", "GET", "/no-such-route", {}, 404, "not found"),
    ("reader", "DELETE", "/why", {}, 405, "method not allowed"),
    ("recorder", "POST", "/events", {"json": {"type": "source", "payload": {"name": "a b"}}},
     422, "name"),
    ("recorder", "POST", "/events",
     {"json": {"type": "dataset", "payload": {"name": "d"}, "parents": ["sha256:" + "1" * 64]}},
     409, "not in the ledger"),
    ("admin", "POST", "/tokens", {"json": {"name": "x", "role": "root"}}, 422, "role"),
    ("admin", "POST", "/tokens", {"json": {"name": "x", "role": "reader", "expires": "1999-01-01"}},
     422, "already past"),
]


@pytest.mark.parametrize(("role", "method", "path", "options", "status", "words"), CASES)
def test_bad_input_is_refused_clearly_and_records_nothing(
    story: tuple[Served, Path],
    role: str,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    words: str,
) -> None:
    served, home = story
    before = _size_and_verdict(home)
    response = served.as_(role, method, path, **options)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "hint", "kind"}
    assert words.lower() in body["error"].lower(), body
    assert "Traceback" not in response.text and str(home) not in response.text
    assert _size_and_verdict(home) == before


def test_a_huge_body_is_refused_before_any_route(story: tuple[Served, Path]) -> None:
    served, home = story
    before = _size_and_verdict(home)
    huge = b'{"target": "' + b"x" * (2 * 1024 * 1024) + b'", "status": "accepted"}'
    declared = served.as_("carol", "POST", "/reviews", content=huge, headers=JSON)
    assert declared.status_code == 413 and "larger than" in declared.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(40):
            yield b"x" * 65536

    streamed = served.as_("carol", "POST", "/reviews", content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    assert _size_and_verdict(home) == before


def test_serve_without_its_extra_names_it(tmp_path: Path) -> None:
    """Without fastapi, `mlprov serve` is exit 6 naming mlprov[server]."""
    hide = "import sys; sys.modules['fastapi'] = None; from mlprov.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "serve"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 6, result.stderr
    assert "mlprov[server]" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_an_address_in_use(story: tuple[Served, Path]) -> None:
    served, home = story
    port = served.base.split(":")[-1].split("/")[0]
    result = subprocess.run(
        [sys.executable, "-c", "from mlprov.cli import main; main()", "serve", "--port", port],
        cwd=home,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


# -- the whole API, fuzzed from its own document ---------------------------------------------

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture(scope="module")
def api_schema(story: tuple[Served, Path]) -> Any:
    served, _ = story
    document = served.as_("reader", "GET", "/openapi.json").json()
    return schemathesis.openapi.from_dict(document)


fuzzed = schemathesis.pytest.from_fixture("api_schema")


@fuzzed.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_holds_to_its_document(case: Any, story: tuple[Served, Path]) -> None:
    served, _ = story
    needed = Permission(case.operation.definition.raw[PERMISSION_KEY])
    role = next(r for r in Role if needed in PERMISSIONS[r] or needed is Permission.PUBLIC)
    base = served.base.removesuffix("/api/v1")
    case.call_and_validate(
        base_url=base,
        headers={"Authorization": f"Bearer {served.tokens[f'fuzz-{role}']}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
