"""The `audit` command: how complete the whole ledger is, as text, JSON or an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.options import JsonOpt, StoreOpt, write_output
from mlprov.cli.render import emit_json, err, out, progress_bar
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
    from rich.table import Table
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
        if found.findings:
            table = Table(show_edge=False, header_style="bold")
            for column in ("severity", "check", "subject", "finding"):
                table.add_column(column, overflow="fold")
            for f in found.findings:
                detail = Text(f.message)
                for label, value in f.facts:
                    detail.append(f"\n{label}: {value}", style="dim")
                detail.append(f"\nhint: {f.hint}", style="dim")
                table.add_row(
                    Text(f.severity.upper(), style=_STYLE[f.severity]),
                    Text(f"{f.id} {f.name}"),
                    Text(str(f.subject)),  # recorded text, never read as markup
                    detail,
                )
            out.print(table)
        s = found.summary
        events = ", ".join(f"{kind} {n}" for kind, n in s.events.items() if n)
        out.print(Text(f"events       {s.size}" + (f" ({events})" if events else "")))
        out.print(
            Text(
                f"sources      {s.sources}, {s.sources_complete} with a rights basis and an "
                f"accepting review ({_percent(s.source_score)})"
            )
        )
        out.print(Text(f"datasets     {s.datasets}"))
        out.print(
            Text(
                f"builds       {s.builds}, {s.builds_frozen} with a frozen manifest "
                f"({_percent(s.build_score)})"
            )
        )
        out.print(Text(f"checkpoints  {s.checkpoints}, covering {s.covered} of {s.size} events"))
        verdict = "passes" if found.ok else "fails"
        out.print(Text(f"audit of {found.origin}: {verdict} ({counts_text(found)})"))
    if not found.ok:
        raise typer.Exit(GateBlocked.exit_code)


def register(app: typer.Typer) -> None:
    app.command()(audit)
