"""`mlprov demo`: the incident of a support-ticket classifier, from first byte to answer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.render import out


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to keep the demo's ledger and files (default: new)."),
    ] = None,
) -> None:
    """Play the incident of a support-ticket classifier, with proofs.

    Builds, in a fresh folder, the story of a classifier whose training set held an
    opted-out customer's ticket — and answers why. Needs mlprov[demo]."""
    from rich.text import Text

    from mlprov.demo import Section, run

    where = directory or Path(tempfile.mkdtemp(prefix="mlprov-demo."))
    started = time.monotonic()

    def show(section: Section) -> None:
        out.print(Text(section.title, style="bold"))
        for line in section.lines:
            out.print(Text("  " + line))
        out.print()

    found = run(where, show)
    out.print(Text(f"done in {time.monotonic() - started:.0f} s; the ledger is in {where}/.mlprov"))
    out.print(Text("explore it:", style="bold"))
    for command in (
        f"cd {where}",
        "mlprov log",
        f"mlprov why --model support-classifier-v7 --subject {found.asker}",
        "mlprov triage support-classifier-v7",
        "mlprov diff support-classifier-v7 support-classifier-v8",
        "mlprov report ab2013 support-classifier-v8",
        "mlprov audit",
    ):
        out.print(Text("  " + command))


def register(app: typer.Typer) -> None:
    app.command()(demo)
