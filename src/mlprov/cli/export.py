"""`mlprov export FORMAT TARGET`: the ledger in the open formats auditors' tools read."""

from __future__ import annotations

from mlprov.cli.helptext import App

export_app = App(help="Write a build, a dataset or the ledger in an open format.")


def register(app: App) -> None:
    app.add_typer(export_app, name="export")
