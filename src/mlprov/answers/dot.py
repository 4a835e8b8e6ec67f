"""The lineage graph as Graphviz DOT text, and as SVG laid out by Graphviz's `dot`.

Sources stand on top and the build at the bottom, so the steps read in order from top to
bottom (or, with `direction="LR"`, from left to right); each arrow points back to what a
thing came from (PROV's direction: the build used its manifest, a step used a source).
Shapes tell the kinds apart (a cylinder for a dataset, a folder for a source, a tab for a
list, a note for the manifest, a 3-D box for the build, a box with cut corners for a
quarantine or release); fill colours tell the review states apart, and every state is
also written on its node, so nothing rests on colour alone. A failed step is dashed and
red, a build forced past a gate and a list with a newer version have a thick red border,
and a state that changed since the build is the border's colour and a line "now …". A
legend says so.

Every piece of recorded text (names, versions, parameters, reviewers, errors) goes into
an HTML-like label escaped as XML, or into a quoted attribute escaped as DOT: no name can
end a label, add an attribute or a node, or break the layout. With `href` (a template
holding `{digest}`, such as `/events/{digest}`, or a function of the digest) each node
links to its event; its tooltip holds the full digest either way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import quote

from mlprov.answers.graphviz import TIMEOUT, render
from mlprov.answers.lineage import Edge, Lineage, Node, NodeKind
from mlprov.digest import Digest
from mlprov.errors import InputError

__all__ = ["REVIEW_COLOURS", "Href", "to_dot", "to_svg"]

#: A link to an event: a template holding `{digest}` (`/events/{digest}`) or a function.
Href = str | Callable[[Digest], str]
Direction = Literal["LR", "TB"]

#: Fill and border of each review state.
REVIEW_COLOURS: Final = {
    "accepted": ("#d3f9d8", "#2b8a3e"),
    "accepted_with_limits": ("#fff3bf", "#e67700"),
    "quarantined": ("#ffd8a8", "#d9480f"),
    "rejected": ("#ffc9c9", "#c92a2a"),
    "never_reviewed": ("#f1f3f5", "#868e96"),
}
_RED, _INK, _GREY = "#c92a2a", "#343a40", "#868e96"
_SHAPES: Final[dict[NodeKind, str]] = {
    "build": "box3d",
    "manifest": "note",
    "dataset": "cylinder",
    "step": "box",
    "source": "folder",
    "list": "tab",
    "eval_set": "cylinder",
    "quarantine": "box",
    "release": "box",
}
_CAPTIONS: Final[dict[NodeKind, str]] = {
    "build": "BUILD",
    "manifest": "MANIFEST",
    "dataset": "DATASET",
    "step": "STEP",
    "source": "SOURCE",
    "list": "LIST A STEP USED",
    "eval_set": "EVAL SET",
    "quarantine": "QUARANTINE",
    "release": "RELEASE",
}
_FILLS: Final[dict[str, tuple[str, str]]] = {
    "build": ("#f8f9fa", _INK),
    "manifest": ("#ffffff", "#495057"),
    "transform": ("#e7f5ff", "#1864ab"),
    "exclusion": ("#f3f0ff", "#5f3dc4"),
    "failed": ("#fff5f5", _RED),
    "quarantine": REVIEW_COLOURS["quarantined"],
    "release": REVIEW_COLOURS["accepted"],
    "unknown": ("#ffffff", _GREY),
}
_WIDTH = 56  # characters of one value on a node; the JSON has it whole
# What XML 1.0 cannot hold, and the other controls: dropped from labels.
_UNFIT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def to_dot(graph: Lineage, href: Href | None = None, *, direction: Direction = "TB") -> str:
    """The DOT text of `graph` (see the module doc). `direction` TB puts the sources on
    top and the build at the bottom; LR puts the sources on the left."""
    link = _linker(href)
    lines = [
        "digraph lineage {",
        f"  graph [rankdir={'RL' if direction == 'LR' else 'BT'}, nodesep=0.25, ranksep=0.45,"
        ' fontname="Helvetica", bgcolor="white", pad=0.2];',
        '  node [fontname="Helvetica", fontsize=11, margin="0.12,0.06", penwidth=1.4];',
        '  edge [fontname="Helvetica", fontsize=9, color="#495057", arrowsize=0.7];',
    ]
    steps = [n for n in graph.nodes if n.kind == "step" and n.status != "failed"]
    lines += (f"  {_node(n, n.id == graph.target, link)}" for n in graph.nodes)
    lines += (f"  {_edge(e)}" for e in graph.edges)
    # the steps in order, even where two of them share no edge (a later step points back)
    lines += (
        f'  "{b.id}" -> "{a.id}" [style=invis, weight=2];'
        for a, b in itertools.pairwise(steps)
        if not any({e.tail, e.head} == {a.id, b.id} for e in graph.edges)
    )
    lines += [f"  {_legend()}", "}", ""]
    return "\n".join(lines)


def to_svg(
    graph: Lineage,
    href: Href | None = None,
    *,
    direction: Direction = "TB",
    timeout: float = TIMEOUT,
) -> bytes:
    """`graph` laid out by Graphviz's `dot` as SVG (MissingProgramError without Graphviz)."""
    return render(to_dot(graph, href, direction=direction), "svg", timeout=timeout)


# -- escaping --------------------------------------------------------------------------------


def _text(value: str, width: int = _WIDTH) -> str:
    """Recorded text for a label: one line, escaped for XML and for Graphviz, and
    shortened with an ellipsis."""
    flat = " ".join(_UNFIT.sub(" ", value).split())
    if len(flat) > width:
        flat = flat[: width - 1] + "…"
    # Graphviz expands \\N, \\G ... in HTML labels too, after reading entities: double it
    for raw, escaped in _ESCAPES:
        flat = flat.replace(raw, escaped)
    return flat


_ESCAPES = (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))


def _quoted(value: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, line breaks as DOT's `\\n`."""
    clean = _UNFIT.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))
    body = clean.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def _url(link: str) -> str:
    """A link as Graphviz must be given it: it writes a URL into the SVG as it is, so what
    a URL cannot hold raw (quotes, angle brackets, spaces, controls, non-ASCII) is
    percent-encoded, and `&` is written as the entity XML needs."""
    return quote(link, safe="/:?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")


def _linker(href: Href | None) -> Callable[[Digest], str] | None:
    if href is None or callable(href):
        return href
    if "{digest}" not in href:
        raise InputError(
            f"the link template {href} holds no {{digest}}",
            "write where an event's page is, e.g. /events/{digest}",
        )
    return lambda digest: href.replace("{digest}", str(digest))


# -- nodes and edges -------------------------------------------------------------------------


def _caption(n: Node) -> str:
    caption = _CAPTIONS[n.kind]
    if n.kind == "step":
        caption = f"STEP {n.step}" if n.step is not None else "STEP"
        caption += " · EXCLUSION" if n.step_kind == "exclusion" else ""
        caption += " · FAILED" if n.status == "failed" else ""
    if n.kind == "build" and n.status in ("forced", "not_run"):
        caption += " · FORCED PAST A GATE" if n.status == "forced" else " · GATES NOT RUN"
    if n.kind == "manifest" and n.status != "frozen":
        caption += " · NOT FROZEN" if n.status == "not_frozen" else " · FILE MISSING"
    return caption


def _colours(n: Node) -> tuple[str, str]:
    if n.review is not None:
        return REVIEW_COLOURS.get(n.review, _FILLS["unknown"])
    if n.kind == "step":
        return _FILLS["failed" if n.status == "failed" else n.step_kind or "transform"]
    return _FILLS.get(n.kind, _FILLS["unknown"])


def _rows(n: Node) -> list[str]:
    ink = _RED if n.status in ("failed", "forced", "superseded") else "#555555"
    rows = [
        f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8" COLOR="{ink}">{_caption(n)}</FONT></TD></TR>',
        f'<TR><TD ALIGN="LEFT"><B>{_text(n.label, 48)}</B></TD></TR>',
    ]
    if n.review is not None:
        state = n.review.replace("_", " ")
        rows.append(f'<TR><TD ALIGN="LEFT"><I>{_text(state)}</I></TD></TR>')
    if n.review_now is not None:
        now = _text("now " + n.review_now.replace("_", " "))
        colour = REVIEW_COLOURS.get(n.review_now, _FILLS["unknown"])[1]
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{colour}"><B>{now}</B></FONT></TD></TR>')
    if n.status == "not_recorded":
        rows.append('<TR><TD ALIGN="LEFT"><I>not recorded in this ledger</I></TD></TR>')
    for what, value in n.details:
        colour = _RED if what in ("error", "forced past", "newest version") else "#333333"
        text = _text(f"{what}: {value}")
        rows.append(
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="9" COLOR="{colour}">{text}</FONT></TD></TR>'
        )
    if n.event is not None:
        short = f"{n.event[:15]}…"
        rows.append(
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8" FACE="Courier" COLOR="#777777">'
            f"event {short}</FONT></TD></TR>"
        )
    return rows


def _node(n: Node, target: bool, link: Callable[[Digest], str] | None) -> str:
    fill, border = _colours(n)
    label = (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        + "".join(_rows(n))
        + "</TABLE>>"
    )
    styles = ["filled"]
    if n.kind in ("quarantine", "release"):
        styles.append("diagonals")
    elif _SHAPES[n.kind] == "box":
        styles.append("rounded")
    penwidth = 3.0 if target else 1.4
    if n.status in ("failed", "not_recorded", "not_frozen") or n.review == "never_reviewed":
        styles.append("dashed")
    if n.status in ("failed", "forced", "superseded"):
        border, penwidth = _RED, 3.0
    if n.review_now is not None:
        border, penwidth = REVIEW_COLOURS.get(n.review_now, _FILLS["unknown"])[1], 3.0
    where = f"event {n.event}" if n.event is not None else "no event recorded"
    if n.kind == "manifest" and n.digest is not None:
        where = f"frozen manifest {n.digest}\nrecorded by the build: {where}"
    attrs = {
        "id": _quoted(f"lineage-{n.id}"),
        "class": _quoted(" ".join(_classes(n))),
        "shape": _SHAPES[n.kind],
        "style": _quoted(",".join(styles)),
        "fillcolor": _quoted(fill),
        "color": _quoted(border),
        "penwidth": f"{penwidth:g}",
        "tooltip": _quoted(f"{_CAPTIONS[n.kind].lower()} {n.label}\n{where}"),
        "label": label,
    }
    if link is not None and n.event is not None:
        attrs["URL"] = _quoted(_url(link(n.event)))
        attrs["target"] = '"_top"'
    return f'"{n.id}" [' + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "];"


def _classes(n: Node) -> list[str]:
    found = ["lineage-node", f"kind-{n.kind}"]
    for prefix, value in (("review", n.review), ("now", n.review_now), ("status", n.status)):
        if value is not None:
            found.append(f"{prefix}-{value}".replace("_", "-"))
    return found


_EDGE_STYLES: Final = {
    ("used", "using"): 'style=dashed, color="#5f3dc4", fontcolor="#5f3dc4", label=" using "',
    ("used", "eval set"): 'style=dotted, label=" eval set "',
    ("generated", None): "penwidth=1.6",
    ("quarantined", None): 'color="#d9480f", fontcolor="#d9480f", label=" quarantined "',
    ("released", None): 'color="#2b8a3e", fontcolor="#2b8a3e", label=" released "',
}


def _edge(e: Edge) -> str:
    style = _EDGE_STYLES.get((e.relation, e.role), "")
    words = e.relation + (f" ({e.role})" if e.role else "")
    tip = f"tooltip={_quoted(words)}"
    return f'"{e.tail}" -> "{e.head}" [{", ".join(x for x in (style, tip) if x)}];'


def _legend() -> str:
    rows = ['<TR><TD COLSPAN="2" ALIGN="LEFT"><B>review state</B></TD></TR>']
    for state, (fill, border) in REVIEW_COLOURS.items():
        rows.append(
            f'<TR><TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1" WIDTH="18"></TD>'
            f'<TD ALIGN="LEFT">{state.replace("_", " ")}</TD></TR>'
        )
    for colour, style, words in (
        (_RED, "red, dashed", "a failed step"),
        (_RED, "thick red", "a build forced past a gate; a list with a newer version"),
        (_INK, "thick", "what the graph is of; a state changed since the build"),
        (_INK, "arrow", "points to what a thing came from"),
    ):
        rows.append(
            f'<TR><TD ALIGN="LEFT"><FONT COLOR="{colour}">{style}</FONT></TD>'
            f'<TD ALIGN="LEFT">{words}</TD></TR>'
        )
    return (
        'legend [id="lineage-legend", class="lineage-legend", shape=plaintext, tooltip="legend",'
        ' fontsize=9, label=<<TABLE BORDER="0" CELLSPACING="2" CELLPADDING="2">'
        + "".join(rows)
        + "</TABLE>>];"
    )
