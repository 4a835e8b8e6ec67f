"""The benchmarks run and print their figures (their speed is judged by people, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent / "bench"


def figures_of(bench: str, *args: str) -> Any:
    """Run `bench/<bench>` with `args` and `--json`; its figures."""
    run = subprocess.run(
        [sys.executable, str(BENCH / bench), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(run.stdout)


def test_ledger_bench_prints_every_figure_with_its_baseline() -> None:
    figures = figures_of("ledger.py", "--events", "3000", "--durable", "40")
    assert figures["events"] == 3000
    for section, keys in {
        "batched": ("append_batched_per_s", "raw_batched_per_s", "ratio"),
        "durable": ("append_durable_per_s", "raw_durable_per_s", "ratio"),
        "reads": ("verify_events_per_s", "trace_median_ms", "proof_generate_median_ms"),
    }.items():
        for key in keys:
            assert figures[section][key] > 0, (section, key)
    assert figures["reads"]["trace_depth"] == 20
    assert figures["reads"]["proof_hashes"] >= 11  # ceil(log2(3000))


def test_fingerprint_bench_prints_every_figure_with_its_baselines() -> None:
    figures = figures_of("fingerprint.py", "--records", "20000", "--optouts", "3000")
    assert figures["records"] == 20000
    for key in ("end_to_end_per_s", "hash_bound_per_s", "plain_loop_per_s", "peak_rss_mib"):
        assert figures[key] > 0, key
    assert figures["optout_hits"] == 3000  # users 0, 3, ..., 8997 all have records
    assert all(v > 0 for v in figures["membership_us"] + figures["non_membership_us"])


def test_capture_bench_prints_the_overhead_per_step_and_the_prediction_latency() -> None:
    figures = figures_of("capture.py", "--rows", "3000", "--repeat", "1", "--calls", "300")
    assert figures["rows"] == 3000
    assert [run["frames"] for run in figures["runs"]] == ["pandas", "polars"]
    for run in figures["runs"]:
        assert 0 < run["kept"] < 3000 and run["same_root_every_run"] is True
        assert run["hash_source_once_s"] > 0
        peer = ["mlflow"] if run["mlflow_note"] == "installed" else []
        for variant in ["plain", "captured", "without_step_sets", *peer]:
            assert run[variant]["wall_s"] > 0 and run[variant]["cpu_s"] > 0, variant
            assert "wall_overhead" in run[variant] and "cpu_overhead" in run[variant]
            assert list(run[variant]["steps"]) == [
                "open",
                "sources",
                "normalize",
                "redact",
                "opt-out",
                "dedupe",
                "dataset",
                "close",
            ]
        if not peer:
            assert run["mlflow_note"] == "not installed: pip install 'mlprov[bench]'"
    assert figures["predictions"]["log_p99_us"] > 0


def test_why_bench_prints_each_question_beside_opening_the_ledger_and_the_whole_read() -> None:
    figures = figures_of("why.py", "--records", "3000")
    assert figures["records"] == 3000 and figures["steps"] == 10
    assert set(figures["questions"]) == {"in", "removed", "out"}
    for name, q in figures["questions"].items():
        for key in ("open_ms", "why_ms", "whole_why_ms", "rss_before_mib", "rss_peak_mib"):
            assert q[key] > 0, (name, key)
        assert q["same_answer"] is True, name
    assert figures["questions"]["in"]["present"] is True
    assert figures["questions"]["removed"]["present"] is False
    assert figures["questions"]["out"]["present"] is False


def test_startup_bench_prints_each_command_beside_python_and_what_it_loads() -> None:
    figures = figures_of("startup.py", "--repeat", "1")
    assert figures["python_pass_s"] > 0
    commands = figures["commands"]
    assert {"--help", "--version", "log", "show", "status"} <= set(commands)
    for row in commands.values():
        assert row["seconds"] > 0 and row["ratio"] > 0
    # help and version need no store, validation, Arrow or rich: they must not load them
    assert commands["--help"]["loads"] == [] and commands["--version"]["loads"] == []
    # a simple read opens the store through the standard library's sqlite3, validates
    # nothing and prints plain lines: none of the heavy libraries either
    for read in ("log", "show", "status", "verify"):
        assert commands[read]["loads"] == [], read


def test_server_bench_prints_both_runs_and_loses_nothing() -> None:
    figures = figures_of("server.py", "--clients", "4", "--seconds", "1.5")
    assert figures["clients"] == 4
    for run in ("server", "in_process"):
        assert figures[run]["iterations"] > 0 and figures[run]["errors"] == []
        for key in ("ops_per_s", "write_p50_ms", "write_p99_ms", "read_p50_ms", "read_p99_ms"):
            assert figures[run][key] > 0, (run, key)
    assert figures["server_share_of_in_process"] > 0
    assert figures["lost"] == 0 and figures["verified"] is True
    assert figures["ledger_size"] == 3 + figures["acknowledged"]  # a seed, two token grants
