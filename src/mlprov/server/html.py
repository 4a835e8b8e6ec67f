"""The pages' HTML: one layout, its stylesheet, and the small pieces every page shares.

Everything is written here (no template engine, no script, nothing fetched): each value
from the ledger passes through `esc`, so a recorded name can never add markup. An id is
shown whole or shortened with an ellipsis, its whole value in the `title`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from mlprov.digest import Digest

__all__ = ["HEADERS", "digest_link", "esc", "layout", "state_badge", "table"]

#: Sent with every page: no script may run, nothing is loaded from elsewhere, no other
#: site may frame a page, and a page (a `why` answer names a person) is never cached.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5c5f66; --line: #e3e5e8;
        --accent: #1864ab; --ok: #2b8a3e; --bad: #c92a2a; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: var(--ink); background: #fff; }
header { background: #f5f6f8; border-bottom: 1px solid var(--line); }
header .bar, main { max-width: 78rem; margin: 0 auto; padding: 0 1.25rem; }
header .bar { display: flex; gap: 1.25rem; align-items: center; min-height: 3rem;
              flex-wrap: wrap; }
header .brand { font-weight: 700; color: var(--ink); text-decoration: none; }
nav a { margin-right: 1rem; }
header .who { margin-left: auto; color: var(--muted); display: flex; gap: .6rem;
              align-items: center; }
main { padding-top: 1.25rem; padding-bottom: 3rem; }
h1 { font-size: 1.45rem; margin: .3rem 0 .8rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; padding-bottom: .2rem;
     border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
textarea:focus-visible { outline: 3px solid #74c0fc; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem;
         border-bottom: 1px solid var(--line); }
th { background: #f5f6f8; font-weight: 600; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #f8f9fa; border: 1px solid var(--line); padding: .75rem; overflow: auto;
      white-space: pre-wrap; word-break: break-word; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr));
         gap: .75rem; margin: .5rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card b { display: block; font-size: 1.35rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: 13px;
         border: 1px solid; white-space: nowrap; }
.accepted { background: #d3f9d8; border-color: #2b8a3e; color: #1b5e20; }
.accepted_with_limits { background: #fff3bf; border-color: #e67700; color: #7a4100; }
.quarantined { background: #ffd8a8; border-color: #d9480f; color: #7c2d12; }
.rejected, .no, .fail { background: #ffc9c9; border-color: #c92a2a; color: #7f1d1d; }
.never_reviewed, .unknown { background: #f1f3f5; border-color: #868e96; color: #343a40; }
.yes, .pass { background: #d3f9d8; border-color: #2b8a3e; color: #1b5e20; }
.partially { background: #fff3bf; border-color: #e67700; color: #7a4100; }
.notice { border-left: 4px solid var(--accent); background: #e7f5ff; padding: .6rem .9rem;
          margin: .8rem 0; }
.error { border-left: 4px solid var(--bad); background: #fff5f5; padding: .6rem .9rem;
         margin: .8rem 0; }
.graph { border: 1px solid var(--line); border-radius: 6px; overflow: auto; padding: .5rem;
         background: #fff; }
.graph svg { max-width: 100%; height: auto; }
form.stack { display: grid; gap: .7rem; max-width: 40rem; margin: .5rem 0 1rem; }
form.stack label { display: grid; gap: .2rem; font-weight: 600; }
form.stack .help { font-weight: 400; color: var(--muted); font-size: 13px; }
input, select, textarea { font: inherit; font-weight: 400; padding: .4rem .5rem;
                          border: 1px solid #adb5bd; border-radius: 4px; width: 100%; }
button { font: inherit; padding: .4rem .9rem; border-radius: 4px; cursor: pointer;
         border: 1px solid var(--accent); background: var(--accent); color: #fff;
         justify-self: start; }
button.quiet { background: #fff; color: var(--accent); }
ol.sections { padding-left: 1.2rem; }
"""


def esc(value: Any) -> str:
    """Recorded text, safe inside HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def short(digest: str) -> str:
    """`sha256:` and the first hex digits, with an ellipsis; or the value whole."""
    try:
        return f"sha256:{Digest(digest).short}"
    except (ValueError, TypeError):
        return digest


def digest_link(digest: str | None, label: str | None = None) -> str:
    """A link to an event's page, its whole digest in the title."""
    if not digest:
        return '<span class="muted">none</span>'
    shown = esc(label) if label else f"<code>{esc(short(digest))}</code>"
    return f'<a href="/events/{esc(digest)}" title="{esc(digest)}">{shown}</a>'


def state_badge(state: str) -> str:
    """A review state or answer, its words written out (never colour alone)."""
    return f'<span class="badge {esc(state)}">{esc(state.replace("_", " "))}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """A table of cells already made safe; `empty` said in its place when there is no row."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def layout(title: str, body: str, who: tuple[str, str] | None = None) -> str:
    """A whole page; `who` is the signed-in token's (name, role)."""
    if who is None:
        bar = ""
    else:
        bar = (
            '<nav aria-label="Pages"><a href="/">Overview</a><a href="/why">Why</a>'
            '<a href="/review">Review</a></nav>'
            f'<div class="who"><span>Signed in as <b>{esc(who[0])}</b> ({esc(who[1])})</span>'
            '<form method="post" action="/sign-out"><button class="quiet" type="submit">'
            "Sign out</button></form></div>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · mlprov</title><style>{_CSS}</style></head><body>"
        f'<header><div class="bar"><a class="brand" href="/">mlprov</a>{bar}</div></header>'
        f"<main>{body}</main></body></html>"
    )
