"""`mlprov demo`: the incident of a support-ticket classifier, from first byte to answer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.render import out, wrap


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
        # wrapped to the terminal at spaces: a name, an id or a digest is never split
        for line in wrap(section.title):
            out.print(Text(line, style="bold"))
        for text in section.lines:
            for line in wrap("  " + text):
                out.print(Text(line))
        out.print()

    found = run(where, show)
    took = time.monotonic() - started
    for line in wrap(f"done in {took:.0f} s; the ledger is in {where}/.mlprov"):
        out.print(Text(line))
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
        out.print(Text("  " + command))  # whole, to be copied: never wrapped


def register(app: typer.Typer) -> None:
    app.command()(demo)
