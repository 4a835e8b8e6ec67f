"""`mlprov export FORMAT TARGET`: the ledger in the open formats auditors' tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.helptext import App
from mlprov.cli.options import StoreOpt, write_output

export_app = App(help="Write a build, a dataset or the ledger in an open format.")


def register(app: App) -> None:
    app.add_typer(export_app, name="export")


# -- W3C PROV ---------------------------------------------------------------------------------


@export_app.command("prov")
def prov(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="A build or dataset: NAME, NAME@VERSION or a digest (none: the whole ledger).",
        ),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="json|turtle|jsonld",
            help="PROV-JSON, or PROV-O as Turtle or JSON-LD.",
        ),
    ] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write it here (else stdout).")
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            metavar="FILE",
            help="Check this PROV document against the ledger instead (exit 10 if it differs).",
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A build, a dataset or the whole ledger as a W3C PROV document.

    Sources and datasets are entities; steps, runs, builds and reviews activities;
    pipelines and reviewers agents. Every element names the event it stands for by its
    digest and carries the event's bytes, so `--check FILE` can check a document against
    the ledger. Needs mlprov[prov]."""
    from mlprov.cli.render import print_lines
    from mlprov.errors import InputError
    from mlprov.export import prov as provexport
    from mlprov.export.provcheck import check as check_document
    from mlprov.facade import Ledger

    if format not in provexport.FORMATS:
        raise InputError(f"unknown format {format!r}", "use json, turtle or jsonld")
    if check is not None:
        if out is not None:
            raise InputError("--check reads a document; --out writes one", "give one of them")
        data = _read(check, "PROV document")
        with Ledger.open(store) as ledger:
            found = check_document(ledger, data, target)
        what = found.target or "the whole ledger"
        print_lines(
            [
                f"{check}: agrees with the ledger ({found.format}, export of {what})",
                f"  {found.events} event digests and {found.records} records checked, "
                f"at log size {found.tree_size}",
            ]
        )
        return
    with Ledger.open(store) as ledger:
        data = provexport.serialize(provexport.document(ledger, target), format)
    write_output(data, out)


def _read(path: Path, what: str) -> bytes:
    """A document's bytes (a whole ledger's PROV can be large), with clear errors."""
    from mlprov.errors import InputError, NotFoundError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {path} does not exist", "check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a {what}", "give a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from None


# -- Croissant 1.1 ----------------------------------------------------------------------------


@export_app.command("croissant")
def croissant(
    dataset: Annotated[
        str,
        typer.Argument(metavar="DATASET", help="The dataset: NAME, NAME@VERSION or a digest."),
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="A file of its records (Parquet or JSON Lines), checked against its record "
            "set; repeat for several.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write metadata.json here (else stdout)."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A dataset's Croissant 1.1 metadata.json, with its RAI and provenance properties.

    Its data files with their SHA-256, the fields of its records, the sources' licences,
    how the data was collected and processed (each step, in order, with its version), what
    was removed, personal data, reviews, limits and risks. Validated with mlcroissant before
    it is written. Needs mlprov[croissant]."""
    from mlprov.export.croissant import dumps, metadata
    from mlprov.facade import Ledger

    base = (out.parent if out is not None else Path.cwd()).absolute()
    with Ledger.open(store) as ledger:
        doc = metadata(ledger, dataset, list(data or ()), base)
    write_output(dumps(doc), out)
