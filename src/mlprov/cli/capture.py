"""Capture commands: record a build or an evaluation, and show what a step changed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlprov.cli.options import ActorOpt, JsonOpt, StoreOpt, actor_for, recording, resolve
from mlprov.cli.render import emit_json, err, out, progress_bar
from mlprov.errors import InputError

_CHANGES = ("removed", "changed", "added")


def build(
    name: Annotated[str, typer.Argument(help="The model, e.g. support-classifier-v7.")],
    dataset: Annotated[
        str, typer.Option(metavar="REF", help="The dataset trained on: name or digest.")
    ],
    artifact: Annotated[Path | None, typer.Option(help="The model file or directory.")] = None,
    config: Annotated[Path | None, typer.Option(help="The training config file.")] = None,
    eval_set: Annotated[str | None, typer.Option(help="Evaluation dataset or source.")] = None,
    code_version: Annotated[
        str | None, typer.Option(help="Code version (default: this repository's commit).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file for the training gates (.toml, .json).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Record the build even if a gate blocks it.")
    ] = False,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record a build of a model.

    The artifact digest linked to its dataset, config, code and eval set. The training
    gates run first (exit 7 if one blocks); --force records the override."""
    from rich.text import Text

    from mlprov.governance.policy import build_gates
    from mlprov.ledger.names import label

    shown = not json and err.is_terminal
    with recording(store) as ledger, progress_bar("hashing the artifact", shown) as cb:
        actor = actor_for(ledger, actor)
        trained = resolve(ledger, dataset, ("dataset",))
        held = resolve(ledger, eval_set, ("dataset", "source")) if eval_set else None
        entry = ledger.build(
            name,
            dataset=trained,
            artifact=artifact,
            config=config,
            eval_set=held,
            code_version=code_version,
            actor=actor,
            repo=Path.cwd(),
            progress=cb,
            gates=build_gates(ledger, "training", policy),
            force=force,
        )
    payload = entry.event.payload
    if json:
        emit_json(entry.to_json())
        return
    out.print(Text(f"recorded build {name} {entry.digest}"))
    out.print(Text(f"  {'dataset':<16} {label(trained)} ({trained.digest})"))
    for field in ("artifact_digest", "config_digest", "code_version"):
        if field in payload:
            out.print(Text(f"  {field:<16} {payload[field]}"))
    if held is not None:
        out.print(Text(f"  {'eval_set':<16} {label(held)} ({held.digest})"))
    if payload.get("forced"):
        err.print(f"warning: forced past {len(payload.get('findings', ()))} blocking finding(s)")


def evaluation(
    build: Annotated[str, typer.Argument(help="The build: name or digest.")],
    name: Annotated[str, typer.Argument(help="The evaluation, e.g. helpfulness-v2.")],
    metric: Annotated[list[str], typer.Option(metavar="NAME=VALUE", help="A metric; repeatable.")],
    eval_set: Annotated[str | None, typer.Option(help="Evaluation dataset or source.")] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record a build's metrics on an evaluation set."""
    metrics: dict[str, float] = {}
    for item in metric:
        key, eq, value = item.partition("=")
        try:
            metrics[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not key.strip():
            raise InputError(f"{item!r} is not NAME=NUMBER", "e.g. --metric accuracy=0.91")
    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        made = resolve(ledger, build, ("build",))
        held = resolve(ledger, eval_set, ("dataset", "source")) if eval_set else None
        entry = ledger.evaluation(made, name, metrics, eval_set=held, actor=actor)
    if json:
        emit_json(entry.to_json())
    else:
        out.print(f"recorded evaluation {name} {entry.digest}")


def changes(
    ref: Annotated[str, typer.Argument(help="A transform event (digest or prefix).")],
    change: Annotated[
        str | None,
        typer.Option(metavar="removed|changed|added", help="Only records changed so."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """What a step did, record by record.

    Removed (with reason), changed and added, by key and digest — never contents."""
    from mlprov.capture.lineage import load_changes
    from mlprov.digest import Digest, shorten
    from mlprov.facade import Ledger

    if change is not None and change not in _CHANGES:
        raise InputError(f"--change {change!r} is not one of {', '.join(_CHANGES)}")
    with Ledger.open(store) as ledger:
        entry = ledger.get(ref)
        payload = entry.event.payload
        if entry.event.type.value != "transform":
            raise InputError(
                f"{entry.digest.short} is a {entry.event.type.value} event, not a step",
                "give a transform event; `mlprov log --type transform` lists them",
            )
        rows: list[dict[str, Any]] = []
        if "changes" in payload:
            table = load_changes(ledger.blobs_dir, Digest(payload["changes"]))
            rows = table.to_pylist()
    rows = [r for r in rows if change is None or r["change"] == change][:limit]
    shown = [{**r, "before": _hex(r["before"]), "after": _hex(r["after"])} for r in rows]
    if json:
        emit_json({"step": entry.event.name, "counts": payload.get("counts", {}), "rows": shown})
        return
    counts = payload.get("counts", {})
    out.print(
        f"{entry.event.name} (step {payload.get('step', '?')}): "
        + ", ".join(f"{k} {counts[k]:,}" for k in ("in", "out", *_CHANGES) if k in counts)
    )
    for r in shown:
        digest = r["after"] or r["before"]
        reason = f"  ({r['reason']})" if r["reason"] else ""
        out.print(f"  {r['change']:<8} key {r['key'] or '-'}  {shorten(digest, 16)}{reason}")


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def register(app: typer.Typer) -> None:
    app.command()(build)
    app.command()(evaluation)
    app.command()(changes)
