"""An answer as text, Markdown or JSON (the JSON carries the proofs, for a third party)."""

from __future__ import annotations

from typing import Any

from mlprov.answers.why.answer import Answer
from mlprov.answers.why.trails import Trail
from mlprov.digest import Digest, shorten
from mlprov.governance.manifest import WRITTEN
from mlprov.ledger.names import label

__all__ = ["sections", "to_json", "to_markdown", "to_text"]


def _verdict(a: Answer) -> str:
    where = (
        f"the training set of {a.build.event.name}"
        if a.build is not None
        else f"dataset {a.dataset.event.name}"
    )
    if a.present is None:
        return f"Unknown: the record set of {where} is not here to search."
    if a.present:
        return f"Yes: the {a.query.shown} is in {where}."
    return f"No: the {a.query.shown} is not in {where}."


def _short(value: Any) -> str:
    return Digest(value).short if value else "none recorded"


def _trail(a: Answer, t: Trail) -> list[str]:
    state = a.sources.get(t.source.digest)
    p = t.source.event.payload
    key = f"key {t.key}" if t.key is not None else f"digest {shorten(t.origin.digest, 16)}"
    lines = [f"{key}, from {t.source.event.name} (event {t.source.digest.short})"]
    rights = p.get("rights_basis") or "none recorded"
    lines.append(f"  rights basis: {rights}; licence: {p.get('license') or 'none recorded'}")
    if state is not None:
        review = state.at_build.review
        who = f" by {review.event.payload['reviewer']}" if review else ""
        lines.append(f"  review status at build time: {state.at_build.state.value}{who}")
    if not t.fates:
        lines.append("  no step consumed it")
    for fate in t.fates:
        version = str(fate.step.event.payload.get("version") or "")
        name = str(fate.step.event.payload.get("name") or "")
        shown = f" [{version}]" if version and not name.endswith(version) else ""
        lines.append(f"  {fate.label}{shown}: {fate.detail} (event {fate.step.digest.short})")
    lines.append("  did not reach the dataset" if t.removed_by else "  reached the dataset")
    return lines


def sections(a: Answer) -> list[tuple[str, list[str]]]:
    """The answer as titled sections of lines (shared by text and Markdown)."""
    head = [_verdict(a)]
    if a.build is not None:
        head.append(f"build {a.build.event.name} (event {a.build.digest.short})")
        head.append(f"manifest {_short(a.manifest_digest)}")
    head.append(
        f"dataset {label(a.dataset)} (event {a.dataset.digest.short}), "
        f"record set {_short(a.dataset.event.payload.get('record_root'))}"
    )
    if "manifest" in a.dataset.event.payload:
        head.append(WRITTEN)
    for proof in a.proofs:
        kind = "membership" if proof.present else "non-membership"
        head.append(f"{kind} proof for {proof.about} against root {shorten(proof.proof.root, 16)}")
    for link in a.links:
        p = link.proof
        what = (
            f"carries key {p.key}"
            if p.key is not None
            else f"names subject {shorten(p.subject or '', 16)}"
        )
        head.append(
            f"proven: {link.about} {what} (pair proof against pairs root {shorten(p.root, 16)})"
        )
    out: list[tuple[str, list[str]]] = [("Answer", head)]
    for t in a.trails:
        out.append(("Path", _trail(a, t)))
    if a.causes:
        out.append(("Why", [f"[{c.code}] {c.text}" for c in a.causes]))
    elif a.present:
        out.append(("Why", ["the ledger shows no exclusion that should have removed it"]))
    others = [
        f"{b.event.name} ({b.digest.short}): "
        + ("contains it" if held else "does not contain it" if held is False else "unknown")
        for b, held in a.other_builds
    ]
    if others:
        out.append(("Other builds", others))
    if a.missing:
        out.append(("Missing evidence", list(a.missing)))
    return out


def to_text(a: Answer) -> str:
    lines: list[str] = []
    for title, body in sections(a):
        lines += [title, *(f"  {x}" for x in body), ""]
    return "\n".join(lines)


def to_markdown(a: Answer) -> str:
    lines: list[str] = []
    for title, body in sections(a):
        lines += [f"## {title}", "", *(f"- {x.strip()}" for x in body), ""]
    return "\n".join(lines)


def _trail_json(t: Trail) -> dict[str, Any]:
    return {
        "source": t.source.event.name,
        "source_event": str(t.source.digest),
        "key": t.key,
        "origin_digest": t.origin.digest.hex(),
        "digest": t.digest.hex(),
        "subject": t.subject.hex() if t.subject else None,
        "steps": [
            {
                "step": f.name,
                "number": f.number,
                "event": str(f.step.digest),
                "did": f.did,
                "detail": f.detail,
                "columns": list(f.columns) if f.columns is not None else None,
                "duplicate_of": f.duplicate_of,
            }
            for f in t.fates
        ],
        "removed_by": t.removed_by.name if t.removed_by else None,
    }


def to_json(a: Answer) -> dict[str, Any]:
    return {
        "query": {"kind": a.query.kind, "shown": a.query.shown},
        "present": a.present,
        "verdict": _verdict(a),
        "build": None
        if a.build is None
        else {"name": a.build.event.name, "event": str(a.build.digest)},
        "manifest_digest": a.manifest_digest,
        "dataset": {
            "name": a.dataset.event.name,
            "version": a.dataset.event.payload.get("version"),
            "event": str(a.dataset.digest),
            "record_root": a.dataset.event.payload.get("record_root"),
            "recorded_from": "manifest" if "manifest" in a.dataset.event.payload else "capture",
        },
        "proofs": [p.to_json() for p in a.proofs],
        **({"links": [link.to_json() for link in a.links]} if a.links else {}),
        "trails": [_trail_json(t) for t in a.trails],
        "sources": [s.to_json() for s in a.sources.values()],
        "causes": [c.to_json() for c in a.causes],
        "other_builds": [
            {"name": b.event.name, "event": str(b.digest), "contains": held}
            for b, held in a.other_builds
        ],
        "missing": list(a.missing),
    }
