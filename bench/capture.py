"""Capture benchmark: one pipeline run plainly, captured by mlprov, and tracked by MLflow.

    python bench/capture.py [--rows 1000000] [--repeat 3] [--frames pandas,polars] [--json]

The pipeline: normalise text, redact e-mails and phone numbers with regular expressions,
remove opted-out customers (an anti-join), drop exact duplicate texts; in pandas and in
polars. In one process, each repeat runs in turn: the plain pipeline; the same under
`ledger.pipeline(...)` (every step's record set, as by default); the same with
`step_sets=False` (record sets of the sources and the dataset only); MLflow's dataset
tracking on the same frames (`mlflow.data.from_pandas`/`from_polars` and `mlflow.log_input`
after every step, on a local file store: one digest a dataset, nothing a record; skipped,
with a note, when MLflow is not installed: `pip install 'mlprov[bench]'`); and the floor of
any capture that digests every record: hashing the source once. Each captured run writes
into a new ledger (sharing one subject secret, so the roots compare), as a first run does.

For each, the best of the repeats (by wall time) is printed, step by step: wall seconds,
and CPU seconds of the whole process (every thread: the pipeline's, capture's workers',
the hashing engines'). Overheads are against the plain run of the same repeat set; the
targets are <= 15% wall (goal 5%). Also the prediction logger's added latency per call
at 10,000 calls/s (target p99 < 1 ms; bench/predictions.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import polars as pl

from mlprov.capture import frames, lineage
from mlprov.facade import Ledger
from mlprov.records.subjects import SECRET_FILE
from mlprov.store.location import for_directory

EMAIL = r"[\w.+-]+@[\w-]+\.[\w.]+"
PHONE = r"\+?\d[\d -]{7,}\d"
WORDS = np.array(
    [
        "invoice",
        "refund",
        "billing",
        "password",
        "login",
        "crash",
        "export",
        "delivery",
        "account",
        "upgrade",
    ]
)
STEPS = ("open", "sources", "normalize", "redact", "opt-out", "dedupe", "dataset", "close")
TARGET = 0.15


def _contact(i: int, customer: int) -> str:
    mail = f" or mail me at user{customer}@example.com" if i % 7 == 0 else ""
    phone = f" or call +1 555 010 {1000 + i % 9000}" if i % 11 == 0 else ""
    return mail + phone


def make_data(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Support tickets of ~200 bytes, some with contact details, 2% exact repeats."""
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, rows // 5, rows)
    words = WORDS[rng.integers(0, len(WORDS), (rows, 3))]
    text = [
        f"  Ticket about {a} and {b}: my {c} is Wrong since last week, please check order "
        f"{i * 31 % 100000:05d}{_contact(i, k)}  "
        for i, (a, b, c, k) in enumerate(zip(*words.T, customers, strict=True))
    ]
    repeats = rng.choice(rows, rows // 50, replace=False)
    for i in repeats:
        text[i] = text[(i + 1) % rows]
    chats = pd.DataFrame(
        {
            "ticket_id": np.arange(rows, dtype=np.int64),
            "customer_id": [f"User{k}@Example.com" for k in customers],
            "text": text,
        }
    )
    opted = rng.choice(rows // 5, rows // 100, replace=False)
    optout = pd.DataFrame({"customer_id": [f" user{k}@example.com" for k in opted]})
    return chats, optout


# -- the pipeline, in pandas and in polars --------------------------------------------------
def normalize(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["text"] = out["text"].str.strip().str.lower()
    return out


def redact(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["text"] = (
        out["text"]
        .str.replace(EMAIL, "[email]", regex=True)
        .str.replace(PHONE, "[phone]", regex=True)
    )
    return out


def remove_optouts(df: pd.DataFrame, optout: pd.DataFrame) -> pd.DataFrame:
    banned = set(optout["customer_id"].str.strip().str.lower())
    return df[~df["customer_id"].str.strip().str.lower().isin(banned)]


def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates(subset=["text"])


def normalize_pl(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col("text").str.strip_chars().str.to_lowercase())


def redact_pl(df: pl.DataFrame) -> pl.DataFrame:
    text = pl.col("text").str.replace_all(EMAIL, "[email]").str.replace_all(PHONE, "[phone]")
    return df.with_columns(text)


def remove_optouts_pl(df: pl.DataFrame, optout: pl.DataFrame) -> pl.DataFrame:
    banned = optout["customer_id"].str.strip_chars().str.to_lowercase().implode()
    return df.filter(~pl.col("customer_id").str.strip_chars().str.to_lowercase().is_in(banned))


def dedupe_pl(df: pl.DataFrame) -> pl.DataFrame:
    return df.unique(subset=["text"], keep="first", maintain_order=True)


STEP_FUNCTIONS: dict[str, tuple[Callable[..., Any], ...]] = {
    "pandas": (normalize, redact, remove_optouts, dedupe),
    "polars": (normalize_pl, redact_pl, remove_optouts_pl, dedupe_pl),
}


# -- timing -----------------------------------------------------------------------------
class Clock:
    """Wall and process CPU seconds (every thread) of each named step."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = dict.fromkeys(STEPS, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STEPS, 0.0)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += time.process_time() - cpu

    def time(self, name: str, fn: Callable[[], Any]) -> Any:
        with self.step(name):
            return fn()

    @property
    def total(self) -> float:
        return sum(self.wall.values())


def run(
    kind: str, chats: Any, optout: Any, track: Callable[[Clock], Any] | None = None
) -> tuple[Clock, int, str | None]:
    """One run of the pipeline; `track` gives the tracker (a context manager with the
    methods `source`, `step`, `exclude` and `dataset`), or None for the plain run."""
    norm, red, optouts, dup = STEP_FUNCTIONS[kind]
    c = Clock()
    tracker = track(c) if track is not None else _Plain()
    with c.step("open"):
        session = tracker.__enter__()
    try:
        df, opt = c.time("sources", lambda: session.source(chats, optout))
        df = c.time("normalize", lambda: session.step("normalize-v1", norm, df))
        df = c.time("redact", lambda: session.step("pii-redaction-v3", red, df))
        df = c.time("opt-out", lambda: session.exclude("opt-out-removal-v2", optouts, df, opt))
        df = c.time("dedupe", lambda: session.step("dedupe-v2", dup, df))
        root = c.time("dataset", lambda: session.dataset(df))
    except BaseException:
        tracker.__exit__(*sys.exc_info())
        raise
    with c.step("close"):
        tracker.__exit__(None, None, None)
    return c, len(df), root


class _Plain:
    def __enter__(self) -> _Plain:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def source(self, chats: Any, optout: Any) -> tuple[Any, Any]:
        return chats, optout

    def step(self, name: str, fn: Callable[[Any], Any], df: Any) -> Any:
        return fn(df)

    def exclude(self, name: str, fn: Callable[..., Any], df: Any, opt: Any) -> Any:
        return fn(df, opt)

    def dataset(self, df: Any) -> str | None:
        return None


class _Captured:
    """The pipeline under `ledger.pipeline(...)`; the opt-out removal is `p.exclude`."""

    def __init__(self, ledger: Ledger, step_sets: bool) -> None:
        self.ledger, self.step_sets = ledger, step_sets

    def __enter__(self) -> _Captured:
        self.p = self.ledger.pipeline(
            "support-classifier-training", checkpoint=False, step_sets=self.step_sets
        )
        self.p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.p.__exit__(*exc)
        self.ledger.close()

    def source(self, chats: Any, optout: Any) -> tuple[Any, Any]:
        a = self.p.source(
            chats,
            "support-chat-export@2026-05-22",
            key="ticket_id",
            subject="customer_id",
            personal_data=True,
        )
        return a, self.p.source(optout, "opt-out-list@2026-05-22", subject="customer_id")

    def step(self, name: str, fn: Callable[[Any], Any], df: Any) -> Any:
        return self.p.transform(name, fn, df)

    def exclude(self, name: str, fn: Callable[..., Any], df: Any, opt: Any) -> Any:
        return self.p.exclude(name, df, using=opt, on="customer_id")

    def dataset(self, df: Any) -> str:
        return str(self.p.dataset(df, "support-classifier-training").event.payload["record_root"])


class _MLflow:
    """MLflow's dataset tracking: a digest of each frame, logged as the run's input."""

    def __init__(self, mlflow: Any, store: Path, kind: str) -> None:
        self.mlflow, self.store, self.kind = mlflow, store, kind

    def __enter__(self) -> _MLflow:
        self.mlflow.set_tracking_uri(self.store.as_uri())
        self.mlflow.set_experiment("support-classifier-training")
        self.run = self.mlflow.start_run()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.mlflow.end_run("FAILED" if exc and exc[0] is not None else "FINISHED")

    def _log(self, df: Any, name: str) -> None:
        make = (
            self.mlflow.data.from_pandas if self.kind == "pandas" else self.mlflow.data.from_polars
        )
        self.mlflow.log_input(make(df, name=name), context=name)

    def source(self, chats: Any, optout: Any) -> tuple[Any, Any]:
        self._log(chats, "support-chat-export@2026-05-22")
        self._log(optout, "opt-out-list@2026-05-22")
        return chats, optout

    def step(self, name: str, fn: Callable[[Any], Any], df: Any) -> Any:
        out = fn(df)
        self._log(out, name)
        return out

    def exclude(self, name: str, fn: Callable[..., Any], df: Any, opt: Any) -> Any:
        out = fn(df, opt)
        self._log(out, name)
        return out

    def dataset(self, df: Any) -> str | None:
        self._log(df, "support-classifier-training")
        return None


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        return None
    return mlflow


def _file_store_allowed() -> AbstractContextManager[Any]:
    """MLflow 3 refuses a local file store unless MLFLOW_ALLOW_FILE_STORE is set: set
    for the MLflow runs only."""
    return mock.patch.dict(os.environ, {"MLFLOW_ALLOW_FILE_STORE": "true"})


def _new_ledger(tmp: Path, secret: Path | None) -> tuple[Ledger, Path]:
    """A new ledger in a new folder, with the subject secret given (so that roots compare),
    and where its subject secret is."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    keys = for_directory(folder).keys_dir
    assert keys is not None
    if secret is not None:
        keys.mkdir(parents=True, mode=0o700)
        shutil.copy(secret, keys / SECRET_FILE)
    return Ledger.init(folder), keys / SECRET_FILE


# -- the benchmark ----------------------------------------------------------------------------
def bench(kind: str, chats: Any, optout: Any, repeat: int, tmp: Path) -> dict[str, Any]:
    mlflow = _mlflow()
    variants = ["plain", "captured", "without_step_sets"] + (["mlflow"] if mlflow else [])
    best: dict[str, Clock] = {}
    roots: set[str | None] = set()
    kept: set[int] = set()
    floor = float("inf")
    secret: Path | None = None
    for _ in range(repeat):
        for variant in variants:
            track: Callable[[Clock], Any] | None = None
            quiet: AbstractContextManager[Any] = nullcontext()
            if variant in ("captured", "without_step_sets"):
                ledger, secret = _new_ledger(tmp, secret)
                sets = variant == "captured"
                track = lambda c, ledger=ledger, sets=sets: _Captured(ledger, sets)  # noqa: E731
            elif variant == "mlflow":
                store = Path(tempfile.mkdtemp(dir=tmp)) / "mlruns"
                track = lambda c, store=store: _MLflow(mlflow, store, kind)  # noqa: E731
                quiet = _file_store_allowed()
            with quiet, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLflow's hints about integer columns
                clock, n, root = run(kind, chats, optout, track)
            kept.add(n)
            if variant.startswith(("captured", "without")):
                roots.add(root)
            if variant not in best or clock.total < best[variant].total:
                best[variant] = clock
        t = time.perf_counter()
        lineage.hash_rows(frames.to_table(chats), "the source")
        floor = min(floor, time.perf_counter() - t)
    assert len(kept) == 1, kept
    plain = best["plain"]
    out: dict[str, Any] = {
        "frames": kind,
        "kept": kept.pop(),
        "same_root_every_run": len(roots) == 1,
        "hash_source_once_s": floor,
        "floor_overhead": floor / plain.total,
        "mlflow_note": "installed" if mlflow else "not installed: pip install 'mlprov[bench]'",
    }
    for variant, clock in best.items():
        cpu_total = sum(clock.cpu.values())
        out[variant] = {
            "wall_s": clock.total,
            "cpu_s": cpu_total,
            "wall_overhead": clock.total / plain.total - 1,
            "cpu_overhead": cpu_total / sum(plain.cpu.values()) - 1,
            "steps": {s: {"wall_s": clock.wall[s], "cpu_s": clock.cpu[s]} for s in STEPS},
        }
    return out


def show(rows: int, repeat: int, figures: dict[str, Any]) -> None:
    variants = [v for v in ("plain", "captured", "without_step_sets", "mlflow") if v in figures]
    print(
        f"\npipeline of {rows:,} rows ({figures['frames']}), best of {repeat}; "
        f"{figures['kept']:,} kept; wall s / CPU s (all threads) per step"
    )
    print(f"{'step':<11}" + "".join(f"{v:>22}" for v in variants))
    for step in STEPS:
        cells = [figures[v]["steps"][step] for v in variants]
        print(f"{step:<11}" + "".join(f"{c['wall_s']:>12.3f}{c['cpu_s']:>10.3f}" for c in cells))
    print(
        f"{'total':<11}"
        + "".join(f"{figures[v]['wall_s']:>12.3f}{figures[v]['cpu_s']:>10.3f}" for v in variants)
    )
    print(
        f"{'overhead':<11}"
        + "".join(
            f"{figures[v]['wall_overhead']:>12.1%}{figures[v]['cpu_overhead']:>10.1%}"
            for v in variants
        )
    )
    captured = figures["captured"]["wall_overhead"]
    verdict = "meets" if captured <= TARGET else "misses"
    print(f"captured: {captured:.1%} wall overhead {verdict} the target of <= 15% (goal 5%)")
    print(
        f"floor: hashing the source once takes {figures['hash_source_once_s']:.3f} s = "
        f"{figures['floor_overhead']:.0%} of the plain run (any capture that digests every "
        "record pays at least this in CPU)"
    )
    if "mlflow" not in figures:
        print(f"mlflow: {figures['mlflow_note']}; its column is left out")
    print(f"same dataset root on every captured run: {figures['same_root_every_run']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", default="pandas,polars", help="pandas, polars or both")
    ap.add_argument("--calls", type=int, default=30_000, help="prediction calls")
    ap.add_argument("--rate", type=float, default=10_000.0, help="prediction calls/s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    chats, optout = make_data(args.rows)
    data = {"pandas": (chats, optout), "polars": (pl.from_pandas(chats), pl.from_pandas(optout))}
    results = []
    with tempfile.TemporaryDirectory(prefix="mlprov-bench-") as tmp:
        for kind in args.frames.split(","):
            results.append(bench(kind, *data[kind], args.repeat, Path(tmp)))

    sys.path.insert(0, str(Path(__file__).parent))
    from predictions import run as predictions

    logged = predictions(args.calls, args.rate)
    if args.json:
        print(json.dumps({"rows": args.rows, "runs": results, "predictions": logged}, indent=2))
        return 0
    for figures in results:
        show(args.rows, args.repeat, figures)
    print(
        f"\nprediction logging: p99 added latency {logged['log_p99_us']:.1f} us per call at "
        f"{logged['achieved_rate']:,.0f} calls/s (target < 1,000 us); bare queue.put "
        f"{logged['queue_p99_us']:.1f} us, ratio {logged['log_p99_vs_queue']:.1f}; "
        f"written {logged['write_per_s']:,.0f}/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
