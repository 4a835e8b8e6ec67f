"""The pages people open, served beside the API: sign-in, the overview, a build or dataset
with its lineage graph, and an event. Each reads the library function its API route and
command read, so a page never disagrees with the command line.

A page is declared with `page(...)`: like an API route it names the permission it needs
(`x-mlprov-permission`, read by the security tests from `app.routes`, as pages are not in
the API's OpenAPI document), but a caller without a valid session is sent to the sign-in
page instead of answered 401, and a refusal or an error is a page, not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlprov.answers.audit import audit as run_audit
from mlprov.answers.dot import to_svg
from mlprov.answers.lineage import lineage
from mlprov.answers.triage import triage as run_triage
from mlprov.digest import shorten
from mlprov.errors import MlprovError
from mlprov.governance.review import State, status_of
from mlprov.ledger.names import find
from mlprov.server.auth import COOKIE, check, guarded, same_origin
from mlprov.server.errors import Refused
from mlprov.server.errors import status_of as http_status
from mlprov.server.html import HEADERS, digest_link, esc, layout, short, state_badge, table
from mlprov.server.state import LedgerDep, ServerState
from mlprov.server.tokens import Permission, Token, authenticate

__all__ = ["install", "page", "render", "router", "viewer"]

router = APIRouter()
READ = Permission.READ
Ref = Annotated[str, "NAME, NAME@VERSION or a digest"]


class _SignIn(Refused):
    """No valid session: the page sends the browser to the sign-in page."""


class _PageRefused(Refused):
    """A refusal met by a page: answered as a page, not as the API's JSON."""


def _need(permission: Permission) -> Callable[[Request], None]:
    def dependency(request: Request) -> None:
        try:
            check(request, permission)
        except Refused as refused:
            if refused.status == 401:
                raise _SignIn(refused.status, refused.message, refused.hint or "") from None
            raise _PageRefused(refused.status, refused.message, refused.hint or "") from None

    return dependency


def page(
    router: APIRouter, method: str, path: str, permission: Permission, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a page that needs `permission` (public only for the sign-in page)."""
    return guarded(
        router, method, path, permission, need=_need, response_class=HTMLResponse,
        include_in_schema=False, **options,
    )  # fmt: skip


def viewer(request: Request) -> Token | None:
    """The signed-in token of a page the dependency let through."""
    found: Token | None = getattr(request.state, "token", None)
    return found


def _who(request: Request) -> tuple[str, str] | None:
    token = viewer(request)
    return (token.name, token.role.value) if token else None


def _error(request: Request, status: int, message: str, hint: str | None) -> HTMLResponse:
    words = {403: "Not allowed", 404: "Not found", 409: "Refused", 422: "Not understood"}
    title = words.get(status, "Something went wrong")
    hint_html = f"<p>{esc(hint)}</p>" if hint else ""
    body = (
        f'<h1>{esc(title)}</h1><div class="error" role="alert"><p>{esc(message)}</p>'
        f"{hint_html}</div>"
    )
    body += '<p><a href="/">Back to the overview</a></p>'
    return HTMLResponse(layout(title, body, _who(request)), status_code=status, headers=HEADERS)


def render(request: Request, title: str, make: Callable[[], str]) -> HTMLResponse:
    """The page `make()` writes, or the error page of the mlprov error it raised."""
    try:
        body = make()
    except MlprovError as exc:
        return _error(request, http_status(exc), exc.message, exc.hint)
    return HTMLResponse(layout(title, body, _who(request)), headers=HEADERS)


def install(app: FastAPI) -> None:
    """Answer a page's refusals as pages (and a missing session with the sign-in page)."""

    async def sign_in(_: Request, __: Exception) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _PageRefused)
        return _error(request, exc.status, exc.message, exc.hint)

    app.add_exception_handler(_SignIn, sign_in)
    app.add_exception_handler(_PageRefused, refused)


# -- signing in and out ----------------------------------------------------------------------


def _sign_in_page(message: str | None = None, status: int = 200) -> HTMLResponse:
    alert = f'<div class="error" role="alert">{esc(message)}</div>' if message else ""
    body = (
        "<h1>Sign in</h1>"
        '<p>Paste a token made by <code>mlprov tokens create NAME --role ROLE</code>. It is '
        "kept in a cookie this site alone can read, until you sign out.</p>"
        f'{alert}<form class="stack" method="post" action="/sign-in">'
        '<label>Token <input name="token" type="password" maxlength="200" autocomplete="off" '
        'required autofocus></label><button type="submit">Sign in</button></form>'
    )
    return HTMLResponse(layout("Sign in", body), status_code=status, headers=HEADERS)


@page(router, "GET", "/sign-in", Permission.PUBLIC)
def sign_in_form() -> HTMLResponse:
    """The sign-in page: a token in, a session cookie out."""
    return _sign_in_page()


@page(router, "POST", "/sign-in", Permission.PUBLIC)
def sign_in(request: Request, token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Check the token and keep it in an HttpOnly, SameSite=Strict cookie."""
    if not same_origin(request):
        return _sign_in_page("Sign in from this server's own page.", 403)
    state: ServerState = request.app.state.mlprov
    found, why = authenticate(state.tokens, token.strip()) if token.strip() else (None, "")
    if found is None:
        said = f"That token was refused: {why}." if why else "Paste a token to sign in."
        return _sign_in_page(said, 401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@page(router, "POST", "/sign-out", READ)
def sign_out() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- the overview ----------------------------------------------------------------------------


def _percent(score: float | None) -> str:
    return "none yet" if score is None else f"{score:.0%}"


@page(router, "GET", "/", READ)
def overview(request: Request, ledger: LedgerDep) -> HTMLResponse:
    """The audit in numbers, the sources and their review states, the quarantines, the
    builds and datasets, and whether the ledger verifies with its newest checkpoint."""

    def make() -> str:
        report = ledger.verify()
        summary = run_audit(ledger).summary
        stored = ledger.checkpoints()
        verdict = (
            '<span class="badge pass">verifies</span>'
            if report.ok
            else f'<span class="badge fail">does not verify: {len(report.problems)} '
            "problem(s)</span>"
        )
        if stored:
            cp = stored[-1].checkpoint
            signers = ", ".join(s.name for s in stored[-1].signatures)
            newest = (
                f"the newest signed checkpoint covers {cp.size:,} of {report.size:,} events "
                f"(signed by {esc(signers)}; root <code title=\"{cp.root.hex()}\">"
                f"{shorten(cp.root.hex(), 16)}</code>)"
            )
        else:
            newest = "no signed checkpoint yet: run <code>mlprov checkpoint</code>"
        cards = "".join(
            f'<div class="card"><span class="muted">{esc(what)}</span><b>{esc(value)}</b></div>'
            for what, value in (
                ("events", f"{summary.size:,}"),
                ("sources complete", f"{summary.sources_complete} of {summary.sources}"),
                ("builds frozen", f"{summary.builds_frozen} of {summary.builds}"),
                ("datasets", f"{summary.datasets:,}"),
                ("covered by a checkpoint", f"{summary.covered:,}"),
            )
        )
        sources = [status_of(ledger, e) for e in ledger.entries(type="source")]
        source_rows = [
            (
                digest_link(str(s.target.digest), s.label),
                state_badge(s.state.value),
                esc(s.target.event.payload.get("rights_basis") or "none recorded"),
                esc(s.review.event.payload.get("reviewer")) if s.review else "—",
            )
            for s in sources
        ]
        held = [s for s in sources if s.state is State.QUARANTINED and s.quarantine]
        quarantine_rows = [
            (
                digest_link(str(s.target.digest), s.label),
                esc(s.quarantine.event.payload.get("trigger", "")) if s.quarantine else "",
                digest_link(str(s.quarantine.digest)) if s.quarantine else "",
            )
            for s in held
        ]
        built = [
            (
                f'<a href="/builds/{esc(e.digest)}" title="{esc(e.digest)}">'
                f"{esc(e.event.name)}</a>",
                esc(e.event.recorded_at),
                esc(e.event.actor),
            )
            for e in ledger.entries(type="build", newest_first=True)
        ]
        sets = [
            (
                f'<a href="/datasets/{esc(e.digest)}" title="{esc(e.digest)}">'
                f"{esc(e.event.name)}</a>",
                esc(e.event.payload.get("version") or "—"),
                esc(e.event.recorded_at),
            )
            for e in ledger.entries(type="dataset", newest_first=True)
        ]
        return (
            f"<h1>Ledger {esc(ledger.origin)}</h1>"
            f"<p>{verdict} — {report.size:,} events; {newest}.</p>"
            f'<div class="cards">{cards}</div>'
            f"<p>Sources complete: {_percent(summary.source_score)}; "
            f"builds with a frozen manifest: {_percent(summary.build_score)}.</p>"
            "<h2>Sources</h2>"
            + table(("Source", "Review state", "Rights basis", "Reviewer"), source_rows,
                    "No source is recorded yet.")
            + "<h2>Quarantines</h2>"
            + table(("Source", "Trigger", "Quarantine event"), quarantine_rows,
                    "No source is quarantined.")
            + "<h2>Builds</h2>"
            + table(("Build", "Recorded", "By"), built, "No build is recorded yet.")
            + "<h2>Datasets</h2>"
            + table(("Dataset", "Version", "Recorded"), sets, "No dataset is recorded yet.")
        )  # fmt: skip

    return render(request, "Overview", make)


# -- a build or a dataset, and an event ------------------------------------------------------


def _graph(ledger: LedgerDep, kind: str, ref: str) -> str:
    found = find(ledger, ref, (kind,))
    entry = found.entry
    graph = lineage(ledger, entry)
    try:
        svg = to_svg(graph, "/events/{digest}").decode()
        drawn = f'<figure class="graph">{svg[svg.index("<svg") :]}</figure>'
    except MlprovError as exc:  # Graphviz missing: the rest of the page still reads
        drawn = f'<div class="error" role="alert">{esc(exc.message)} {esc(exc.hint or "")}</div>'
    rows = run_triage(ledger, entry).rows
    triage_rows = [
        (esc(r.question), state_badge(r.answer), esc(r.evidence), esc(r.risk)) for r in rows
    ]
    step_rows = [
        (
            esc(n.step if n.step is not None else "—"),
            digest_link(str(n.event), n.label) if n.event else esc(n.label),
            esc(n.step_kind or "—"),
            esc(dict(n.details).get("records", "not recorded")),
        )
        for n in graph.steps
    ]
    return (
        f"<h1>{esc(kind.capitalize())} {esc(entry.event.name)}</h1>"
        f"<p>Event {digest_link(str(entry.digest))} recorded {esc(entry.event.recorded_at)} "
        f"by {esc(entry.event.actor)}.</p>"
        "<h2>Lineage</h2><p class=\"muted\">Each node links to its event.</p>" + drawn
        + "<h2>Triage</h2>"
        + table(("Question", "Answer", "Evidence", "Risk"), triage_rows, "No triage row.")
        + "<h2>Steps and their exclusion reports</h2>"
        + table(("Step", "Name", "Kind", "Records"), step_rows, "No step is recorded.")
    )  # fmt: skip


@page(router, "GET", "/builds/{ref:path}", READ)
def build_page(request: Request, ledger: LedgerDep, ref: str) -> HTMLResponse:
    """A build: its lineage graph, its triage and its steps' exclusion reports."""
    return render(request, f"Build {ref}", lambda: _graph(ledger, "build", ref))


@page(router, "GET", "/datasets/{ref:path}", READ)
def dataset_page(request: Request, ledger: LedgerDep, ref: str) -> HTMLResponse:
    """A dataset: its lineage graph, its triage and its steps' exclusion reports."""
    return render(request, f"Dataset {ref}", lambda: _graph(ledger, "dataset", ref))


@page(router, "GET", "/events/{digest}", READ)
def event_page(request: Request, ledger: LedgerDep, digest: str) -> HTMLResponse:
    """One event, as `mlprov show` prints it, its parents and children linked."""

    def make() -> str:
        entry = ledger.get(digest)
        shown = entry.to_json()
        children = [str(c.digest) for c in ledger.children(entry.digest)]
        facts = [
            ("Digest", f'<code>{esc(entry.digest)}</code>'),
            ("Type", esc(entry.event.type.value)),
            ("Name", esc(entry.event.name or "—")),
            ("Actor", esc(entry.event.actor)),
            ("Recorded", esc(entry.event.recorded_at)),
            ("Sequence", esc(entry.seq)),
        ]
        parents = [digest_link(str(p)) for p in entry.event.parents]
        payload = json.dumps(shown.get("payload"), indent=2, ensure_ascii=False, sort_keys=True)
        return (
            f"<h1>{esc(entry.event.type.value.capitalize())} "
            f"{esc(entry.event.name or short(str(entry.digest)))}</h1>"
            + table(("Fact", "Value"), facts, "")
            + "<h2>Parents</h2>"
            + ("<ul>" + "".join(f"<li>{p}</li>" for p in parents) + "</ul>" if parents
               else '<p class="muted">None: this event stands on its own.</p>')
            + "<h2>Children</h2>"
            + ("<ul>" + "".join(f"<li>{digest_link(c)}</li>" for c in children) + "</ul>"
               if children else '<p class="muted">No event names this one yet.</p>')
            + f"<h2>Payload</h2><pre>{esc(payload)}</pre>"
        )  # fmt: skip

    return render(request, f"Event {short(digest)}", make)
