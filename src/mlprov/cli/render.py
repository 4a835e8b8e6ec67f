"""Rendering for the command line: JSON for machines, rich text for people."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from rich.console import Console

    from mlprov.ledger.events import Entry

#: A whole digest in a text; `short_ids` shows it as its first 12 hex digits and "…".
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_SHORT = 12


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
    import orjson

    emit_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def fail(message: str, hint: str | None) -> None:
    """The one-line error, and its hint; user text is never read as markup."""
    from rich.text import Text

    err.print(Text.assemble(("error: ", "bold red"), message))
    if hint:
        err.print(Text.assemble(("hint: ", "dim"), hint))


def width() -> int:
    """The columns to fill: COLUMNS when set, else the terminal's, else 80."""
    import shutil

    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def wrap(text: str, hang: int = 2, columns: int | None = None) -> list[str]:
    """`text` wrapped to the terminal at spaces only: no word, name, id or hyphenated word
    is ever split (one longer than the line stays whole). Each line keeps its own indent;
    its continuation lines are indented `hang` more."""
    limit = columns or width()
    lines: list[str] = []
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip(" ")))
        lines += textwrap.wrap(
            line.strip(" "),
            width=limit,
            initial_indent=indent,
            subsequent_indent=indent + " " * hang,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return lines


def short_ids(text: str) -> tuple[str, bool]:
    """Whole digests in `text` shown as their first 12 hex digits and "…"; and whether any
    was shortened (then say where they are whole)."""
    from mlprov.digest import shorten

    shortened = _DIGEST.sub(lambda m: shorten(m.group(1), _SHORT), text)
    return shortened, shortened != text


def entries_lines(entries: Sequence[Entry], about: Mapping[str, str] | None = None) -> list[str]:
    """Events one per line in aligned columns when they fit the terminal, else one block of
    two lines each; names and actors are never cut or split. A nameless event (a review, a
    prediction) shows what it is about (`about`, by digest) in the name column."""
    about = about or {}
    rows = [
        (
            str(e.seq),
            e.digest.short,
            e.event.type.value,
            e.event.recorded_at[:19].replace("T", " "),
            e.event.name or about.get(str(e.digest), ""),
            e.event.actor,
        )
        for e in entries
    ]
    head = ("#", "digest", "type", "recorded (UTC)", "name", "actor")
    sizes = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    if sum(sizes) + 2 * (len(sizes) - 1) <= width():
        lines = []
        for r in (head, *rows):
            cells = [
                r[0].rjust(sizes[0]),
                *(c.ljust(n) for c, n in zip(r[1:], sizes[1:], strict=True)),
            ]
            lines.append("  ".join(cells).rstrip())
        return lines
    lines = []
    for seq, digest, kind, when, name, actor in rows:
        lines.append(f"{seq.rjust(sizes[0])}  {kind} {name}".rstrip())
        pad = " " * (sizes[0] + 2)
        lines += wrap(f"{pad}{digest}  {when} UTC  by {actor}", hang=0)
    return lines


def print_lines(lines: Iterable[str], *, stderr: bool = False) -> None:
    """Lines as they are, without rich: stored text is never read as markup, and a command
    that prints only plain lines does not load rich."""
    text = "".join(line + "\n" for line in lines)
    if stderr:
        sys.stdout.flush()
        sys.stderr.write(text)
        sys.stderr.flush()
    else:
        emit_bytes(text.encode())


def describe(entry: Entry, parents: list[Entry], children: list[Entry]) -> None:
    """One event in plain lines: its digest whole, its payload as indented JSON."""
    import orjson

    ev = entry.event
    lines = [
        f"{ev.type.value} {ev.name or ''}".rstrip(),
        f"  digest       {entry.digest}",
        f"  position     {entry.seq}",
        f"  actor        {ev.actor}",
        f"  recorded at  {ev.recorded_at}",
    ]
    for label, group in (("parents", parents), ("children", children)):
        lines += wrap(f"  {label:<12} " + (", ".join(_ref(p) for p in group) or "none"), 13)
    lines.append("  payload")
    body = orjson.dumps(dict(ev.payload), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    lines += ["    " + line for line in body.decode().splitlines()]
    print_lines(lines)


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
