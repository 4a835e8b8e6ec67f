"""`mlprov report`: a datasheet, the EU training-content summary or the AB 2013
documentation of a build or dataset, filled from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from mlprov.cli.options import StoreOpt, resolve, write_output
from mlprov.cli.render import out as stdout

# mlprov.answers.reports.Kind, spelled out: importing the reports here would load pyarrow at start.
Kind = Literal["datasheet", "eu-training-summary", "ab2013"]
Format = Literal["markdown", "json"]


def report(
    kind: Annotated[
        Kind,
        typer.Argument(
            help="datasheet (a dataset or build), eu-training-summary (a build) or ab2013 "
            "(a build or dataset)."
        ),
    ],
    target: Annotated[
        str, typer.Argument(help="A build or dataset: NAME, NAME@VERSION, or a digest.")
    ],
    format: Annotated[Format, typer.Option("--format", help="markdown or json.")] = "markdown",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write it to FILE.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A disclosure report filled from the ledger.

    Every item names its ledger fields, and what the ledger lacks is listed as missing.
    Rendered at a terminal; Markdown source when piped or written with --out."""
    from mlprov.answers.reports import report as make
    from mlprov.answers.reports import to_json, to_markdown
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        made = make(ledger, kind, resolve(ledger, target, ("build", "dataset")))
    if format == "markdown" and out is None and stdout.is_terminal:
        from rich.markdown import Markdown

        # a person at a terminal reads it rendered, not as Markdown source with its escapes
        stdout.print(Markdown(to_markdown(made)), soft_wrap=False)
        return
    data = to_json(made) if format == "json" else to_markdown(made).encode()
    missing = len(made.missing)
    write_output(data, out, f" ({len(made.items)} items, {missing} missing)")


def register(app: typer.Typer) -> None:
    app.command()(report)
