"""Manifest commands: show a dataset's manifest, record a hand-written one, print the
schema, and lint a manifest file or a recorded dataset."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from mlprov.cli.helptext import App
from mlprov.cli.options import ActorOpt, JsonOpt, StoreOpt, actor_for, recording, resolve
from mlprov.cli.render import emit_bytes, emit_json, out, print_lines, wrap
from mlprov.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from mlprov.facade import Ledger
    from mlprov.governance.manifest import Manifest

manifest_app = App(help="Dataset manifests: generated from the ledger, or recorded by hand.")
Format = Literal["yaml", "json"]
LintFormat = Literal["text", "json", "sarif"]
#: The exit code of `lint` when a finding has error severity: that of a blocking gate.
LINT_FAILED = 7


@manifest_app.command("show")
def show(
    dataset: Annotated[str, typer.Argument(help="A dataset: NAME, NAME@VERSION, or a digest.")],
    format: Annotated[Format, typer.Option("--format", help="yaml or json.")] = "yaml",
    store: StoreOpt = None,
) -> None:
    """The manifest of a recorded dataset, generated from the ledger."""
    from mlprov.facade import Ledger
    from mlprov.governance.manifest import dump, from_ledger

    with Ledger.open(store) as ledger:
        manifest = from_ledger(ledger, resolve(ledger, dataset, ("dataset",)))
    emit_bytes(dump(manifest, format).encode())


@manifest_app.command("record")
def record(
    file: Annotated[
        Path,
        typer.Argument(help="A hand-written manifest (YAML or JSON), or a Croissant file."),
    ],
    key: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="Key column of every file that names none."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="Subject column of every file that names none."),
    ] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record a hand-written manifest as a dataset, with the files it names.

    Checks the digests it gives; fingerprints its sources and data file; records its
    steps, and what an exclusion removed where its files show it. A Croissant 1.0 or 1.1
    metadata.json is read as one: its files (each checked against its sha256) are the
    sources, its licence and RAI facts theirs, its preprocessing protocol the steps."""
    from rich.text import Text

    from mlprov.capture.handwritten import record as record_manifest
    from mlprov.ledger.names import label

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        done = record_manifest(ledger, file, key=key, subject=subject, actor=actor)
    entry = done.dataset
    if json:
        emit_json(
            {
                **entry.to_json(),
                "recorded": done.fresh,
                "sources": dict(done.sources),
                "steps": dict(done.steps),
            }
        )
        return
    said = "recorded" if done.fresh else "already recorded (nothing new recorded):"
    out.print(Text(f"{said} dataset {label(entry)} {entry.digest}"))
    for ref, via in done.sources:
        print_lines(wrap(f"  source {ref}: {via}", hang=4))
    for step, known in done.steps:
        print_lines(wrap(f"  step {step}: {known}", hang=4))
    root = entry.event.payload.get("record_root")
    print_lines(wrap(f"  record set {root or 'none: name a data_file to have one'}", hang=4))


@manifest_app.command("schema")
def schema(store: StoreOpt = None) -> None:
    """The JSON Schema of the manifest (the full form). Needs no ledger."""
    from mlprov.governance.manifest import json_schema

    del store  # accepted like every command's, but a schema needs no ledger
    emit_bytes((jsonlib.dumps(json_schema(), indent=2, sort_keys=True) + "\n").encode())


def _read(path: Path) -> tuple[bytes, Manifest]:
    """A manifest file's bytes and manifest; a Croissant file is read as one (its files
    checked against their SHA-256, as `manifest record` reads it)."""
    from mlprov.capture.croissant_in import read as read_croissant
    from mlprov.governance.manifest import read

    found = read_croissant(path)
    return (found.raw, found.manifest) if found is not None else read(path)


def _ledger_for_file(store: str | None) -> Ledger | None:
    """The ledger to check a manifest file against: the one named, else the nearest one."""
    from mlprov.facade import Ledger
    from mlprov.store import SqlStore, find

    try:
        location = find(store)
    except StoreError:
        if store:
            raise
        return None
    return Ledger(SqlStore.open(location.url), location)


def lint(
    target: Annotated[
        str, typer.Argument(help="A manifest or Croissant file, or a dataset name or digest.")
    ],
    format: Annotated[LintFormat, typer.Option("--format", help="text, json or sarif.")] = "text",
    store: StoreOpt = None,
) -> None:
    """Lint a manifest file or a recorded dataset's manifest.

    Exit 7 on an error finding."""

    from mlprov import __version__
    from mlprov.facade import Ledger
    from mlprov.governance.lint import has_errors
    from mlprov.governance.lint import lint as run_lint
    from mlprov.governance.manifest import from_ledger
    from mlprov.governance.sarif import sarif_log

    path = Path(target)
    text: str | None = None
    if path.is_file():
        raw, manifest = _read(path)
        text = raw.decode("utf-8", errors="replace")
        ledger = _ledger_for_file(store)
        try:
            findings = run_lint(manifest, ledger, base=path.parent)
        finally:
            if ledger is not None:
                ledger.close()
        uri = path.as_posix()
    elif path.suffix.lower() in (".yaml", ".yml", ".json"):
        raise NotFoundError(f"no manifest file at {path}", "check the path")
    else:
        with Ledger.open(store) as ledger:
            manifest = from_ledger(ledger, resolve(ledger, target, ("dataset",)))
            findings = run_lint(manifest, ledger)
        uri = f"mlprov:{manifest.dataset}"
    failed = has_errors(findings)
    if format == "sarif":
        emit_json(sarif_log(findings, uri, text, __version__))
    elif format == "json":
        emit_json(
            {
                "target": uri,
                "dataset": manifest.dataset,
                "ok": not failed,
                "findings": [f.to_json() for f in findings],
            }
        )
    else:
        for f in findings:
            print_lines(wrap(f"{f.severity.upper()} {f.rule} {f.name}: {f.message}"))
            print_lines(wrap(f"  hint: {f.hint}", hang=6))
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "note")}
        summary = ", ".join(f"{n} {s}{'s' * (n != 1)}" for s, n in counts.items())
        print_lines(wrap(f"{uri}: {'fails' if failed else 'passes'} ({summary})"))
    if failed:
        raise typer.Exit(LINT_FAILED)


def _manifest_of(ledger: Ledger | None, ref: str) -> tuple[str, Manifest]:
    """A manifest file's contents, or the manifest of a recorded dataset or build."""
    from mlprov.capture.build import trained_on
    from mlprov.governance.manifest import from_ledger
    from mlprov.ledger.names import label

    path = Path(ref)
    if path.is_file():
        return path.as_posix(), _read(path)[1]
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        raise NotFoundError(f"no manifest file at {path}", "check the path")
    if ledger is None:
        raise NotFoundError(f"{ref} is not a file, and there is no ledger to look it up in")
    _, entry = trained_on(ledger, resolve(ledger, ref, ("build", "dataset")))
    written = " from a hand-written manifest" if "manifest" in entry.event.payload else ""
    return f"{label(entry)} ({entry.digest.short}){written}", from_ledger(ledger, entry)


def diff(
    a: Annotated[str, typer.Argument(help="A manifest file, or a dataset or build.")],
    b: Annotated[str, typer.Argument(help="A manifest file, or a dataset or build.")],
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Process drift from A to B.

    Sources, rights, transforms, reviews, digests and, where both record sets are stored,
    records and subjects added and removed."""
    from rich.text import Text

    from mlprov.facade import Ledger
    from mlprov.governance.diff import diff as compare
    from mlprov.governance.diff import yaml_diff

    files = all(Path(x).is_file() for x in (a, b))
    ledger = _ledger_for_file(store) if files else Ledger.open(store)
    try:
        (name_a, left), (name_b, right) = _manifest_of(ledger, a), _manifest_of(ledger, b)
        found = compare(left, right, ledger)
    finally:
        if ledger is not None:
            ledger.close()
    rendered = yaml_diff(left, right, (name_a, name_b))
    if json:
        emit_json({**found.to_json(), "a": name_a, "b": name_b, "yaml_diff": rendered})
        return
    if found.same:
        out.print(Text(f"no difference between {name_a} and {name_b}"))
        return
    for change in found.changes:  # wrapped to the terminal; the YAML diff below is as is
        for line in wrap(f"  {change}"):
            out.print(Text(line))
    out.print(Text(""))
    for line in rendered.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        out.print(Text(line, style=style))


def register(app: typer.Typer) -> None:
    app.add_typer(manifest_app, name="manifest")
    app.command()(lint)
    app.command()(diff)
