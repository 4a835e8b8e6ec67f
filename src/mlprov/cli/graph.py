"""`mlprov graph`: the lineage graph of a build or dataset, as SVG, DOT or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from mlprov.cli.options import StoreOpt, resolve, write_output

Format = Literal["svg", "dot", "json"]
Direction = Literal["TB", "LR"]


def graph(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="A build or dataset: NAME, NAME@VERSION, or a digest."
        ),
    ],
    format: Annotated[
        Format, typer.Option("--format", help="svg (laid out by Graphviz), dot or json.")
    ] = "svg",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write it to FILE.")
    ] = None,
    link: Annotated[
        str | None,
        typer.Option(
            "--link",
            metavar="URL",
            help="Link each node to URL followed by its event's digest, e.g. /events/ "
            "(where URL holds the word digest in braces, the digest goes there).",
        ),
    ] = None,
    direction: Annotated[
        Direction,
        typer.Option("--direction", help="TB: sources on top; LR: sources on the left."),
    ] = "TB",
    store: StoreOpt = None,
) -> None:
    """The lineage graph of a build or dataset.

    Build, frozen manifest, dataset, its steps in order, the sources and the lists the
    steps used, the eval set and any quarantine, each node coloured by its review state
    and naming its event. SVG needs Graphviz's dot (apt-get install graphviz)."""
    import orjson

    from mlprov.answers.dot import to_dot, to_svg
    from mlprov.answers.lineage import lineage
    from mlprov.facade import Ledger

    href = None if link is None else link if "{digest}" in link else link + "{digest}"
    with Ledger.open(store) as ledger:
        made = lineage(ledger, resolve(ledger, ref, ("build", "dataset")))
    if format == "json":
        data = orjson.dumps(made.to_json(), option=orjson.OPT_INDENT_2) + b"\n"
    elif format == "dot":
        data = to_dot(made, href, direction=direction).encode("utf-8")
    else:
        data = to_svg(made, href, direction=direction)
    write_output(data, out, f" ({len(made.nodes)} nodes, {len(made.edges)} edges)")


def register(app: typer.Typer) -> None:
    app.command()(graph)
