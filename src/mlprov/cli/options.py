"""What every command shares: the common options, and reading and writing the user's files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlprov.cli.render import emit_bytes, err, print_lines, wrap
from mlprov.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from mlprov.facade import Ledger
    from mlprov.ledger.core import LedgerCore
    from mlprov.ledger.events import Entry

__all__ = [
    "MAX_FILE",
    "ActorOpt",
    "JsonOpt",
    "StoreOpt",
    "actor_for",
    "read_file",
    "record_set_of",
    "recording",
    "resolve",
    "write_output",
]

#: Proofs, checkpoints, keys and payloads are small; a larger file is the wrong file.
MAX_FILE = 16 * 1024 * 1024

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="PATH|URL",
        envvar="MLPROV_STORE",
        help=(
            "The ledger: a folder, a postgresql:// URL, or the http(s):// URL of "
            "`mlprov serve` with its token in MLPROV_TOKEN (default: the nearest .mlprov/)."
        ),
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        metavar="NAME",
        envvar="MLPROV_ACTOR",
        help=(
            "Who is recording (default: git's user.email, else the login name; for a "
            "served ledger, its token's name)."
        ),
    ),
]


@contextmanager
def recording(store: str | None) -> Iterator[Ledger]:
    """The ledger for a command that records: when the command has appended events, a
    checkpoint covering them is signed before it returns (a ledger without a signing key
    has nothing to sign with, and keeps its events uncovered until one is made)."""
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        before = ledger.size
        yield ledger
        if ledger.size > before:
            with suppress(NotFoundError):  # no signing key here: nothing to sign with
                ledger.checkpoint()


def actor_for(ledger: LedgerCore, actor: str | None) -> str:
    """Who a command records as: `actor` (--actor or MLPROV_ACTOR), else the machine's
    default; for a served ledger the token's name, which the server records everything
    under, so a different `actor` is refused here rather than by the server."""
    from mlprov.identity import default_actor
    from mlprov.ledger.remote import RemoteCore

    if not isinstance(ledger, RemoteCore):
        return actor or default_actor()
    if actor is not None and actor != ledger.actor:
        raise InputError(
            f"the actor is {actor}, but this ledger is served and records everything "
            f"under its token's name, {ledger.actor}",
            "leave --actor and MLPROV_ACTOR out, or use a token of that name",
        )
    return ledger.actor


def write_output(data: bytes, path: Path | None, note: str = "") -> None:
    """Bytes to standard output, or to `path` in one step (then say so on standard error):
    a failure leaves no file, and never half of one."""
    import os
    import tempfile

    if path is None:
        emit_bytes(data)
        return
    if path.is_dir():
        raise InputError(f"{path} is a directory", "give the path of a file to write")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(
            f"cannot write {path}: the folder {folder} does not exist", "create it first"
        )
    tmp = None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mlprov-", delete=False) as f:
            tmp = Path(f.name)
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}", "check the path") from None
    err.print(f"wrote {path}{note}", markup=False, highlight=False)


def read_file(path: Path, what: str) -> bytes:
    """A small input file's bytes, with a clear error for a missing, huge or unreadable one."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise InputError(f"{path} is too large to be a {what}", "give the right file")
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {path} does not exist", "check the path") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from exc


def resolve(ledger: LedgerCore, ref: str, types: tuple[str, ...] | None = None) -> Entry:
    """The event `ref` names (NAME, NAME@VERSION or a digest: `LedgerCore.find`; by default
    a source, dataset or build); when a bare NAME was taken as its newest version, say
    which on standard error."""
    from mlprov.ledger.names import SUBJECTS

    found = ledger.find(ref, SUBJECTS if types is None else types)
    if found.note:  # plain: a read that prints only plain lines does not load rich
        print_lines(wrap(f"note: {found.note}"), stderr=True)
    return found.entry


def record_set_of(ledger: LedgerCore, ref: str, *, whole: bool = True) -> Any:
    """The record set of a set root, or of the source or dataset `ref` names: read whole,
    or (`whole=False`) a shard at a time as questions need them."""
    target: Entry | str = ref
    if ledger.stored_set(ref) is None:
        target = resolve(ledger, ref, ("source", "dataset"))
    return ledger.record_set(target) if whole else ledger.open_record_set(target)
