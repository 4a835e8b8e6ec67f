"""Model-card commands: the postmortem sentence of a build, and its provenance patched into a
Hugging Face style model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.options import JsonOpt, StoreOpt, resolve
from mlprov.cli.render import emit_bytes, emit_json, err, print_lines, wrap

Build = Annotated[str, typer.Argument(help="A build: name or digest.")]


def card(
    build: Build,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            metavar="FILE",
            help="Patch this card in place (created if absent); else print a new card.",
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Patch a Hugging Face model card with a build's provenance.

    Writes the `mlprov` metadata key and the provenance section; everything else in the
    card is kept byte for byte."""
    from rich.text import Text

    from mlprov.answers.card import patch_card, write_card
    from mlprov.answers.explain import build_facts
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        facts = build_facts(ledger, resolve(ledger, build, ("build",)))
    if write is None:
        emit_bytes(patch_card("", facts).encode("utf-8"))
        return
    changed = write_card(write, facts)
    err.print(Text(f"{'patched' if changed else 'unchanged'} {write}"))


def explain(build: Build, store: StoreOpt = None, json: JsonOpt = False) -> None:
    """The postmortem sentence of a build.

    Its manifest, sources, transforms, reviewer status and unresolved risks, each from the
    ledger (missing evidence is said)."""
    from mlprov.answers.explain import explain as take
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        found = take(ledger, resolve(ledger, build, ("build",)))
    if json:
        emit_json(found.to_json())
    else:
        print_lines(wrap(found.sentence, hang=0))


def register(app: typer.Typer) -> None:
    for command in (card, explain):
        app.command()(command)
