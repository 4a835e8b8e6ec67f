"""The pages with forms: `why` (its answer, and its proof file to download) and the
reviewer's quarantine and release. Each form posts, so a person's id never lands in a URL,
and calls the library function the API route and the command call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mlprov.answers.why import to_json as why_json
from mlprov.answers.why import why as run_why
from mlprov.answers.why.render import sections
from mlprov.errors import InputError
from mlprov.governance.review import Move, State, record_quarantine, record_release, status_of
from mlprov.server.html import HEADERS, digest_link, esc, state_badge, table
from mlprov.server.pages import page, render, viewer
from mlprov.server.state import LedgerDep, signing
from mlprov.server.tokens import Permission

__all__ = ["router"]

router = APIRouter()
Field = Annotated[str, Form(max_length=500)]
Text = Annotated[str, Form(max_length=2000)]


def _why_form(model: str = "", subject: str = "", key: str = "") -> str:
    return (
        '<form class="stack" method="post" action="/why">'
        f'<label>Model (a build) <input name="model" maxlength="500" value="{esc(model)}" required '
        'placeholder="NAME, NAME@VERSION or a digest"></label>'
        f'<label>Subject id <span class="help">a person\'s id, such as an email address'
        f'</span><input name="subject" maxlength="500" value="{esc(subject)}" '
        'autocomplete="off"></label><label>Or a record key '
        f'<input name="key" maxlength="500" value="{esc(key)}" autocomplete="off"></label>'
        '<button type="submit">Ask</button></form>'
    )


def _query(model: str, subject: str, key: str) -> dict[str, str | None]:
    model, subject, key = model.strip(), subject.strip(), key.strip()
    if not model:
        raise InputError("name the model (a build) to ask about", "type a build's name")
    if bool(subject) == bool(key):
        raise InputError(
            "give a subject id or a record key, not both and not neither",
            "fill in one of the two fields",
        )
    return {"subject": subject or None, "key": key or None}


_HEX = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_SHORT = re.compile(r"\b([0-9a-f]{8})…")


class _Ids:
    """The answer's text names digests by their first digits and an ellipsis: each is given
    its whole value as a title and, for an event, a link to it."""

    def __init__(self, doc: Any) -> None:
        self.whole: dict[str, str] = {}
        self.events: set[str] = set()
        self._walk(doc, "")

    def _walk(self, value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._walk(v, k)
        elif isinstance(value, list):
            for v in value:
                self._walk(v, key)
        elif isinstance(value, str) and (found := _HEX.fullmatch(value)):
            self.whole[found.group(1)[:8]] = value
            if key in ("event", "source_event"):
                self.events.add(value)

    def shown(self, line: str) -> str:
        def one(m: re.Match[str]) -> str:
            whole = self.whole.get(m.group(1))
            if whole is None:
                return m.group(0)
            if whole in self.events:
                return digest_link(whole)
            return f'<code title="{esc(whole)}">{m.group(0)}</code>'

        return _SHORT.sub(one, line)


@page(router, "GET", "/why", Permission.READ)
def why_form(request: Request) -> HTMLResponse:
    """The `why` form: is this person or record in the model's training set?"""
    body = (
        "<h1>Why is it in the model?</h1><p>Is a person or a record in the training set "
        "of a model, how did it get there or where was it removed, and why.</p>" + _why_form()
    )
    return render(request, "Why", lambda: body)


@page(router, "POST", "/why", Permission.READ)
def why_answer(
    request: Request, ledger: LedgerDep, model: Field = "", subject: Field = "", key: Field = ""
) -> HTMLResponse:
    """`mlprov why`: the answer, its path and cause, and a button for its proof file."""

    def make() -> str:
        answer = run_why(ledger, model.strip(), **_query(model, subject, key))
        ids = _Ids(why_json(answer))
        parts = []
        for title, lines in sections(answer):
            items = "".join(f"<li>{ids.shown(esc(x.strip()))}</li>" for x in lines)
            parts.append(f"<h2>{esc(title)}</h2><ul>{items}</ul>")
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{esc(v)}">'
            for n, v in (("model", model), ("subject", subject), ("key", key))
        )
        state = {True: "yes", False: "no", None: "unknown"}[answer.present]
        return (
            f'<h1>Why: <span class="badge {state}">{state}</span></h1>'
            + "".join(parts)
            + '<form method="post" action="/why/proof">' + hidden
            + '<button type="submit">Download the proof (JSON)</button></form>'
            + '<p class="muted">Anyone can check it with <code>mlprov check-proof FILE</code>.'
            + "</p><h2>Ask again</h2>" + _why_form(model, subject, key)
        )  # fmt: skip

    return render(request, "Why", make)


@page(router, "POST", "/why/proof", Permission.READ)
def why_proof(
    request: Request, ledger: LedgerDep, model: Field = "", subject: Field = "", key: Field = ""
) -> Response:
    """The answer as `mlprov why --json` writes it: the file `mlprov check-proof` checks."""
    proof: list[str] = []

    def make() -> str:
        answer = run_why(ledger, model.strip(), **_query(model, subject, key))
        proof.append(json.dumps(why_json(answer), indent=2, ensure_ascii=False) + "\n")
        return ""

    shown = render(request, "Why", make)
    if not proof:
        return shown
    return Response(
        proof[0],
        media_type="application/json",
        headers=HEADERS | {"Content-Disposition": 'attachment; filename="why-proof.json"'},
    )


# -- the reviewer's forms --------------------------------------------------------------------


def _uses(text: str) -> list[str]:
    return [u for u in text.replace(",", " ").split() if u]


@page(router, "GET", "/review", Permission.READ)
def review_page(request: Request, ledger: LedgerDep) -> HTMLResponse:
    """Quarantine a source or release one: the forms, for a reviewer only."""

    def make() -> str:
        states = [status_of(ledger, e) for e in ledger.entries(type="source")]
        rows = [
            (digest_link(str(s.target.digest), s.label), state_badge(s.state.value))
            for s in states
        ]
        head = "<h1>Review</h1>" + table(("Source", "Review state"), rows, "No source yet.")
        token = viewer(request)
        if token is None or not token.allows(Permission.REVIEW):
            role = token.role.value if token else "none"
            return head + (
                f'<div class="notice">Your token\'s role ({esc(role)}) may read but not '
                "record quarantines or releases; a reviewer's token may.</div>"
            )
        can_hold = [s.label for s in states if Move.QUARANTINE in s.moves]
        held = [s.label for s in states if s.state is State.QUARANTINED]

        def options(names: list[str]) -> str:
            return "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)

        quarantine = (
            "<h2>Quarantine a source</h2>"
            '<form class="stack" method="post" action="/review/quarantine">'
            f'<label>Source <select name="source" required>{options(can_hold)}</select></label>'
            '<label>Trigger <span class="help">what happened</span>'
            '<input name="trigger" maxlength="2000" required></label>'
            '<label>Exit condition <span class="help">what must be recorded to release it'
            '</span><input name="exit_condition" maxlength="2000" required></label>'
            '<label>Allowed uses <span class="help">separated by spaces or commas, such as '
            'incident-reproduction</span><input name="allowed_use" maxlength="2000"></label>'
            '<button type="submit">Record the quarantine</button></form>'
        )
        release = (
            "<h2>Release a source</h2>"
            + ('<p class="muted">No source is quarantined.</p>' if not held else
               '<form class="stack" method="post" action="/review/release">'
               f'<label>Source <select name="source" required>{options(held)}</select></label>'
               '<label>Evidence <span class="help">events recorded after the quarantine '
               "that meet its exit condition: names or digests, separated by spaces</span>"
               '<input name="evidence" maxlength="2000" required></label>'
               '<label>Note <textarea name="note" rows="2" maxlength="2000"></textarea></label>'
               '<button type="submit">Record the release</button></form>')
        )  # fmt: skip
        return head + quarantine + release

    return render(request, "Review", make)


@page(router, "POST", "/review/quarantine", Permission.REVIEW)
def quarantine(
    request: Request,
    ledger: LedgerDep,
    source: Field = "",
    trigger: Text = "",
    exit_condition: Text = "",
    allowed_use: Text = "",
) -> Response:
    """`mlprov quarantine`, recorded under the token's name; then the new event's page."""
    token = viewer(request)
    assert token is not None  # the page's permission let a reviewer through

    def make() -> str:
        with signing(ledger):
            entry = record_quarantine(
                ledger,
                source.strip(),
                trigger,
                exit_condition,
                allowed_use=_uses(allowed_use),
                actor=token.name,
            )
        return str(entry.digest)

    return _recorded(request, "Quarantine", make)


@page(router, "POST", "/review/release", Permission.REVIEW)
def release(
    request: Request, ledger: LedgerDep, source: Field = "", evidence: Text = "", note: Text = ""
) -> Response:
    """`mlprov release`, recorded under the token's name; then the new event's page."""
    token = viewer(request)
    assert token is not None

    def make() -> str:
        with signing(ledger):
            entry = record_release(
                ledger, source.strip(), _uses(evidence), note=note.strip() or None, actor=token.name
            )
        return str(entry.digest)

    return _recorded(request, "Release", make)


def _recorded(request: Request, title: str, make: Callable[[], str]) -> Response:
    """The recorded event's page, or the error page of the refusal."""
    recorded: list[str] = []

    def run() -> str:
        recorded.append(make())
        return ""

    shown = render(request, title, run)
    if recorded:
        return RedirectResponse(f"/events/{recorded[0]}", status_code=303)
    return shown
