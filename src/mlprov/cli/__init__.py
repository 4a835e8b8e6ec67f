"""The `mlprov` command: parse, call one library function, render.

Exit codes (also in `mlprov --help` and README):
0 success · 1 unexpected error · 2 usage error · 3 bad input or not found ·
4 store cannot be opened or used · 5 refused change (duplicate, unknown parent) ·
6 missing optional dependency · 10 integrity failure (history does not verify)
"""

from __future__ import annotations

import os
import sys
import traceback

from mlprov.cli.app import app
from mlprov.cli.render import err
from mlprov.errors import MlprovError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `mlprov` console script."""
    try:
        app(prog_name="mlprov")
    except MlprovError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
        if exc.hint:
            err.print(f"[dim]hint:[/] {exc.hint}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; nothing half-written was kept")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no raw traceback
        if os.environ.get("MLPROV_DEBUG"):
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}")
        err.print("[dim]hint:[/] this is a bug in mlprov; rerun with MLPROV_DEBUG=1 and report it")
        sys.exit(1)
