"""The audit as one self-contained HTML page: inline CSS, no script, nothing fetched.

Every recorded text (names, messages, rights bases, quarantine triggers) is escaped: the
page is safe to open whatever the ledger holds.
"""

from __future__ import annotations

from html import escape

from mlprov.answers.audit.findings import CHECKS, SEVERITIES, Finding
from mlprov.answers.audit.report import Audit

__all__ = ["counts_text", "render_html"]

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem;
         border-bottom: 1px solid #eee; }
th { background: #f5f5f7; font-weight: 600; }
code { font: 12px ui-monospace, monospace; word-break: break-all; color: #555; }
.verdict { font-weight: 600; padding: .4rem .7rem; display: inline-block; border-radius: 4px; }
.pass { background: #e3f6e8; color: #14532d; }
.fail { background: #fde8e8; color: #7f1d1d; }
.sev { font-weight: 600; text-transform: uppercase; font-size: 12px; }
tr.error .sev { color: #b91c1c; }
tr.warning .sev { color: #a16207; }
tr.info .sev { color: #475569; }
.hint { color: #555; margin: .3rem 0 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1rem .8rem; margin: .3rem 0; }
dt { color: #555; }
dd { margin: 0; }
.muted { color: #666; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _percent(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.0%}"


def counts_text(audit: Audit) -> str:
    """`2 errors, 1 warning, 0 info`."""
    return ", ".join(
        f"{n} {s}{'s' * (n != 1 and s != 'info')}" for s in SEVERITIES for n in (audit.count(s),)
    )


def _finding_row(f: Finding) -> str:
    digest = f"<br><code>{_e(f.subject.digest)}</code>" if f.subject.digest else ""
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in f.facts)
    return (
        f'<tr class="{_e(f.severity)}"><td class="sev">{_e(f.severity)}</td>'
        f'<td>{_e(f.id)}<br><span class="muted">{_e(f.name)}</span></td>'
        f"<td>{_e(f.subject.name)}{digest}</td>"
        f"<td><p>{_e(f.message)}</p>{f'<dl>{facts}</dl>' if facts else ''}"
        f'<p class="hint">hint: {_e(f.hint)}</p></td></tr>'
    )


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


def render_html(audit: Audit) -> str:
    """The audit as a complete HTML document."""
    s = audit.summary
    counts = counts_text(audit)
    verdict = "passes" if audit.ok else "fails"
    summary = [
        ("events", str(s.size)),
        ("sources", f"{s.sources} ({s.sources_complete} complete: {_percent(s.source_score)})"),
        ("datasets", str(s.datasets)),
        ("builds", f"{s.builds} ({s.builds_frozen} frozen: {_percent(s.build_score)})"),
        ("checkpoints", f"{s.checkpoints} (cover {s.covered} of {s.size} events)"),
        ("verified", "yes" if s.verified else "NO"),
    ]
    if not s.read_whole:
        summary.append(("read", "stopped at a damaged event: the counts are partial"))
    events = [(kind, str(n)) for kind, n in s.events.items()]
    findings = "".join(_finding_row(f) for f in audit.findings) or (
        '<tr><td colspan="4">no findings</td></tr>'
    )
    checks = "".join(
        f"<tr><td>{_e(c.id)}</td><td>{_e(c.name)}</td><td>{_e(c.severity)}</td>"
        f"<td>{_e(c.description)}</td></tr>"
        for c in CHECKS.values()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>mlprov audit of {_e(audit.origin)}</title>\n<style>{_CSS}</style>\n"
        "</head>\n<body>\n"
        f"<h1>Audit of {_e(audit.origin)}</h1>\n"
        f'<p class="muted">audited at {_e(audit.audited_at)}</p>\n'
        f'<p class="verdict {"pass" if audit.ok else "fail"}">{verdict}: {_e(counts)}</p>\n'
        f"<h2>Summary</h2>\n<table>{_rows(summary)}</table>\n"
        f"<h2>Events by type</h2>\n<table>{_rows(events)}</table>\n"
        "<h2>Findings</h2>\n<table><thead><tr><th>severity</th><th>check</th>"
        f"<th>subject</th><th>finding</th></tr></thead>\n<tbody>{findings}</tbody></table>\n"
        "<h2>Checks</h2>\n<table><thead><tr><th>id</th><th>name</th><th>severity</th>"
        f"<th>asks that</th></tr></thead>\n<tbody>{checks}</tbody></table>\n"
        "</body>\n</html>\n"
    )
