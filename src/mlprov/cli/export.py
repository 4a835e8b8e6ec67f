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


# -- the auditor's bundle -----------------------------------------------------------------------


@export_app.command("bundle")
def bundle(
    build: Annotated[
        str, typer.Argument(metavar="BUILD", help="The build: NAME, NAME@VERSION or a digest.")
    ],
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="A new or empty folder to write it into.")
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="A file of the training set's records, for its Croissant metadata (copied "
            "into the bundle); repeat for several.",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(metavar="KEY", help="Key to sign the attestation (default: the ledger's)."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Everything an outsider needs to check a build without mlprov.

    The events on the build's path as their exact bytes, an inclusion proof of each at
    the newest signed checkpoint, the checkpoint and its public keys, the record-set
    roots, the PROV document, the signed attestation, the training set's Croissant
    metadata (with --data), and a README saying how to check each file with public
    tools. Every file shows the ledger as it stood at that checkpoint. Refused when no
    checkpoint covers the build (run `mlprov checkpoint`), when the build recorded no
    artifact, or when DIR is not empty; nothing is written then. Needs mlprov[prov]."""
    from mlprov.cli.options import resolve
    from mlprov.cli.render import print_lines, wrap
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        entry = resolve(ledger, build, ("build",))
        signer = ledger.signer(key) if key is not None else None
        made = ledger.export_bundle(entry, directory, data=list(data or ()), key=signer)
    cp = made.checkpoint.checkpoint
    lines = [
        f"wrote {directory}: the bundle of build {entry.event.name} ({entry.digest})",
        f"  {made.events} events, each with its inclusion proof at the checkpoint of size "
        f"{cp.size} signed by {', '.join(made.checkpoint.signers)}",
        f"  {len(made.files)} files; README.md says how to check each one without mlprov",
    ]
    if not made.croissant:
        lines.append("  no Croissant metadata: give the training set's files with --data FILE")
    print_lines([w for line in lines for w in wrap(line)])
