"""Graphviz's `dot`: the layout engine that turns DOT text into SVG (or PNG, PDF).

`dot` is a program, not a Python package: Debian and Ubuntu ship it in `graphviz`
(`apt-get install graphviz`), macOS in Homebrew's `graphviz`. It runs as a subprocess,
with the DOT text on its standard input and no shell, under a timeout. A machine without
it gets :class:`~mlprov.errors.MissingProgramError` (exit 6) saying how to install it.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Literal

from mlprov.errors import InputError, MissingProgramError, MlprovError

__all__ = ["Format", "render"]

Format = Literal["svg", "png", "pdf"]
#: A lineage graph lays out in well under a second; this bounds a runaway layout.
TIMEOUT = 60.0
_INSTALL = "install Graphviz: apt-get install graphviz (Debian, Ubuntu), brew install graphviz"


def _missing() -> MissingProgramError:
    return MissingProgramError(
        "dot",
        "Graphviz",
        f"{_INSTALL} (macOS); or lay out the text of `to_dot` elsewhere",
        cli_hint=f"{_INSTALL} (macOS); or take --format dot and lay it out elsewhere",
    )


def render(dot: str, format: Format = "svg", *, timeout: float = TIMEOUT) -> bytes:
    """`dot` laid out by Graphviz, in `format`."""
    program = shutil.which("dot")
    if program is None:
        raise _missing()
    try:
        done = subprocess.run(  # a fixed program and arguments, no shell
            [program, f"-T{format}"],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:  # removed between the look-up and the run
        raise _missing() from None
    except subprocess.TimeoutExpired:
        raise InputError(
            f"Graphviz did not lay the graph out within {timeout:g} s",
            "take it as DOT text (--format dot, `to_dot`) and lay it out with more time",
        ) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MlprovError(
            f"Graphviz's dot failed (exit {done.returncode}): "
            + (lines[0] if lines else "no message"),
            "this is a bug in the DOT text mlprov wrote: rerun with MLPROV_DEBUG=1 and report it",
        )
    return done.stdout
