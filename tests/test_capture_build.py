"""Builds, evaluations and the capture commands, on a ledger a real pipeline filled."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from tests.test_cli import mlprov, ok

from mlprov.capture.lineage import load_changes
from mlprov.digest import Digest, digest_file, digest_json
from mlprov.errors import GateBlocked, InputError, IntegrityError, NotFoundError
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Entry

ROWS = [{"id": i, "user": f"u{i}@example.com", "text": f"ticket {i}"} for i in range(20)]


def pipeline(ledger: Ledger, *, reviewed: bool = True) -> tuple[Entry, Entry]:
    """A training and an eval dataset; the training sources reviewed, so the default
    training gates let a build through."""
    with ledger.pipeline("train") as p:
        rows = p.source(
            pa.Table.from_pylist(ROWS),
            "tickets@1",
            key="id",
            subject="user",
            rights_basis="contract-2024-17 §4",
        )
        banned = p.source(
            pa.table({"user": ["u3@example.com"]}),
            "optout@1",
            subject="user",
            rights_basis="customer-exclusion-log",
        )
        rows = p.exclude("optout-v1", rows, using=banned, on="user")
        train = p.dataset(rows, "train")
    with ledger.pipeline("eval") as p:
        held = p.source(pa.Table.from_pylist(ROWS[:5]), "heldout@1", key="id")
        evalset = p.dataset(held, "heldout")
    for source in ("tickets@1", "optout@1") if reviewed else ():
        record_review(ledger, source, "accepted", "carol@example.com")
    return train, evalset


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.init(tmp_path)


def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "weights.bin").write_bytes(b"\x01" * 4096)
    (folder / "config.json").write_text('{"layers": 2}')
    return folder


def test_a_build_links_artifact_dataset_config_code_and_eval_set(
    ledger: Ledger, tmp_path: Path
) -> None:
    train, held = pipeline(ledger)
    cfg = {"epochs": 3, "lr": 3e-5}
    build = ledger.build(
        "classifier-v7",
        dataset="train",
        config=cfg,
        eval_set=held,
        artifact=model(tmp_path),
        code_version="v7.0.1",
    )
    payload = build.event.payload
    assert set(build.event.parents) == {train.digest, held.digest}
    assert payload["dataset"] == train.digest
    assert payload["config"] == cfg and payload["config_digest"] == digest_json(cfg)
    assert payload["code_version"] == "v7.0.1"
    assert payload["artifact_kind"] == "directory" and payload["artifact_files"] == 2
    assert payload["eval_set"] == "heldout@v1" and payload["eval_event"] == held.digest
    assert payload["eval_root"] == held.event.payload["record_root"]
    assert payload["gate"] == "passed"  # the default training gates ran
    one = ledger.build(
        "single", dataset=train.digest, artifact=model(tmp_path) / "weights.bin", gates=()
    )
    assert one.event.payload["artifact_digest"] == digest_file(tmp_path / "model/weights.bin")
    assert one.event.payload["gate"] == "not_run"


def test_by_default_a_build_on_unreviewed_sources_is_blocked(ledger: Ledger) -> None:
    train, _ = pipeline(ledger, reviewed=False)
    with pytest.raises(GateBlocked, match="MPG001 source tickets@1 has never been reviewed"):
        ledger.build("classifier-v7", dataset=train)
    forced = ledger.build("classifier-v7", dataset=train, force=True)
    assert forced.event.payload["gate"] == "blocked" and len(forced.event.payload["findings"]) == 2


def test_a_blocked_build_is_refused_unless_forced_and_the_override_is_recorded(
    ledger: Ledger,
) -> None:
    train, _ = pipeline(ledger, reviewed=False)

    def unreviewed(_: Ledger, dataset: Entry) -> list[str]:
        return [f"{s} was never reviewed" for s in dataset.event.payload["sources"]]

    size = ledger.size
    with pytest.raises(GateBlocked, match="tickets@1 was never reviewed") as caught:
        ledger.build("blocked", dataset=train, gates=[unreviewed])
    assert caught.value.exit_code == 7 and len(caught.value.findings) == 2
    assert ledger.size == size
    forced = ledger.build("blocked", dataset=train, gates=[unreviewed], force=True)
    assert forced.event.payload["gate"] == "blocked" and forced.event.payload["forced"] is True
    assert list(forced.event.payload["findings"]) == list(caught.value.findings)
    clean = ledger.build("clean", dataset=train, gates=[lambda _l, _d: []])
    assert clean.event.payload["gate"] == "passed" and "forced" not in clean.event.payload


def test_bad_build_references_are_clear_errors(ledger: Ledger, tmp_path: Path) -> None:
    train, _ = pipeline(ledger)
    with pytest.raises(NotFoundError, match="no dataset nope in this ledger"):
        ledger.build("x", dataset="nope")
    with pytest.raises(InputError, match="names a source, not a dataset"):
        ledger.build("x", dataset="tickets@1")
    with pytest.raises(NotFoundError, match="no config file"):
        ledger.build("x", dataset=train, config=tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="not JSON"):
        ledger.build("x", dataset=train, config={"when": object()})
    with pytest.raises(NotFoundError):
        ledger.build("x", dataset=train, artifact=tmp_path / "no-model")


def test_an_evaluation_names_its_build_and_eval_set(ledger: Ledger) -> None:
    train, held = pipeline(ledger)
    build = ledger.build("classifier-v7", dataset=train)
    ev = ledger.evaluation("classifier-v7", "accuracy-v1", {"acc": 0.91}, eval_set="heldout")
    assert set(ev.event.parents) == {build.digest, held.digest}
    assert ev.event.payload["metrics"] == {"acc": 0.91}
    with pytest.raises(NotFoundError):
        ledger.evaluation("no-such-build", "accuracy-v1", {"acc": 1.0})


def test_an_evaluation_function_records_each_result(ledger: Ledger) -> None:
    train, _ = pipeline(ledger)
    ledger.build("classifier-v7", dataset=train)

    @ledger.evaluates("classifier-v7", "accuracy-v1", eval_set="heldout")
    def evaluate(threshold: float) -> dict[str, float]:
        return {"acc": threshold / 2}

    assert evaluate(0.5) == {"acc": 0.25}
    assert evaluate(threshold=1.0) == {"acc": 0.5}
    metrics = [e.event.payload["metrics"]["acc"] for e in ledger.entries(type="evaluation")]
    assert metrics == [0.25, 0.5]

    @ledger.evaluates("classifier-v7", "broken-v1")
    def broken() -> dict[str, float]:
        return [0.5]  # type: ignore[return-value]

    with pytest.raises(InputError, match="not a dict of metrics"):
        broken()


def test_a_changes_file_that_was_altered_is_refused(ledger: Ledger) -> None:
    pipeline(ledger)
    step = next(ledger.entries(type="transform")).event.payload
    digest = Digest(step["changes"])
    table = load_changes(ledger.blobs_dir, digest)
    assert table.column("key").to_pylist() == ["3"]
    path = ledger.blobs_dir / f"{digest.hex}.changes.parquet"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IntegrityError):
        load_changes(ledger.blobs_dir, digest)


def test_the_capture_commands(ledger: Ledger, tmp_path: Path) -> None:
    pipeline(ledger)
    step = next(ledger.entries(type="transform"))
    shown = json.loads(ok(mlprov("changes", step.digest.hex[:12], "--json", cwd=tmp_path)))
    assert shown["counts"]["removed"] == 1
    assert [(r["change"], r["key"], r["reason"]) for r in shown["rows"]] == [
        ("removed", "3", "optout-v1")
    ]
    text = ok(mlprov("changes", step.digest.hex[:12], "--change", "added", cwd=tmp_path))
    assert "removed 1" in text and "key 3" not in text
    cfg = tmp_path / "train.json"
    cfg.write_text('{"epochs": 3}')
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "train.json"], check=True)
    subprocess.run([*git, "commit", "-qm", "config"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    built = json.loads(
        ok(
            mlprov(
                "build",
                "classifier-v7",
                "--dataset",
                "train",
                "--config",
                cfg,
                "--artifact",
                model(tmp_path),
                "--eval-set",
                "heldout",
                "--json",
                cwd=tmp_path,
            )
        )
    )
    assert built["payload"]["config_digest"] == digest_file(cfg)
    assert built["payload"]["code_version"] == head.strip()
    assert built["payload"]["code_dirty"] is True  # .mlprov/ and model/ are untracked
    ok(mlprov("evaluation", "classifier-v7", "acc-v1", "--metric", "acc=0.9", cwd=tmp_path))
    bad = mlprov("evaluation", "classifier-v7", "acc-v1", "--metric", "acc", cwd=tmp_path)
    assert bad.returncode == 3 and "NAME=NUMBER" in bad.stderr
    wrong = mlprov("changes", built["digest"], cwd=tmp_path)
    assert wrong.returncode == 3 and "not a step" in wrong.stderr
    blocked = mlprov("build", "on-heldout", "--dataset", "heldout", cwd=tmp_path)
    assert blocked.returncode == 7 and "MPG001" in blocked.stderr, blocked.stderr
    forced = json.loads(
        ok(mlprov("build", "on-heldout", "--dataset", "heldout", "--force", "--json", cwd=tmp_path))
    )
    assert forced["payload"]["gate"] == "blocked" and forced["payload"]["forced"] is True
