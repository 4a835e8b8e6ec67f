"""What a new user reads first: every command's `--help` at 80 columns.

Each help is rendered through the real command tree (typer's test runner, COLUMNS=80) and
checked for what reads badly: a line wider than the terminal, an option without help, a
cut name (`…`, `...`), an internal type name (`<bool>`, `{path}`, `list[str]`), markup
taken for formatting (`mlprov[demo]` must stay), and every help text shown whole. The
golden files in __snapshots__/ are the helps as a user sees them; after a deliberate change
to a help, read the new text and update them with `pytest --snapshot-update`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from mlprov.cli.app import app

COLUMNS = 80


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = dict(_commands(ROOT))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(COLUMNS)}, prog_name="mlprov"
    )
    assert result.exit_code == 0, result.output
    return result.output


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_walked() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"", "why", "triage", "fingerprint", "keys generate", "manifest show"} <= names
    assert len(names) > 30


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "mlprov")
def test_help_reads_well_at_80_columns(path: tuple[str, ...]) -> None:
    text = _help(path)
    wide = [line for line in text.splitlines() if len(line) > COLUMNS]
    assert not wide, f"lines wider than {COLUMNS} columns: {wide}"
    assert "…" not in text and "..." not in text.replace("COMMAND [ARGS]...", "")
    internal = re.findall(r"<\w[\w\[\], ]*>|\{\w+\}|\blist\[\w+\]", text)
    assert not internal, f"internal type names in the help: {internal}"
    command = COMMANDS[path]
    flat = _flat(text)
    first = (command.help or "").split("\n\n")[0]
    assert _flat(first) in flat, "the command's description is cut or rewritten"
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        assert param.help, f"{param.name} of `mlprov {' '.join(path)}` has no help text"
        assert _flat(param.help) in flat, f"the help of {param.name} is cut or read as markup"
        for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                assert re.search(rf"(^|[\s,/]){re.escape(name)}($|[\s,])", text, re.M), name
    for name, sub in getattr(command, "commands", {}).items():
        summary = (sub.help or "").split("\n\n")[0]
        assert _flat(summary) in flat, f"the summary of `{name}` is cut in the list"


def test_markup_is_never_swallowed() -> None:
    assert "mlprov[demo]" in _help(("demo",))
    assert "[env var: MLPROV_STORE]" in _flat(_help(("log",)))


def test_no_word_or_name_is_split_across_lines() -> None:
    text = _help(("fingerprint",))
    for line in text.splitlines():
        assert not line.rstrip().endswith("-"), f"a word split at a hyphen: {line!r}"
    assert "--aggregate-consumer-info / --no-aggregate-consumer-info" in text
    assert "--name NAME@VERSION" in text


def test_version() -> None:
    from mlprov import __version__

    result = CliRunner().invoke(app, ["--version"], prog_name="mlprov")
    assert result.exit_code == 0
    assert result.output == f"mlprov {__version__}\n"


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "mlprov")
def test_help_golden(path: tuple[str, ...], snapshot: Any) -> None:
    assert _help(path) == snapshot
