"""Dataset versions: a pipeline's dataset is `NAME@vN`, the same content again is the same
version, and builds and evaluations name their datasets by exact event (ADR 0018)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.test_capture_pipeline import OPT_OUT, ROWS, run_example
from tests.test_cli import mlprov, ok

from mlprov.errors import ConflictError, InputError
from mlprov.facade import Ledger
from mlprov.ledger import Entry
from mlprov.ledger.events import Event
from mlprov.ledger.names import label


def datasets(ledger: Ledger) -> list[str]:
    return [label(e) for e in ledger.entries(type="dataset")]


def small(ledger: Ledger, rows: slice, name: str = "train", **kw: object) -> Entry:
    """A one-step pipeline keeping the `rows` of ROWS; `kw` goes to `p.dataset`."""
    with ledger.pipeline("small") as p:
        data = p.source(pd.DataFrame(ROWS), "chats@2026-05-22", key="ticket_id")
        data = p.transform("keep-v1", lambda d: d[rows], data, params={"all": True})
        return p.dataset(data, name, **kw)  # type: ignore[arg-type]


ALL = slice(None)


def test_the_same_data_again_is_the_same_version_other_data_a_new_one(ledger: Ledger) -> None:
    first, _ = run_example(ledger)
    assert label(first) == "support-classifier-training@v1"
    size = ledger.size
    again, _ = run_example(ledger)
    assert again.digest == first.digest  # idempotent: the recorded event is the answer
    new = [e.event.type.value for e in ledger.entries() if e.seq >= size]
    assert "dataset" not in new and new.count("run") == 2  # the run itself is recorded
    closing = [e for e in ledger.entries(type="run") if e.seq >= size][-1]
    assert first.digest in closing.event.parents  # the run names the version it made

    with ledger.pipeline("support-classifier-training") as p:
        chats = p.source(pd.DataFrame(ROWS[:3]), "support-chat-export@2026-05-23", key="ticket_id")
        other = p.dataset(chats, "support-classifier-training")
    assert label(other) == "support-classifier-training@v2"
    assert datasets(ledger) == ["support-classifier-training@v1", "support-classifier-training@v2"]
    found = ledger.find("support-classifier-training")
    assert found.entry.digest == other.digest
    assert found.note is not None and "support-classifier-training@v2" in found.note
    assert ledger.find("support-classifier-training@v1").entry.digest == first.digest


def test_other_step_parameters_on_the_same_records_are_a_new_version(ledger: Ledger) -> None:
    first = small(ledger, ALL)
    with ledger.pipeline("small") as p:
        data = p.source(pd.DataFrame(ROWS), "chats@2026-05-22", key="ticket_id")
        data = p.transform("keep-v1", lambda d: d, data, params={"all": False})
        second = p.dataset(data, "train")
    assert first.event.payload["record_root"] == second.event.payload["record_root"]
    assert (label(first), label(second)) == ("train@v1", "train@v2")
    assert small(ledger, ALL).digest == first.digest  # the first history again: v1


def test_a_given_version_names_one_content(ledger: Ledger) -> None:
    given = small(ledger, ALL, version="2026-06")
    assert label(given) == "train@2026-06"
    assert small(ledger, ALL, version="2026-06").digest == given.digest
    size = ledger.size
    with pytest.raises(ConflictError, match=r"train@2026-06 is already recorded .* record root"):
        small(ledger, slice(None, 2), version="2026-06")
    assert all(e.event.type.value != "dataset" for e in ledger.entries() if e.seq >= size)
    with pytest.raises(InputError, match="version"):
        small(ledger, ALL, version="bad@version")
    assert label(small(ledger, slice(None, 2))) == "train@v1"  # counted versions start at v1
    small(ledger, slice(None, 1), version="v8")
    assert label(small(ledger, slice(None, 3))) == "train@v9"  # one past the highest vN


def test_a_build_names_its_dataset_and_eval_set_by_exact_event(ledger: Ledger) -> None:
    train = small(ledger, slice(None, 3))
    held = [small(ledger, slice(n, None), name="holdout") for n in (3, 2, 1)]
    assert [label(h) for h in held] == ["holdout@v1", "holdout@v2", "holdout@v3"]
    build = ledger.build("m", dataset="train", eval_set="holdout@v2", gates=(), code_version="1")
    payload = build.event.payload
    assert payload["dataset"] == str(train.digest)
    assert payload["eval_set"] == "holdout@v2" and payload["eval_event"] == str(held[1].digest)
    assert set(build.event.parents) == {train.digest, held[1].digest}
    scored = ledger.evaluation(build, "accuracy-v1", {"accuracy": 0.9}, eval_set="holdout")
    assert scored.event.payload["eval_set"] == "holdout@v3"
    assert scored.event.payload["eval_event"] == str(held[2].digest)


def test_the_command_line_says_which_version_a_bare_name_took(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        small(ledger, slice(None, 3))
        newest = small(ledger, slice(None, 4))
        for rows in (slice(3, None), slice(1, None)):
            small(ledger, rows, name="holdout")
        with ledger.pipeline("lists") as p:
            p.source(pd.DataFrame(OPT_OUT), "opt-outs@1", subject="customer_id")
    built = mlprov(
        "build", "m", "--dataset", "train", "--eval-set", "holdout", "--code-version", "1",
        "--force", cwd=tmp_path,
    )
    out = ok(built)
    assert "note: train is taken as train@v2, its newest version" in built.stderr
    assert "note: holdout is taken as holdout@v2, its newest version" in built.stderr
    assert f"dataset          train@v2 ({newest.digest})" in out
    assert "eval_set         holdout@v2 (sha256:" in out
    shown = json.loads(ok(mlprov("show", "m", "--json", cwd=tmp_path)))
    assert shown["payload"]["eval_set"] == "holdout@v2"
    checked = mlprov("check", "train@v1", cwd=tmp_path)
    assert "train@v1 for training" in checked.stdout and "note:" not in checked.stderr
    assert "note: train is taken as train@v2" in mlprov("triage", "train", cwd=tmp_path).stderr


def test_a_version_recorded_between_the_check_and_the_lock_is_refused(ledger: Ledger) -> None:
    """Two writers recording one new version at once both pass the check made before the
    append; the write lock lets only the first through (here the second skips the check,
    as a writer that lost the race would have)."""
    root = "sha256:" + "1" * 64
    ledger.record("dataset", {"name": "raced", "version": "v1", "record_root": root})
    size = ledger.size
    other = {"name": "raced", "version": "v1", "record_root": "sha256:" + "2" * 64}
    with pytest.raises(ConflictError, match="raced@v1 was recorded a moment ago"):
        ledger.record("dataset", other)
    source = {"name": "chats", "version": "2026-05-22", "record_root": root}
    twice = [
        Event.create("source", source, actor="a"),
        Event.create("source", {**source, "record_root": "sha256:" + "3" * 64}, actor="a"),
    ]
    with pytest.raises(ConflictError, match="chats@2026-05-22 was recorded a moment ago"):
        ledger.append_many(twice)  # in one batch too
    assert ledger.size == size  # nothing of either was written
    ledger.record("dataset", {**other, "version": "v2"})  # a new version is welcome
