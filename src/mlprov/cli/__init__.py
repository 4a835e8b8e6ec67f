"""The `mlprov` command: parse, call one library function, render.

Exit codes (also in `mlprov --help` and README):
0 success · 1 unexpected error · 2 usage error · 3 bad input or not found ·
4 store cannot be opened or used · 5 refused change (duplicate, unknown parent) ·
6 missing optional dependency · 7 a gate blocks the use (or lint found errors) ·
10 integrity failure (history does not verify)
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from mlprov.cli.app import app, narrowed
from mlprov.cli.render import emit_bytes, fail
from mlprov.errors import MlprovError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `mlprov` console script."""
    try:
        code = narrowed(sys.argv[1:])(prog_name="mlprov", standalone_mode=False)
    except MlprovError as exc:
        fail(exc.message, exc.cli_hint or exc.hint)  # the command line's hint where it differs
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", "nothing half-written was kept")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no raw traceback
        code = getattr(exc, "exit_code", None)
        if hasattr(exc, "format_message") and isinstance(code, int):
            # the command line's own usage errors (typer's click): one line and a hint
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # a group alone: its help, exit 2
                emit_bytes(exc.format_message().encode() + b"\n")
                sys.exit(code)
            # typer checks some values with pydantic, whose messages open "Value error, "
            message = exc.format_message().replace("Value error, ", "")
            if message:  # empty when the help was shown instead
                fail(message, f"see `{ctx.command_path if ctx else 'mlprov'} --help`")
            sys.exit(code)
        if os.environ.get("MLPROV_DEBUG"):
            traceback.print_exc()
        fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in mlprov; rerun with MLPROV_DEBUG=1 and report it",
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
