"""Rendering for the command line: JSON for machines, rich text for people."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mlprov.ledger.events import Entry

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def entries_table(entries: Iterable[Entry]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("digest", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("name", min_width=16, overflow="fold")
    table.add_column("actor", overflow="fold")
    table.add_column("recorded (UTC)", no_wrap=True)
    for e in entries:
        table.add_row(
            str(e.seq),
            e.digest.short,
            e.event.type.value,
            e.event.name or "",
            e.event.actor,
            e.event.recorded_at[:19].replace("T", " "),
        )
    return table


def describe(entry: Entry, parents: list[Entry], children: list[Entry]) -> None:
    ev = entry.event
    out.print(f"[bold]{ev.type.value}[/] {ev.name or ''}")
    out.print(f"  digest       {entry.digest}")
    out.print(f"  position     {entry.seq}")
    out.print(f"  actor        {ev.actor}")
    out.print(f"  recorded at  {ev.recorded_at}")
    for label, group in (("parents", parents), ("children", children)):
        out.print(f"  {label:<12} " + (", ".join(_ref(p) for p in group) or "none"))
    out.print("  payload")
    body = orjson.dumps(dict(ev.payload), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    for line in body.decode().splitlines():
        out.print("    " + line, markup=False)


def _ref(e: Entry) -> str:
    return f"{e.digest.short} ({e.event.type.value} {e.event.name or ''})".replace(" )", ")")


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar with rate and ETA; yields a `callback(done, total)`."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
