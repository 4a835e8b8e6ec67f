"""The model card: a build's provenance patched into a Hugging Face style card, in place.

A card is YAML front matter between `---` lines (found with the Hub's own pattern) and a
Markdown body. :func:`patch_card` changes two things and nothing else:

- the top-level `mlprov:` key of the front matter, rewritten by text surgery, never by
  re-dumping the YAML, so every other key, comment and space stays byte for byte (a card
  without front matter gets one). The result is parsed back and refused unless the other
  keys read exactly as before;
- the body's section between :data:`START` and :data:`END` (marker lines outside code
  fences), replaced where it is, else appended at the end.

Patching is idempotent: patching a patched card with the same facts changes no byte. The
facts are :func:`mlprov.answers.view.build_facts`: the manifest frozen when the build was
recorded, the dataset's approval at build time, and the quarantine history of its dataset
and sources.

The metadata key (every text double-quoted, so it reads back exactly)::

    mlprov:
      training_manifest: "sha256:4d81c0ee…"   # null when the build froze no manifest
      build: "support-classifier-v7"
      build_event: "sha256:…"
      reviewer_status: "accepted_with_limits"
      unresolved_risks:
        - "legacy tickets before consent-policy migration"
      sources:
        - "support-chat-export@2026-05-22"
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from mlprov.answers.view import BuildFacts, QuarantineMove
from mlprov.errors import InputError

__all__ = ["END", "MAX_CARD", "START", "patch_card", "searchable_line", "write_card"]

START = "<!-- mlprov:provenance:start -->"
END = "<!-- mlprov:provenance:end -->"
#: A model card is a small document; a larger file is the wrong file.
MAX_CARD = 16 * 1024 * 1024

# The Hub's own front-matter pattern (huggingface_hub.repocard), so both find the same block.
_FRONT = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_KEY = re.compile(r"""(?:mlprov|"mlprov"|'mlprov')[ \t]*:(?![^ \t\r\n])""")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_BREAK = re.compile(r"(\r\n|\r|\n)\Z")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_MD = re.compile(r"([\\`*_\[\]<>|&~])")
_MD_LEAD = re.compile(r"^(\d*)([#+\-=.)])")  # what would open a heading, list or rule


# -- patching the card ------------------------------------------------------------------------


def searchable_line(facts: BuildFacts) -> str:
    """`training_manifest=sha256:<64 hex>; reviewer_status=<s>; unresolved_risks=<r, …|none>`:
    a digest in a line meant to be searched for is always whole."""
    manifest = str(facts.manifest_digest) if facts.manifest_digest else "none"
    risks = ", ".join(" ".join(r.split()) for r in facts.risks) or "none"
    return f"training_manifest={manifest}; reviewer_status={facts.reviewer_status}; " + (
        f"unresolved_risks={risks}"
    )


def patch_card(text: str, facts: BuildFacts) -> str:
    """The card `text` with mlprov's metadata key and provenance section set from `facts`;
    every other byte as it was (see the module doc). Raises InputError for a card that
    cannot be patched safely: metadata that is not a YAML mapping, broken markers."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom) :]
    found = _FRONT.search(text)
    first = _LINE.match(text)
    nl = _BREAK.search(found.group(1) if found else first.group() if first else "")
    nl_text = nl.group() if nl else "\n"
    key = _yaml_key(facts.metadata(), nl_text)
    if found is None:
        head, body = f"---{nl_text}{key}{nl_text}---{nl_text}", text
    else:
        block = _set_key(found.group(2), key, nl_text)
        _check_metadata(found.group(2), block, facts.metadata())
        head = found.group(1) + block + found.group(3)
        body = text[found.end() :]
    section = nl_text.join(_section(facts))
    return bom + head + _set_section(body, section, nl_text, bool(_BREAK.search(head)))


def write_card(path: Path | str, facts: BuildFacts) -> bool:
    """Patch the card file at `path` (created if absent) atomically; False if unchanged."""
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    try:
        raw = target.read_bytes() if target.exists() else b""
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from exc
    if len(raw) > MAX_CARD:
        raise InputError(f"{path} is too large to be a model card", "give the card's README.md")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text", "a model card is UTF-8 Markdown") from None
    patched = patch_card(text, facts)
    if patched == text:
        return False
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(patched.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror}", "check the path") from exc
        raise
    return True


def _lines(text: str) -> list[str]:
    """Lines with their own line breaks (`\\r\\n`, `\\r` or `\\n`); they join back to `text`."""
    return _LINE.findall(text)


def _yaml_key(data: dict[str, Any], nl: str) -> str:
    """`mlprov:` and its value, written by hand: every text double-quoted, no wrapping."""
    lines = ["mlprov:"]
    for name, value in data.items():
        if isinstance(value, list):
            lines.append(f"  {name}:" + ("" if value else " []"))
            lines += (f"    - {_quoted(v)}" for v in value)
        else:
            lines.append(f"  {name}: " + ("null" if value is None else _quoted(value)))
    return nl.join(lines)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: quotes, backslashes and unprintables escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:  # \U beyond the BMP: a \u surrogate pair reads back as two lone surrogates
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _set_key(block: str, key: str, nl: str) -> str:
    """The front matter `block` with its top-level `mlprov:` key (the key line and every
    indented line after it) replaced by `key`, or `key` appended."""
    lines = _lines(block)
    starts = [i for i, line in enumerate(lines) if _KEY.match(line)]
    if not starts:
        return block + nl + key  # a new last line: every line before it ends as it did
    if len(starts) > 1:
        raise InputError(
            "the card's metadata has the key mlprov more than once",
            "delete all but one; mlprov rewrites its own key",
        )
    first = last = starts[0]
    for i in range(first + 1, len(lines)):
        line = lines[i]
        if line[:1] in (" ", "\t") and line.strip():
            last = i
        elif line.strip() and not line.startswith(("#", " ", "\t")):
            break  # the next top-level key; blank lines and comments before it are not ours
    old = "".join(lines[first : last + 1])
    end = _BREAK.search(old)
    return "".join(lines[:first]) + key + (end.group() if end else "") + "".join(lines[last + 1 :])


def _mapping(block: str) -> dict[Any, Any]:
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise InputError(
            f"the card's metadata is not valid YAML: {problem}", "fix the front matter"
        ) from None
    if not isinstance(data, dict | None):
        raise InputError("the card's metadata is not a YAML mapping", "fix the front matter")
    return data or {}


def _check_metadata(before: str, after: str, ours: dict[str, Any]) -> None:
    """Refuse a patch that would change anything in the metadata but mlprov's key."""
    old = _mapping(before)
    old.pop("mlprov", None)
    try:
        new: dict[Any, Any] | None = _mapping(after)
    except InputError:
        new = None
    got = new.pop("mlprov", None) if new is not None else None
    if new is None or got != ours or repr(new) != repr(old):  # repr: NaN != NaN
        raise InputError(
            "the card's metadata cannot be patched without changing other keys",
            "put the top-level key mlprov on its own lines (or delete it) and retry",
        )


def _set_section(body: str, section: str, nl: str, head_ends_line: bool) -> str:
    """The body with the provenance section replaced where its markers are, else appended."""
    starts, ends, pos, fence = [], [], 0, ""
    for line in _lines(body):
        content = line.rstrip("\r\n")
        run = _FENCE.match(content)
        if fence:  # markers shown inside a code block are examples, not the section
            if run and run.group(1)[0] == fence[0] and len(run.group(1)) >= len(fence):
                fence = "" if not content[run.end() :].strip() else fence
        elif run:
            fence = run.group(1)
        elif content.strip() == START:
            starts.append(pos)
        elif content.strip() == END:
            ends.append(pos + len(content))
        pos += len(line)
    if len(starts) == len(ends) == 1 and starts[0] < ends[0]:
        return body[: starts[0]] + section + body[ends[0] :]
    if starts or ends:
        raise InputError(
            f"the card has {len(starts)} provenance start and {len(ends)} end markers",
            f"leave one {START} line and one {END} line after it, or delete both",
        )
    if fence:
        raise InputError(
            "the card's body ends inside an open code fence",
            f"close the fence ({fence}) so the provenance section can follow it",
        )
    if not body:
        return ("" if head_ends_line else nl) + section + nl
    gap = (
        "" if body.endswith(("\n\n", "\r\n\r\n", "\r\r")) else nl if _BREAK.search(body) else nl * 2
    )
    return body + gap + section + nl


# -- the provenance section -------------------------------------------------------------------


def _section(facts: BuildFacts) -> list[str]:
    m = facts.manifest
    line = searchable_line(facts)
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", line)), default=0))
    lines = [START, "## Training data provenance", ""]
    lines += [
        f"Recorded by mlprov for build {_code(facts.build)} ({_code(facts.build_event)}).",
        "",
    ]
    lines += [fence + "text", line, fence, ""]
    lines.append(f"- Training manifest: {_manifest(facts)}")
    if m is not None:
        count = f", {m.record_count} records" if m.record_count is not None else ""
        root = f", record root {_code(m.record_root)}" if m.record_root else ""
        lines.append(f"- Dataset: {_code(m.dataset)}{count}{root}")
    lines += [f"- Reviewer status: {_code(facts.reviewer_status)}{_approval(facts)}"]
    lines += ["", "### Sources", ""]
    if m is None or not m.source_records:
        lines.append("No sources recorded.")
    else:
        lines += [
            "| source | rights basis | licence | review status |",
            "| --- | --- | --- | --- |",
        ]
        lines += (
            f"| {_code(s.ref)} | {_text(s.rights_basis)} | {_text(s.license)} | "
            f"{_code(s.review_status) if s.review_status else 'not recorded'} |"
            for s in m.source_records
        )
    lines += ["", "### Transforms, in order", ""]
    steps = m.transforms if m else ()
    lines += (f"{i}. {_step(t.name, t.kind, t.params, t.counts)}" for i, t in enumerate(steps, 1))
    lines += [] if steps else ["No transforms recorded."]
    for title, values in (("Limits", facts.limits), ("Unresolved risks", facts.risks)):
        lines += ["", f"### {title}", ""]
        lines += [f"- {_text(v)}" for v in values] or ["None recorded."]
    lines += ["", "### Quarantine history", ""]
    lines += [f"- {_quarantine(q)}" for q in facts.quarantines] or ["No quarantines recorded."]
    return [*lines, END]


def _approval(facts: BuildFacts) -> str:
    """Whose reviews the status rests on, when the ledger says."""
    a = facts.approval
    if a is None or a.basis == "none":
        return ""
    by = "; ".join(_text(r.phrase()) for r in a.by)
    if a.basis == "dataset":
        return f", the dataset's own review ({by})"
    return f", from its sources' reviews ({by}); the dataset itself was never reviewed"


def _manifest(facts: BuildFacts) -> str:
    digest = _code(facts.manifest_digest) if facts.manifest_digest else "none"
    return {
        "frozen": f"{digest}, frozen when the build was recorded",
        "not_frozen": "none frozen with the build: the facts below are the dataset's "
        "current manifest, not the one the build was allowed on",
        "frozen_file_missing": f"{digest}, but its frozen file is missing: the facts below "
        "are the dataset's current manifest",
        "no_dataset": "none: the build names no dataset",
    }[facts.basis]


def _step(name: str, kind: str, params: dict[str, Any], counts: dict[str, int]) -> str:
    text = _code(name) + (" (exclusion)" if kind == "exclusion" else "")
    if params:
        text += " with " + _code(json.dumps(params, sort_keys=True, ensure_ascii=False))
    done = [f"{word} {counts[word]}" for word in ("removed", "changed") if word in counts]
    return text + ": " + (", ".join(done) if done else "counts not recorded")


def _quarantine(q: QuarantineMove) -> str:
    when = " (after this build)" if q.after_build else ""
    head = f"{_code(q.target)} {q.kind}d{when}, event {_code(q.event.short)}"
    if q.kind == "release":
        evidence = ", ".join(_code(d.short) for d in q.evidence) or "none"
        return f"{head}: evidence {evidence}" + (f"; note: {_text(q.note)}" if q.note else "")
    blocked = ", ".join(q.blocked_use) or "every use"
    allowed = ", ".join(q.allowed_use) or "none"
    return (
        f"{head}: trigger: {_text(q.trigger)}; blocked uses: {_text(blocked)}; "
        f"allowed uses: {_text(allowed)}; exit condition: {_text(q.exit_condition)}"
    )


def _code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds."""
    text = " ".join(str(text).split())
    ticks = "`" * (1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _text(text: str | None) -> str:
    """Recorded free text as literal Markdown on one line; `not recorded` when absent."""
    if not text or not text.strip():
        return "not recorded"
    return _MD_LEAD.sub(r"\1\\\2", _MD.sub(r"\\\1", " ".join(text.split())))
