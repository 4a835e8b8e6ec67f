"""The prediction logger benchmark runs, prints its figures, and can be imported."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "predictions.py"


def test_predictions_bench_prints_every_figure_with_its_baselines() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "2000", "--rate", "20000", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(run.stdout)
    assert figures["calls"] == 2000 and figures["rate"] == 20000
    for name in ("log", "queue", "noop"):
        for stat in ("p50", "p99", "max"):
            assert figures[f"{name}_{stat}_us"] >= 0, (name, stat)
        assert figures[f"{name}_p50_us"] <= figures[f"{name}_p99_us"] <= figures[f"{name}_max_us"]
    for key in ("achieved_rate", "write_per_s", "unpaced_write_per_s", "log_p99_vs_queue"):
        assert figures[key] > 0, key
    assert figures["batches"] >= 1


def test_run_is_importable_by_other_benches() -> None:
    spec = importlib.util.spec_from_file_location("bench_predictions", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.run(300, 5000.0)
    assert all(isinstance(v, float) for v in figures.values())
    assert figures["calls"] == 300.0 and figures["log_p99_us"] > 0
    text = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "300", "--spin"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "busy-waiting" in text and "log() p99" in text
