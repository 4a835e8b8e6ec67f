"""`mlprov export intoto|openlineage` and `mlprov attest verify`: a build as a signed
in-toto/SLSA attestation, pipeline runs as OpenLineage events, and an attestation checked
with a public key alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlprov.cli.export import export_app
from mlprov.cli.helptext import App
from mlprov.cli.options import JsonOpt, StoreOpt, read_file, write_output
from mlprov.cli.render import emit_json, out, print_lines, wrap

attest_app = App(help="Check signed attestations without the ledger.")

OutOpt = Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write it to FILE.")]


@export_app.command("intoto")
def export_intoto(
    build: Annotated[str, typer.Argument(help="A build: NAME, NAME@VERSION, or a digest.")],
    output: OutOpt = None,
    key: Annotated[
        Path | None, typer.Option(help="Signing key file (default: the ledger's).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """A build as a signed in-toto attestation (SLSA Provenance v1).

    A DSSE envelope signed with the ledger's Ed25519 key: the model artifact's digest,
    the frozen manifest, the dataset, every source, the eval set, config and code. Check
    it with `mlprov attest verify FILE --key PUB`."""
    from mlprov.cli.options import resolve
    from mlprov.export.intoto import attest
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        entry = resolve(ledger, build, ("build",))
        envelope = attest(ledger, entry, ledger.signer(key))
    write_output(envelope.dumps(), output, f" (signed by {envelope.signatures[0].keyid})")


@export_app.command("openlineage")
def export_openlineage(
    target: Annotated[
        str | None,
        typer.Argument(help="A dataset or build: NAME, NAME@VERSION or a digest (default: all)."),
    ] = None,
    output: OutOpt = None,
    emit: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Send the events to this OpenLineage HTTP endpoint."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Pipeline runs and their steps as OpenLineage run events (NDJSON).

    START and COMPLETE (or FAIL) per run and per step, with datasets, a parent facet per
    step and mlprov facets (record-set root, counts removed, review status); times from
    the ledger. Without TARGET, every run in the ledger. Needs mlprov[openlineage]."""
    from mlprov.export.openlineage import emit_events, ndjson, run_events
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        events = run_events(ledger, target)
    if emit is not None:
        sent = emit_events(events, emit)
        out.print(f"sent {sent} events to {emit}")
        if output is None:
            return
    write_output(ndjson(events), output, f" ({len(events)} events)")


@attest_app.command("verify")
def attest_verify(
    file: Annotated[Path, typer.Argument(help="A DSSE envelope (`mlprov export intoto`).")],
    key: Annotated[Path, typer.Option(metavar="PUB", help="The ledger's public key file (.pub).")],
    json: JsonOpt = False,
) -> None:
    """Check an in-toto attestation's signature with a public key.

    The signature over the exact payload bytes, the payload type and the statement; exit
    10 when a byte was changed. Prints the subject and the dependencies."""
    from mlprov.export.attestation import check
    from mlprov.ledger import keys as keyfiles

    verifier = keyfiles.load_verifier(key)
    found = check(read_file(file, "attestation"), verifier, str(file))
    if json:
        emit_json(found.to_json())
        return
    lines = [f"verified: signed by {found.keyid}"]
    lines += [f"subject  {name}  {_digests(d)}" for name, d in found.subjects]
    lines.append("dependencies:")
    lines += [f"  {name}  {_digests(d)}" for name, d in found.dependencies]
    print_lines([w for line in lines for w in wrap(line)])


def _digests(found: dict[str, str]) -> str:
    return " ".join(f"{alg}:{value}" for alg, value in found.items()) or "(no digest)"


def register(app: App) -> None:
    app.add_typer(attest_app, name="attest")
