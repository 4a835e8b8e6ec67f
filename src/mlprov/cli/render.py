"""Rendering for the command line: JSON for machines, rich text for people."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from mlprov.ledger.events import Entry


class _Lazy:
    """A rich `Console` made on first use: rich loads only for a command that prints with it,
    not for `--help` or `--version`."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return getattr(self._console, name)

    def real_console(self) -> Console:
        """The console itself, for rich objects that take one (a progress bar)."""
        self.__getattr__("file")
        assert self._console is not None
        return self._console


out = cast("Console", _Lazy(stderr=False))
err = cast("Console", _Lazy(stderr=True))


def emit_bytes(data: bytes) -> None:
    """Write bytes as they are, whatever the locale's text encoding."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def emit_json(value: Any) -> None:
    emit_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def fail(message: str, hint: str | None) -> None:
    """The one-line error, and its hint; user text is never read as markup."""
    from rich.text import Text

    err.print(Text.assemble(("error: ", "bold red"), message))
    if hint:
        err.print(Text.assemble(("hint: ", "dim"), hint))


def entries_table(entries: Iterable[Entry]) -> Table:
    from rich.table import Table
    from rich.text import Text

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
            Text(e.event.name or ""),  # stored text is shown literally, never as markup
            Text(e.event.actor),
            e.event.recorded_at[:19].replace("T", " "),
        )
    return table


def describe(entry: Entry, parents: list[Entry], children: list[Entry]) -> None:
    from rich.text import Text

    ev = entry.event
    out.print(Text.assemble((ev.type.value, "bold"), " ", ev.name or ""))
    out.print(f"  digest       {entry.digest}")
    out.print(f"  position     {entry.seq}")
    out.print(Text(f"  actor        {ev.actor}"))
    out.print(f"  recorded at  {ev.recorded_at}")
    for label, group in (("parents", parents), ("children", children)):
        out.print(Text(f"  {label:<12} " + (", ".join(_ref(p) for p in group) or "none")))
    out.print("  payload")
    body = orjson.dumps(dict(ev.payload), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    for line in body.decode().splitlines():
        out.print("    " + line, markup=False)


def _ref(e: Entry) -> str:
    return f"{e.digest.short} ({e.event.type.value} {e.event.name or ''})".replace(" )", ")")


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar with rate and ETA; yields a `callback(done, total)`."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeRemainingColumn(),
        console=cast(_Lazy, err).real_console(),
        transient=True,
        auto_refresh=False,  # no refresh thread: verify may fork worker processes
    )
    with bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            bar.refresh()

        yield update
