"""The commands. Each one parses, calls one library function, and renders."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.main import get_command_name
from typer.models import CommandInfo, TyperInfo

from mlprov.cli.attest import register as register_attest
from mlprov.cli.audit import register as register_audit
from mlprov.cli.capture import register as register_capture
from mlprov.cli.card import register as register_card
from mlprov.cli.demo import register as register_demo
from mlprov.cli.export import register as register_export
from mlprov.cli.governance import register as register_governance
from mlprov.cli.graph import register as register_graph
from mlprov.cli.helptext import App, RootGroup
from mlprov.cli.manifest import register as register_manifest
from mlprov.cli.options import (
    ActorOpt,
    JsonOpt,
    StoreOpt,
    actor_for,
    read_file,
    recording,
    resolve,
    write_output,
)
from mlprov.cli.records import register as register_records
from mlprov.cli.render import (
    describe,
    emit_json,
    entries_lines,
    err,
    out,
    print_lines,
    progress_bar,
    wrap,
)
from mlprov.cli.report import register as register_report
from mlprov.cli.serve import register as register_serve
from mlprov.cli.why import register as register_why
from mlprov.errors import InputError, MlprovError

if TYPE_CHECKING:
    from mlprov.ledger.checkpoint import SignedCheckpoint
    from mlprov.ledger.core import LedgerCore
    from mlprov.ledger.events import Entry


app = App(
    cls=RootGroup,
    help="mlprov: training-data provenance you can prove.\n\n"
    "Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 bad input or not found, 4 store, "
    "5 refused change, 6 missing extra, 7 gate blocked or lint or audit errors, "
    "10 integrity failure.",
)
keys_app = App(help="Signing keys (Ed25519, C2SP signed-note format).")
proof_app = App(help="Inclusion and consistency proofs of the log.")
app.add_typer(keys_app, name="keys")
app.add_typer(proof_app, name="proof")


KeyFiles = Annotated[
    list[Path] | None, typer.Option("--key", help="A trusted verifier key file (.pub); repeatable.")
]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create .mlprov/.")] = Path("."),
    store: StoreOpt = None,
    origin: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="The log's origin line (default: from the folder)."),
    ] = None,
) -> None:
    """Create a ledger.

    Makes DIRECTORY/.mlprov/ with its store, blobs and a signing key."""
    from mlprov.facade import Ledger
    from mlprov.identity import who

    with Ledger.init(directory, store=store, origin=origin) as ledger:
        out.print(f"created ledger {ledger.origin}")
        out.print(f"  store  {ledger.store.url}")
        if ledger.location and ledger.location.keys_dir:
            out.print(f"  keys   {ledger.location.keys_dir}")
        actor = who()
        out.print(f"  actor  {actor.describe()}")
        if actor.personal:  # said once, here, rather than taken silently into every event
            err.print(
                "note: events will name this personal identity; for a ledger to share, set "
                "MLPROV_ACTOR (a role will do) or pass --actor (see `mlprov whoami`)"
            )


@app.command()
def record(
    type: Annotated[str, typer.Argument(help="Event type, e.g. source, transform, dataset.")],
    payload: Annotated[
        str, typer.Option(metavar="JSON|@FILE", help="The payload as JSON, or @FILE.")
    ],
    parent: Annotated[
        list[str] | None, typer.Option(metavar="DIGEST", help="A parent digest; repeatable.")
    ] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record one event by hand (pipelines record their own)."""
    from mlprov.ledger.events import Event

    raw = read_file(Path(payload[1:]), "payload") if payload.startswith("@") else payload.encode()
    from mlprov.validation import loads_json

    data = loads_json(raw, "the payload")
    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        parents = [ledger.resolve(p) for p in parent or []]
        entry = ledger.append(Event.create(type, data, actor=actor, parents=parents))
    if json:
        emit_json(entry.to_json())
    else:
        out.print(f"recorded {entry.event.type.value} {entry.event.name or ''} {entry.digest}")


@app.command()
def log(
    type: Annotated[
        str | None, typer.Option(metavar="TYPE", help="Only this event type, e.g. source.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only events listed under this name.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="TIME", help="Recorded at or after (RFC 3339).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="TIME", help="Recorded before (RFC 3339).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 50,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Oldest first.")] = False,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """List recorded events, newest first."""
    from mlprov.facade import Ledger
    from mlprov.ledger.kinds import EventType

    if type is not None and type not in {t.value for t in EventType}:
        raise InputError(f"unknown event type {type!r}", "use one of " + ", ".join(EventType))
    with Ledger.open(store) as ledger:
        found = list(
            ledger.entries(
                type=type,
                name=name,
                since=since,
                until=until,
                limit=limit,
                newest_first=not oldest_first,
            )
        )
        about = {} if json else _about(ledger, found)
    if json:
        emit_json([e.to_json() for e in found])
    elif not found:
        err.print("no events match")
    else:
        print_lines(entries_lines(found, about))


def _about(ledger: LedgerCore, found: list[Entry]) -> dict[str, str]:
    """What a nameless event is about, for its row: a review's verdict and the name of
    what it judged, a prediction's build."""
    from mlprov.digest import Digest

    names: dict[str, str] = {}
    about: dict[str, str] = {}
    for e in found:
        payload = e.event.payload
        link = payload.get("target") or payload.get("build")
        if e.event.name is not None or not isinstance(link, str):
            continue
        if link not in names:
            try:
                names[link] = ledger.get(link).event.name or Digest(link).short
            except MlprovError:  # not in this ledger: say so rather than guess
                names[link] = f"{Digest(link).short} (not recorded)"
        status = payload.get("status")
        about[str(e.digest)] = f"{status} {names[link]}" if status else names[link]
    return about


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION, or a digest or prefix.")],
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show one event with its parents and children."""
    from mlprov.facade import Ledger
    from mlprov.ledger.names import NAMED

    with Ledger.open(store) as ledger:
        entry = resolve(ledger, ref, NAMED)
        parents, children = ledger.parents(entry.digest), ledger.children(entry.digest)
    if json:
        emit_json(
            {
                **entry.to_json(),
                "children": [str(c.digest) for c in children],
            }
        )
    else:
        describe(entry, parents, children)


@app.command()
def trace(
    ref: Annotated[str, typer.Argument(help="An event digest or unique prefix.")],
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Everything an event descends from.

    Back to every root, in log order."""
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        found = ledger.trace(ref)
    if json:
        emit_json([e.to_json() for e in found])
    else:
        print_lines(entries_lines(found))


@app.command()
def verify(
    key: KeyFiles = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A checkpoint published elsewhere to check the log against."),
    ] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check the whole history.

    Recomputes every digest, link, tile, root, signature and checkpoint; exit 10 when
    recorded history was changed."""
    from mlprov.facade import Ledger
    from mlprov.ledger import keys as keyfiles
    from mlprov.ledger.checkpoint import SignedCheckpoint

    trusted = [keyfiles.load_verifier(p) for p in key or []]
    external = [SignedCheckpoint.parse(read_file(p, "checkpoint")) for p in checkpoint or []]
    with (
        Ledger.open(store) as ledger,
        progress_bar("verifying", not json and sys.stderr.isatty()) as cb,
    ):
        report = ledger.verify(trusted, external=external, progress=cb)
    if json:
        emit_json(report.to_json())
    else:
        print_lines(
            [line for p in report.problems for line in wrap(f"FAIL {p.code}: {p.message}")]
            + [line for w in report.warnings for line in wrap(f"warning: {w}")],
            stderr=True,
        )
        if not report.ok:
            print_lines(
                wrap(
                    "hint: recorded history was changed outside mlprov: restore the store "
                    "from a backup, and compare with published checkpoints (docs/adr/0003)"
                ),
                stderr=True,
            )
        verdict = "verified" if report.ok else "NOT VERIFIED"
        print_lines(wrap(f"{verdict}: {report.summary()}"))
    if not report.ok:
        raise typer.Exit(10)


@app.command(name="checkpoint")
def checkpoint_cmd(
    key: Annotated[
        Path | None, typer.Option(help="Signing key file (default: the ledger's).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", help="Also write it to this file.")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List stored checkpoints instead.")] = False,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Sign and store a checkpoint of the log.

    A C2SP tlog-checkpoint of the current tree head; --list shows the stored ones."""
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        if list_:
            found = ledger.checkpoints()
            if json:
                emit_json([c.to_json() for c in found])
            else:
                for c in found:
                    cp = c.checkpoint
                    out.print(f"size {cp.size:>10}  root {cp.root.hex()}  signed by {_signers(c)}")
            return
        signed = ledger.checkpoint(ledger.signer(key))
    if json:
        emit_json(signed.to_json())
    else:
        write_output(signed.serialize(), None)
    if output is not None:
        write_output(signed.serialize(), output)


def _signers(c: SignedCheckpoint) -> str:
    return ", ".join(c.signers)


@keys_app.command("generate")
def keys_generate(
    name: Annotated[str, typer.Argument(help="Key name (no spaces, no '+').")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write it (default: the ledger's keys).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Create an Ed25519 key pair.

    NAME.key (private, mode 600) and NAME.pub."""
    from mlprov.facade import Ledger
    from mlprov.ledger import keys as keyfiles

    if directory is None:
        with Ledger.open(store) as ledger:
            folder = ledger.location.keys_dir if ledger.location else None
        if folder is None:
            raise InputError("this ledger has no keys folder", "pass --dir")
        directory = folder
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = keyfiles.SignerKey.generate(name)
    private, public = keyfiles.write_keypair(signer, directory)
    out.print(f"key id   {signer.verifier().key_id}")
    out.print(f"private  {private}  (never share it; it never enters the ledger)")
    out.print(f"public   {public}")
    out.print(f"verifier {signer.verifier().text()}")


@proof_app.command("inclusion")
def proof_inclusion(
    ref: Annotated[str, typer.Argument(help="An event digest or unique prefix.")],
    size: Annotated[
        int | None, typer.Option(help="Tree size (default: newest checkpoint).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the proof here.")] = None,
    store: StoreOpt = None,
) -> None:
    """Prove that an event is in the log."""
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        proof = ledger.inclusion_proof(ref, size)
    write_output(proof.dumps(), output)


@proof_app.command("consistency")
def proof_consistency(
    old: Annotated[int, typer.Argument(help="The older tree size.")],
    new: Annotated[int | None, typer.Argument(help="The newer tree size (default: now).")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the proof here.")] = None,
    store: StoreOpt = None,
) -> None:
    """Prove that the log only grew.

    The log of size OLD is a prefix of the log of size NEW."""
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        proof = ledger.consistency_proof(old, new)
    write_output(proof.dumps(), output)


@proof_app.command("check")
def proof_check(
    file: Annotated[Path, typer.Argument(help="A proof file.")],
    key: KeyFiles = None,
    json: JsonOpt = False,
) -> None:
    """Check a proof file on its own: no ledger is needed."""
    from rich.text import Text

    from mlprov.ledger import keys as keyfiles
    from mlprov.ledger.proofs import load_proof

    proof = load_proof(read_file(file, "proof"), str(file))
    proof.verify([keyfiles.load_verifier(p) for p in key or []])
    signed = bool(key)
    if json:
        emit_json({"ok": True, "format": proof.format, "signature_checked": signed})
    else:
        note = "" if signed else " (the hashes hold; no signature checked: pass --key)"
        out.print(Text.assemble(("valid ", "bold green"), proof.format + note))


def narrowed(args: Sequence[str]) -> typer.Typer:
    """`app` with only the command `args` name: typer builds every registered command
    (reading its signature and type hints) before it parses, a large part of a short
    command's start. `--version` gets none; `--help` and a name not known get them all."""
    if list(args) == ["--version"]:  # the root group answers it before any command is read
        return _only([], [])
    if not args or args[0].startswith("-"):
        return app
    commands = [
        c
        for c in app.registered_commands
        if (c.name or get_command_name(getattr(c.callback, "__name__", ""))) == args[0]
    ]
    groups = [g for g in app.registered_groups if g.name == args[0]]
    return _only(commands, groups) if commands or groups else app


def _only(commands: list[CommandInfo], groups: list[TyperInfo]) -> typer.Typer:
    only = App(cls=RootGroup, help=app.info.help)
    only.registered_commands, only.registered_groups = commands, groups
    only.callback()(_group)  # a group still, as `app` is, not a lone command
    return only


def _group() -> None:
    """mlprov: training-data provenance you can prove."""


register_records(app)
register_capture(app)
register_governance(app)
register_manifest(app)
register_why(app)
register_audit(app)
register_card(app)
register_report(app)
register_graph(app)
register_demo(app)
register_export(app)
register_attest(app)
register_serve(app)
