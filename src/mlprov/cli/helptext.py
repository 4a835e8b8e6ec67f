"""How the command line's help reads: plain text that fits the terminal, written here once.

Every `--help` is plain text (no markup: `mlprov[demo]` stays as written), wrapped to the
terminal but never wider than 80 columns, and no word, option name, id or hyphenated name
is cut or split across lines. Options name what they take in capitals (`--name
NAME@VERSION`, `--store PATH|URL`); an option without its own `metavar` gets one from its
type (TEXT, PATH, N, NUMBER, or its choices). The classes are typer's own with these
rules on top; `App` makes every command and group of the `mlprov` command use them.

This module loads typer and nothing else of mlprov's: `mlprov --help` and `--version`
start without the ledger, Arrow or rich.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from typer._click.core import Context as ClickContext
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup

from mlprov.cli.coercion import plain

__all__ = ["App", "Command", "Group", "RootGroup", "usage_error"]

#: Help is never wider than this, whatever the terminal (click's own limit).
MAX_WIDTH = 80
#: Joins the words of a note such as `[env var: MLPROV_STORE]` so that it is never split.
_KEEP = "\x00"


def _wrap(text: str, width: int, indent: str = "", first: str | None = None) -> list[str]:
    """Lines of one paragraph: broken at spaces only, never inside a word or at a hyphen."""
    lines = textwrap.wrap(
        re.sub(r"[ \t\n]+", " ", text).strip(),
        width=max(width, 20),
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_KEEP, " ") for line in lines]


def _paragraphs(text: str) -> list[str]:
    return [p for p in inspect.cleandoc(text).split("\n\n") if p.strip()]


class Formatter(HelpFormatter):
    """click's formatter, wrapping at spaces only (no split `record-set`, no cut `--no-…`)."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        blocks = [_wrap(p, self.width, indent) for p in _paragraphs(text)]
        self.write("\n\n".join("\n".join(lines) for lines in blocks) + "\n")

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        widest = max((len(first) for first, _ in rows), default=0)
        column = min(widest, col_max) + col_spacing
        indent = " " * (self.current_indent + column)
        for first, second in rows:
            lead = " " * self.current_indent + first
            if not second:
                self.write(lead + "\n")
                continue
            if len(first) <= column - col_spacing:
                head = lead.ljust(self.current_indent + column)
            else:  # a long name gets its own line; its help starts below it
                self.write(lead + "\n")
                head = indent
            lines: list[str] = []
            for i, paragraph in enumerate(_paragraphs(second)):
                lines += _wrap(paragraph, self.width, indent, head if i == 0 else None)
            self.write("\n".join(lines) + "\n")


class Context(typer.Context):
    formatter_class = Formatter

    def make_formatter(self) -> Formatter:
        return Formatter(width=self.terminal_width, max_width=self.max_content_width or MAX_WIDTH)


def _kind(param: Any) -> str:
    """What an option takes, in capitals, from its type when it names none itself."""
    desc = getattr(param, "type_descriptor", None)
    choices = getattr(desc, "choices", None)
    if choices:
        return "|".join(str(c) for c in choices)
    annotation = getattr(desc, "annotation", str)
    args = getattr(annotation, "__args__", ())
    if args and getattr(annotation, "__origin__", None) is list:
        annotation = args[0]
    kinds: dict[Any, str] = {int: "N", float: "NUMBER", Path: "PATH", datetime: "TIME"}
    return kinds.get(annotation, "TEXT")


def _metavar(param: Any) -> str:
    return str(param.metavar) if param.metavar else _kind(param)


def _extras(param: Any, ctx: ClickContext) -> str:
    """`[required]`, `[default: 50]`, `[env var: MLPROV_STORE]`: what the help adds."""
    notes = []
    default = param.default
    if not param.required and default not in (None, False, True, (), []) and not callable(default):
        shown = default.value if hasattr(default, "value") else default
        notes.append(f"default: {shown}")
    if param.envvar:
        notes.append(f"env var: {param.envvar}")
    if param.required:
        notes.append("required")
    return f"[{'; '.join(notes)}]".replace(" ", _KEEP) if notes else ""


def _option_record(param: Any, ctx: ClickContext) -> tuple[str, str]:
    names = ", ".join(param.opts)
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    elif not param.is_flag:
        names += " " + _metavar(param)
    return names, f"{param.help or ''} {_extras(param, ctx)}".strip()


def _argument_usage(param: Any) -> str:
    name = _metavar_of_argument(param)
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


def _metavar_of_argument(param: Any) -> str:
    return str(param.metavar) if param.metavar else param.name.upper()


def _format_params(
    command: Any,
    ctx: ClickContext,
    formatter: HelpFormatter,
    options: list[tuple[str, str]] | None = None,
) -> None:
    arguments: list[tuple[str, str]] = []
    options = list(options or [])
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            extras = "" if param.required else _extras(param, ctx)
            arguments.append((_metavar_of_argument(param), f"{param.help or ''} {extras}".strip()))
        else:
            options.append(_option_record(param, ctx))
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


def _cheap_help_option(option: Any) -> Any:
    """The `--help` option with a bool default: typer checks a value that is not a bool with
    pydantic, which `mlprov log --help` would otherwise load for an option not given."""
    if option is not None and option.default is None:
        option.default = False
    return option


class Command(TyperCommand):
    """A command whose help follows the rules above."""

    context_class = Context

    def get_help_option(self, ctx: ClickContext) -> Any:
        return _cheap_help_option(super().get_help_option(ctx))

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        plain(self.params)  # typer's own coercion would load pydantic for every command
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: ClickContext) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_usage(param))
        return pieces

    def format_options(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        _format_params(self, ctx, formatter)


class Group(TyperGroup):
    """A group whose help lists each command with its whole first sentence, never cut."""

    context_class = Context

    def get_help_option(self, ctx: ClickContext) -> Any:
        return _cheap_help_option(super().get_help_option(ctx))

    def format_options(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        _format_params(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = command.short_help or (_paragraphs(command.help or "") or [""])[0]
            rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class RootGroup(Group):
    """The `mlprov` group, with `--version`.

    The group reads `--version` itself rather than declaring a typer option: typer checks
    each option's value with pydantic, even that of an option not given, which would load
    pydantic for every command and every `--help`."""

    VERSION = ("--version", "Print the version and exit.")

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        if args and args[0] == self.VERSION[0]:
            from mlprov import __version__

            typer.echo(f"mlprov {__version__}")
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        _format_params(self, ctx, formatter, [self.VERSION])
        self.format_commands(ctx, formatter)


class App(typer.Typer):
    """A `typer.Typer` whose commands and groups are `Command` and `Group`, without markup."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("pretty_exceptions_enable", False)
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or Command, **kwargs)


def usage_error(message: str) -> Exception:
    """The command line's own usage error (exit 2), as for a missing option."""
    from typer._click.exceptions import UsageError
    from typer._click.globals import get_current_context

    return UsageError(message, get_current_context(silent=True))
