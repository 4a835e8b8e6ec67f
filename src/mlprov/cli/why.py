"""`mlprov why`: is a record, or a person's record, in a model's training set, and why."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from mlprov.cli.helptext import usage_error
from mlprov.cli.options import StoreOpt, resolve
from mlprov.cli.render import emit_bytes, emit_json, wrap
from mlprov.errors import InputError

Format = Literal["text", "markdown", "json"]


def why(
    model: Annotated[
        str,
        typer.Option("--model", metavar="REF", help="The build (or a dataset), by name or digest."),
    ],
    subject: Annotated[
        str | None, typer.Option(help="A person, as the subject column names them (hashed here).")
    ] = None,
    key: Annotated[str | None, typer.Option(metavar="KEY", help="A record key.")] = None,
    record: Annotated[
        str | None, typer.Option(metavar="JSON", help="The record as a JSON object.")
    ] = None,
    digest: Annotated[str | None, typer.Option(metavar="DIGEST", help="A record digest.")] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="text|markdown|json",
            help="How to print it (json carries the proofs).",
        ),
    ] = "text",
    json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    store: StoreOpt = None,
) -> None:
    """Is a record, or a person's record, in a model's training set, and why.

    Answers with a proof; the record's path from source through every step; and why it was
    or was not removed. Give --model and exactly one of --subject, --key, --record and
    --digest."""
    from mlprov.answers.why import to_json, to_markdown, to_text
    from mlprov.answers.why import why as answer_why
    from mlprov.facade import Ledger

    if sum(x is not None for x in (subject, key, record, digest)) != 1:
        raise usage_error("give exactly one of --subject, --key, --record and --digest")
    chosen = "json" if json else format
    if chosen not in ("text", "markdown", "json"):
        raise InputError(f"unknown format {format!r}", "use text, markdown or json")
    with Ledger.open(store) as ledger:
        answer = answer_why(
            ledger,
            resolve(ledger, model, ("build", "dataset")),
            subject=subject,
            key=key,
            record=record,
            digest=digest,
        )
    if chosen == "json":
        emit_json(to_json(answer))
    else:
        # Markdown is for files and is not rewrapped; text is wrapped to the terminal.
        text = to_markdown(answer) if chosen == "markdown" else "\n".join(wrap(to_text(answer)))
        emit_bytes(text.rstrip("\n").encode() + b"\n")


def register(app: typer.Typer) -> None:
    app.command()(why)
