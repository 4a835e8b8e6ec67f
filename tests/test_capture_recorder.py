"""Capture's workers beside the pipeline: a step returns before its records are written,
and a failure (an error in a worker, or the process killed) between a step and its record
set leaves nothing half-recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.facade import Ledger
from mlprov.records.canonical import record_digest
from mlprov.records.sets import RecordSet

ROWS = pd.DataFrame(
    {
        "ticket_id": [1, 2, 3, 4],
        "customer_id": ["ann@example.com", "bob@example.com", "cat@example.com", "dan@x.org"],
        "text": ["  Invoice ", "Refund", "login", "crash"],
    }
)


def lower(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["text"] = out["text"].str.strip().str.lower()
    return out


def named_roots(ledger: Ledger) -> list[str]:
    """Every record-set root an event names."""
    roots = []
    for entry in ledger.entries():
        payload = entry.event.payload
        for field in ("record_root", "output_root"):
            if payload.get(field) is not None:
                roots.append(Digest(payload[field]).hex)
        roots += [Digest(u["record_root"]).hex for u in payload.get("used", ()) if u["record_root"]]
    return roots


def assert_nothing_half_recorded(ledger: Ledger) -> None:
    for root in named_roots(ledger):
        assert (ledger.blobs_dir / f"{root}.parquet").is_file(), root
        RecordSet.load(ledger.blobs_dir / f"{root}.parquet")  # and it gives its root
    assert ledger.verify().ok


def test_an_error_in_a_worker_records_the_step_failed_and_nothing_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.init(tmp_path)
    saves: list[int] = []
    real = RecordSet.save

    def disk_full(self: RecordSet, directory: Path) -> Path:
        saves.append(self.rows)
        if len(saves) == 2:  # the source's set is written; the first step's is not
            raise OSError(28, "No space left on device")
        return real(self, directory)

    monkeypatch.setattr(RecordSet, "save", disk_full)
    with pytest.raises(OSError, match="No space left"), ledger.pipeline("crash") as p:
        df = p.source(ROWS, "chats@1", key="ticket_id", subject="customer_id")
        df = p.transform("lower-v1", lower, df)  # returns before its set is written
        df = p.transform("evens-v1", lambda d: d[d["ticket_id"] % 2 == 0], df)
        p.dataset(df, "never")
    kinds = [(e.event.type.value, e.event.payload.get("status")) for e in ledger.entries()]
    assert kinds == [
        ("run", "started"),
        ("source", None),
        ("transform", "failed"),  # lower-v1; evens-v1, queued after it, is not recorded
        ("run", "failed"),
    ]
    failed = next(iter(ledger.entries(type="transform"))).event.payload
    assert failed["name"] == "lower-v1"
    assert failed["error"] == "OSError: [Errno 28] No space left on device"
    assert "output_root" not in failed and "changes" not in failed
    end = list(ledger.entries(type="run"))[-1].event.payload
    assert end["error"] == failed["error"]
    assert_nothing_half_recorded(ledger)


def test_a_step_error_found_by_a_worker_reaches_the_caller_at_the_next_wait(
    tmp_path: Path,
) -> None:
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("late") as p:
        df = p.source(ROWS, "chats@1", key="ticket_id")
        df = p.transform("twice-v1", lambda d: pd.concat([d, d]), df)  # repeats every key
        with pytest.raises(InputError, match="names more than one row"):
            p.wait()
    statuses = [e.event.payload.get("status") for e in ledger.entries(type="transform")]
    assert statuses == ["failed"]
    assert list(ledger.entries(type="run"))[-1].event.payload["status"] == "failed"
    assert_nothing_half_recorded(ledger)


KILLED = """
import os, sys
from pathlib import Path
import pandas as pd
from mlprov.facade import Ledger
from mlprov.records.canonical import record_digest
from mlprov.records.sets import RecordSet

ledger = Ledger.open(cwd=Path(sys.argv[1]))
real = RecordSet.save
saves = []

def killed(self, directory):
    saves.append(self.rows)
    if len(saves) == 2:  # the process dies while the first step's set is being written
        os._exit(3)
    return real(self, directory)

RecordSet.save = killed
rows = pd.DataFrame({"ticket_id": [1, 2, 3], "text": [" A", "B ", "c"]})
with ledger.pipeline("killed", checkpoint=False) as p:
    df = p.source(rows, "chats@1", key="ticket_id")
    df = p.transform("lower-v1", lambda d: d.assign(text=d["text"].str.lower()), df)
    p.dataset(df, "never")
"""


def test_a_process_killed_between_a_step_and_its_record_set_leaves_a_true_ledger(
    tmp_path: Path,
) -> None:
    Ledger.init(tmp_path).close()
    env: dict[str, Any] = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr
    ledger = Ledger.open(cwd=tmp_path)
    kinds = [e.event.type.value for e in ledger.entries()]
    # The run opened, and at most its source was recorded: no step, no dataset, no end.
    assert kinds[0] == "run" and set(kinds[1:]) <= {"source"}
    assert_nothing_half_recorded(ledger)


def test_a_frame_changed_in_place_after_its_step_returned_is_recorded_as_the_step_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlprov.capture import lineage

    ledger = Ledger.init(tmp_path)
    go = threading.Event()
    real = lineage.follow

    def held(*args: Any) -> Any:
        assert go.wait(timeout=60)  # the step has returned and its frame been changed
        return real(*args)

    monkeypatch.setattr(lineage, "follow", held)
    rows = pd.DataFrame({"ticket_id": [1, 2, 3], "score": [10, 20, 30]})
    with ledger.pipeline("in-place") as p:
        df = p.source(rows, "scores@1", key="ticket_id")
        df = p.transform("double-v1", lambda d: d.assign(score=d["score"] * 2), df)
        df.loc[0, "score"] = -1  # outside any step, before the worker reads the step's output
        go.set()
        p.wait()
    [step] = list(ledger.entries(type="transform"))
    changed = lineage.load_changes(ledger.blobs_dir, Digest(step.event.payload["changes"]))
    made = {"ticket_id": 1, "score": 20}  # what double-v1 returned for ticket 1
    after = {row["key"]: row["after"] for row in changed.to_pylist()}
    assert after["1"] == record_digest(made)
