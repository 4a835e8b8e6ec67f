"""Startup benchmark: how long `mlprov` takes to answer, beside `python -c pass`, same run.

    python bench/startup.py [--repeat 7] [--json]

Each command runs in a fresh interpreter (`python -m mlprov.cli ...`, no console-script
shim) against a small ledger made here; the best of `--repeat` wall times is printed with
its ratio to the best time of `python -c pass`. Targets on the reference machine: `--help`
and `--version` under 0.2 s, simple reads (`log`, `show`, `status`) under 0.4 s. Also
printed: which heavy libraries each command loads (`--help` and `--version` load none;
nor do the simple reads).

The commands run with Python's bytecode cache on (`PYTHONDONTWRITEBYTECODE` is removed
from their environment), as an installed mlprov runs: without it every start would also
compile mlprov's sources, which no installed copy does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY = ("pyarrow", "datafusion", "duckdb", "sqlalchemy", "pydantic", "rich", "numpy")
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('LOADED ' + ' '.join(sorted(m for m in {heavy} "
    "if m in sys.modules)) + '\\n'))\n"
    "sys.argv = ['mlprov', *{args}]\n"
    "from mlprov.cli import main\n"
    "main()\n"
)


def best_time(argv: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def loaded(args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    code = PROBE.format(heavy=repr(HEAVY), args=repr(args))
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    line = [x for x in run.stderr.splitlines() if x.startswith("LOADED")][-1]
    return line.split()[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLPROV_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(MLPROV_ACTOR="bench@example.com", COLUMNS="80")
    cli = [sys.executable, "-m", "mlprov.cli"]
    with tempfile.TemporaryDirectory(prefix="mlprov-startup.") as folder:
        where = Path(folder)
        subprocess.run([*cli, "init"], cwd=where, env=env, capture_output=True, check=True)
        recorded = subprocess.run(
            [*cli, "record", "source", "--payload", '{"name": "tickets", "version": "1"}'],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        commands = {
            "--help": ["--help"],
            "--version": ["--version"],
            "why --help": ["why", "--help"],
            "log": ["log"],
            "show": ["show", recorded],
            "status": ["status", "tickets@1"],
            "verify": ["verify"],
        }
        baseline = best_time([sys.executable, "-c", "pass"], where, env, options.repeat)
        rows: dict[str, Any] = {}
        for label, args in commands.items():
            seconds = best_time([*cli, *args], where, env, options.repeat)
            rows[label] = {
                "seconds": round(seconds, 4),
                "ratio": round(seconds / baseline, 2),
                "loads": loaded(args, where, env),
            }
    figures = {"python_pass_s": round(baseline, 4), "repeat": options.repeat, "commands": rows}
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"python -c pass      {baseline:.3f} s   (baseline, best of {options.repeat})")
    for label, row in rows.items():
        heavy = ", ".join(row["loads"]) or "none"
        print(f"mlprov {label:<12} {row['seconds']:.3f} s  x{row['ratio']:<5}  loads: {heavy}")


if __name__ == "__main__":
    main()
