"""The `audit` command: how complete the whole ledger is, as text, JSON or an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.options import JsonOpt, StoreOpt, write_output
from mlprov.cli.render import emit_json, err, out, print_lines, progress_bar, wrap
from mlprov.errors import GateBlocked

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _percent(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.0%}"


def audit(
    store: StoreOpt = None,
    json: JsonOpt = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")
    ] = None,
) -> None:
    """Audit how complete the whole ledger is.

    Rights, reviews, quarantines, lint, builds, runs and checkpoints; exit 7 on an error
    finding."""
    from rich.text import Text

    from mlprov.answers.audit import audit as run_audit
    from mlprov.answers.audit.html import counts_text, render_html
    from mlprov.facade import Ledger

    with (
        Ledger.open(store) as ledger,
        progress_bar("auditing", not json and err.is_terminal) as cb,
    ):
        found = run_audit(ledger, progress=cb)
    if html is not None:
        write_output(render_html(found).encode(), html)
    if json:
        emit_json(found.to_json())
    else:
        for f in found.findings:  # one block each: no subject or name is split
            out.print(Text.assemble((f.severity.upper(), _STYLE[f.severity]), f" {f.id} {f.name}"))
            lines = [f"  subject  {f.subject}", f"  {f.message}"]
            lines += [f"  {label}: {value}" for label, value in f.facts]
            lines.append(f"  hint: {f.hint}")
            print_lines(line for text in lines for line in wrap(text))
            out.print()
        s = found.summary
        events = ", ".join(f"{kind} {n}" for kind, n in s.events.items() if n)
        summary = [
            f"events       {s.size}" + (f" ({events})" if events else ""),
            f"sources      {s.sources}, {s.sources_complete} with a rights basis and an "
            f"accepting review ({_percent(s.source_score)})",
            f"datasets     {s.datasets}",
            f"builds       {s.builds}, {s.builds_frozen} with a frozen manifest "
            f"({_percent(s.build_score)})",
            f"checkpoints  {s.checkpoints}, covering {s.covered} of {s.size} events",
            f"audit of {found.origin}: {'passes' if found.ok else 'fails'} ({counts_text(found)})",
        ]
        print_lines(line for text in summary for line in wrap(text, hang=13))
    if not found.ok:
        raise typer.Exit(GateBlocked.exit_code)


def register(app: typer.Typer) -> None:
    app.command()(audit)
