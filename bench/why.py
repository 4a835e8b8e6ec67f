"""`why` benchmark: a data owner's question on a large dataset, beside opening the ledger.

    python bench/why.py [--records 5000000] [--ledger DIR] [--json]

Records (or reuses, with `--ledger`) the ledger of bench/whydata.py: N support tickets
through ten steps into a dataset and a build. Then asks `why` for three subjects: one in
the training set, one a step removed (opted out), one never in the data. Each question
runs in a fresh process, which imports mlprov, opens the ledger and answers, timed apart:
the figures per question are the time to open the ledger, the time of `why`, and the
peak resident memory before and after it. Beside them, the same question answered with
every record set and every changes file read whole (the path before set files and
changes files indexed themselves: ADR 0011, ADR 0021), and whether both answers are the
same, byte for byte.

Targets (from the issue): < 100 ms and < 200 MB per `why` on 5M records and ten steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from whydata import MODEL, build, customer, customers_of


def _mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ask(folder: Path, subject: str, whole: bool) -> dict[str, Any]:
    """One question in this process: the figures of opening the ledger and answering."""
    t = time.perf_counter()
    from mlprov.answers.why import to_json, why
    from mlprov.facade import Ledger

    imported = time.perf_counter() - t
    t = time.perf_counter()
    ledger = Ledger.open(str(folder / ".mlprov" / "ledger.db"))
    opened = time.perf_counter() - t
    before = _mib()
    spent = _time_changes_files()
    if whole:  # the earlier path: every record set and changes file read whole
        type(ledger).open_record_set = type(ledger).record_set  # type: ignore[method-assign]
        _whole_changes_files()
    t = time.perf_counter()
    answer = why(ledger, MODEL, subject=subject)
    took = time.perf_counter() - t
    text = json.dumps(to_json(answer), sort_keys=True).encode()
    ledger.close()
    return {
        "import_s": imported,
        "open_ms": opened * 1000,
        "why_ms": took * 1000,
        "changes_files_ms": spent["s"] * 1000,
        "rss_before_mib": before,
        "rss_peak_mib": _mib(),
        "present": answer.present,
        "answer_sha256": hashlib.sha256(text).hexdigest(),
    }


def _whole_changes_files() -> None:
    """Read changes files whole, checked by the SHA-256 of the file, as before ADR 0021."""
    from mlprov.answers.why import deltas

    made = deltas.Deltas.__init__

    def unindexed(self: deltas.Deltas, directory: Path, digest: Any, root: Any = None) -> None:
        made(self, directory, digest, None)

    deltas.Deltas.__init__ = unindexed  # type: ignore[method-assign]


def _time_changes_files() -> dict[str, float]:
    """Time spent checking and reading step changes files, from here on."""
    from mlprov.answers.why import deltas

    spent = {"s": 0.0}
    read = deltas.Deltas.read

    def timed(self: deltas.Deltas, columns: Any = None) -> None:
        t = time.perf_counter()
        try:
            read(self, columns)
        finally:
            spent["s"] += time.perf_counter() - t

    deltas.Deltas.read = timed  # type: ignore[method-assign]
    return spent


def _child(folder: Path, subject: str, whole: bool) -> dict[str, Any]:
    args = [sys.executable, __file__, "--ask", subject, "--ledger", str(folder)]
    run = subprocess.run(
        [*args, *(["--whole"] if whole else [])], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def subjects(records: int) -> dict[str, str]:
    """A subject in the training set, one the opt-out step removed, one never in the data."""
    ids = [int(k) for k in customers_of(records)[:1000]]
    kept = next(k for k in ids if k % 100)
    removed = next((k for k in ids if k % 100 == 0), 0)
    return {"in": customer(kept), "removed": customer(removed), "out": "nobody@example.org"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--ledger", type=Path, help="a ledger made by bench/whydata.py to reuse")
    ap.add_argument("--ask", help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.ask is not None:
        print(json.dumps(ask(args.ledger, args.ask, args.whole)))
        return 0

    with tempfile.TemporaryDirectory(prefix="mlprov-bench-") as tmp:
        folder = args.ledger or Path(tmp)
        made: dict[str, float] = {}
        if not (folder / ".mlprov").exists():
            made = build(folder, args.records)
        out: dict[str, Any] = {"records": args.records, "steps": 10, **made, "questions": {}}
        for name, subject in subjects(args.records).items():
            fast, whole = _child(folder, subject, False), _child(folder, subject, True)
            out["questions"][name] = {
                **fast,
                "whole_why_ms": whole["why_ms"],
                "whole_changes_files_ms": whole["changes_files_ms"],
                "whole_rss_peak_mib": whole["rss_peak_mib"],
                "ratio": fast["why_ms"] / whole["why_ms"],
                "same_answer": fast["answer_sha256"] == whole["answer_sha256"],
            }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"why on {args.records:,} records through ten steps")
    if made:
        print(f"ledger recorded in {made['capture_s']:.1f} s (data made in {made['data_s']:.1f} s)")
    head = f"{'subject':<9}{'open ms':>9}{'why ms':>9}{'changes ms':>12}{'whole ms':>10}"
    head += f"{'(changes)':>11}{'ratio':>7}{'RSS before':>12}{'peak MiB':>10}{'whole peak':>12}"
    print(head + "  same answer")
    for name, q in out["questions"].items():
        print(
            f"{name:<9}{q['open_ms']:>9.1f}{q['why_ms']:>9.1f}{q['changes_files_ms']:>12.1f}"
            f"{q['whole_why_ms']:>10.1f}{q['whole_changes_files_ms']:>11.1f}{q['ratio']:>7.3f}"
            f"{q['rss_before_mib']:>12.0f}{q['rss_peak_mib']:>10.0f}"
            f"{q['whole_rss_peak_mib']:>12.0f}  {q['same_answer']}"
        )
    print(
        "changes ms: of the why, checking and reading step changes files; whole: every "
        "record set and changes file read whole, in the same run"
    )
    print("targets: why < 100 ms and < 200 MB added per question (issue)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
