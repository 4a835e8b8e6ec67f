"""The house's shape: imports point down the layers, nothing imports itself back, and no
module grows past about 600 lines.

The contracts live in `.importlinter` at the repository's root and are read by
import-linter. Each is also shown to break on a copy of the package with one planted
import, so a later change cannot quietly bring back what they forbid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CONTRACTS = ROOT / ".importlinter"
MAX_LINES = 600
_LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter's contracts on the package found under `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", _LINT, "--config", str(CONTRACTS), "--no-cache"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package with `line` added to `module` (created if it is new)."""
    src = tmp_path / "src"
    shutil.copytree(SRC / "mlprov", src / "mlprov", ignore=shutil.ignore_patterns("__pycache__"))
    path = src.joinpath(*module.split(".")).with_suffix(".py")
    text = path.read_text() if path.exists() else '"""A module planted by a test."""\n'
    path.write_text(text + line + "\n")
    return src


def _broken(result: subprocess.CompletedProcess[str]) -> str:
    """The broken contracts' section of import-linter's report."""
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout[result.stdout.index("Broken contracts") :]


def test_the_contracts_hold() -> None:
    result = _lint_imports(SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("mlprov.ledger.events", "import mlprov.facade"),  # the core reaching the facade
        ("mlprov.ledger.core", "from mlprov.answers.why import why"),  # ... or an answer
        ("mlprov.governance.review", "from mlprov.capture import pipeline"),  # domain upward
        ("mlprov.store.sql", "from mlprov.records import sets"),  # across one layer
    ],
)
def test_an_upward_import_breaks_the_layers(tmp_path: Path, module: str, line: str) -> None:
    report = _broken(_lint_imports(_copy_with(tmp_path, module, line)))
    assert "Imports point down the layers" in report
    assert module in report


def test_an_import_inside_a_function_counts_too(tmp_path: Path) -> None:
    planted = "def _later():\n    from mlprov.cli import app\n    return app"
    report = _broken(_lint_imports(_copy_with(tmp_path, "mlprov.records.canonical", planted)))
    assert "mlprov.records.canonical -> mlprov.cli.app" in report


def test_a_cycle_between_modules_breaks_acyclicity(tmp_path: Path) -> None:
    # `sets` imports `halves`; planting the way back closes a cycle inside one package.
    src = _copy_with(tmp_path, "mlprov.records.halves", "from mlprov.records import sets")
    report = _broken(_lint_imports(src))
    assert "No import cycles between packages or modules" in report
    assert ".halves -> .sets" in report


def test_a_module_outside_every_layer_is_refused(tmp_path: Path) -> None:
    report = _broken(_lint_imports(_copy_with(tmp_path, "mlprov.helpers", "")))
    assert "mlprov.helpers" in report


def test_no_module_is_over_about_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules (lines): {long}"
