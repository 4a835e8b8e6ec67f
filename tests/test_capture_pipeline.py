"""Pipeline capture on real small data: what the ledger says each step removed, changed
and kept, record by record."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlprov
from mlprov.capture import lineage
from mlprov.digest import Digest
from mlprov.errors import ConflictError, InputError
from mlprov.facade import Ledger
from mlprov.ledger import Entry
from mlprov.records.canonical import record_digest
from mlprov.records.sets import RecordSet

ROWS = [
    {"ticket_id": 1, "customer_id": "Ann@Example.com", "text": "  My invoice is wrong "},
    {"ticket_id": 2, "customer_id": "bob@example.com", "text": "mail me at bob@example.com"},
    {"ticket_id": 3, "customer_id": "cat@example.com", "text": "refund please"},
    {"ticket_id": 4, "customer_id": "dan@example.com", "text": "refund please"},
    {"ticket_id": 5, "customer_id": "eve@example.com", "text": "login broken"},
]
OPT_OUT = [{"customer_id": " ann@example.com"}]


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["text"] = out["text"].str.strip().str.lower()
    return out


def redact(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["text"] = out["text"].str.replace(r"\S+@\S+", "[email]", regex=True)
    return out


@mlprov.transform("dedupe-v2", params={"threshold": 0.84})
def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates(subset=["text"])


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.init(tmp_path)


def run_example(ledger: Ledger, **options: Any) -> tuple[Entry, pd.DataFrame]:
    with ledger.pipeline("support-classifier-training", **options) as p:
        chats = p.source(
            pd.DataFrame(ROWS),
            "support-chat-export@2026-05-22",
            key="ticket_id",
            subject="customer_id",
            rights_basis="internal-use-policy-2026-04",
            license="proprietary",
            personal_data=True,
            collected=("2024-01", "2026-05"),
        )
        optout = p.source(pd.DataFrame(OPT_OUT), "opt-out-list@2026-05-22", subject="customer_id")
        chats = p.transform("normalize-v1", normalize, chats)
        chats = p.transform("pii-redaction-v3", redact, chats)
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        chats = dedupe(chats)
        dataset = p.dataset(chats, "support-classifier-training")
    return dataset, chats


def steps(ledger: Ledger, dataset: Entry) -> dict[str, dict[str, Any]]:
    return {
        e.event.name or "": dict(e.event.payload)
        for e in ledger.trace(dataset.digest)
        if e.event.type.value == "transform"
    }


def changes(ledger: Ledger, payload: dict[str, Any]) -> list[dict[str, Any]]:
    path = ledger.blobs_dir / f"{Digest(payload['changes']).hex}.changes.parquet"
    return sorted(pq.read_table(path).to_pylist(), key=lambda r: (r["change"], r["key"]))


def digest_of(row: dict[str, Any]) -> bytes:
    return record_digest(row)


def test_the_example_records_what_each_step_removed_changed_and_kept(ledger: Ledger) -> None:
    dataset, out = run_example(ledger)
    assert isinstance(out, pd.DataFrame)
    assert list(out["ticket_id"]) == [2, 3, 5]
    recorded = steps(ledger, dataset)
    assert list(recorded) == ["normalize-v1", "pii-redaction-v3", "opt-out-removal-v2", "dedupe-v2"]
    assert [s["step"] for s in recorded.values()] == [1, 2, 3, 4]

    norm = recorded["normalize-v1"]
    assert norm["version"] == "v1" and norm["code_basis"] == "source"
    assert norm["counts"] == {"in": 5, "out": 5, "kept": 4, "changed": 1, "removed": 0, "added": 0}
    first = {r["ticket_id"]: r for r in ROWS}
    normalized = {k: {**r, "text": r["text"].strip().lower()} for k, r in first.items()}
    assert changes(ledger, norm) == [
        {
            "change": "changed",
            "key": str(k),
            "before": digest_of(first[k]),
            "after": digest_of(normalized[k]),
            "reason": None,
            "columns": ["text"],  # the step changed this column, and only it
            "duplicate_of": None,
        }
        for k in (1,)
    ]

    red = recorded["pii-redaction-v3"]
    assert red["counts"]["changed"] == 1 and red["counts"]["kept"] == 4
    [change] = changes(ledger, red)
    assert change["key"] == "2"
    assert change["after"] == digest_of({**normalized[2], "text": "mail me at [email]"})

    opt = recorded["opt-out-removal-v2"]
    assert opt["kind"] == "exclusion" and opt["reason"] == "opt-out-removal-v2"
    assert opt["params"] == {"on": "customer_id", "matched_on": "subject_hash"}
    assert [u["role"] for u in opt["used"]] == ["input", "using"]
    assert opt["used"][1]["name"] == "opt-out-list@2026-05-22"
    [removed] = changes(ledger, opt)  # Ann, despite case and spaces in the opt-out list
    assert (removed["change"], removed["key"], removed["after"]) == ("removed", "1", None)
    assert removed["reason"] == "opt-out-removal-v2"

    dd = recorded["dedupe-v2"]
    assert dd["params"] == {"threshold": 0.84}
    assert dd["counts"] == {"in": 4, "out": 3, "kept": 3, "changed": 0, "removed": 1, "added": 0}
    assert [c["key"] for c in changes(ledger, dd)] == ["4"]

    payload = dataset.event.payload
    assert payload["record_count"] == 3
    assert list(payload["sources"]) == ["support-chat-export@2026-05-22", "opt-out-list@2026-05-22"]
    assert list(payload["steps"]) == list(recorded)
    kept = RecordSet.load(ledger.blobs_dir / f"{Digest(payload['record_root']).hex}.parquet")
    final = [{**normalized[2], "text": "mail me at [email]"}, normalized[3], normalized[5]]
    assert set(kept) == {digest_of(r) for r in final}
    hasher = ledger.subject_hasher()
    assert kept.has_subject(hasher.hash("cat@example.com"))
    assert not kept.has_subject(hasher.hash("ann@example.com"))
    assert ledger.verify().ok


def test_a_run_is_opened_closed_and_checkpointed(ledger: Ledger) -> None:
    dataset, _ = run_example(ledger)
    runs = [e for e in ledger.entries(type="run")]
    assert [r.event.payload["status"] for r in runs] == ["started", "succeeded"]
    start, end = runs
    assert set(end.event.parents) == {start.digest, dataset.digest}
    assert end.event.payload["steps"] == 4
    assert "pyarrow" in start.event.payload["packages"]
    assert start.event.payload["python"].split()[0] in {"CPython", "PyPy"}
    assert ledger.checkpoints()[-1].checkpoint.size == ledger.size


def test_the_same_run_twice_gives_the_same_dataset_root_and_reuses_sources(
    ledger: Ledger,
) -> None:
    first, _ = run_example(ledger)
    second, _ = run_example(ledger)
    assert first.digest == second.digest  # the same content is the same version (ADR 0018)
    assert first.event.payload["version"] == "v1"
    sources = [e.event.name for e in ledger.entries(type="source")]
    assert sorted(sources) == ["opt-out-list@2026-05-22", "support-chat-export@2026-05-22"]


def test_a_source_version_names_one_content(ledger: Ledger) -> None:
    run_example(ledger)
    size = ledger.size
    changed = pd.DataFrame([{**ROWS[0], "text": "edited"}, *ROWS[1:]])
    with pytest.raises(ConflictError, match="with record root sha256:"), ledger.pipeline("x") as p:
        p.source(changed, "support-chat-export@2026-05-22", key="ticket_id", subject="customer_id")
    with pytest.raises(ConflictError, match="license"), ledger.pipeline("x") as p:
        p.source(
            pd.DataFrame(ROWS),
            "support-chat-export@2026-05-22",
            key="ticket_id",
            subject="customer_id",
            license="CC-BY-4.0",
        )
    new = [e.event.type.value for e in ledger.entries() if e.seq >= size]
    assert "source" not in new and new.count("run") == 4  # two runs, opened and failed


FRAMES: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "pandas": pd.DataFrame,
    "polars": pl.DataFrame,
    "arrow": pa.Table.from_pylist,
    "records": lambda rows: [dict(r) for r in rows],
}


def _upper(data: Any) -> Any:
    if isinstance(data, pd.DataFrame):
        return data.assign(text=data["text"].str.upper())
    if isinstance(data, pl.DataFrame):
        return data.with_columns(pl.col("text").str.to_uppercase())
    if isinstance(data, pa.Table):
        import pyarrow.compute as pc

        return data.set_column(2, "text", pc.utf8_upper(data.column("text")))
    return [{**r, "text": r["text"].upper()} for r in data]


@pytest.mark.parametrize("kind", [*FRAMES, "datasets"])
def test_every_frame_type_comes_back_as_itself_with_the_same_root(
    ledger: Ledger, kind: str
) -> None:
    rows = [
        {"ticket_id": r["ticket_id"], "customer_id": r["customer_id"], "text": r["text"]}
        for r in ROWS
    ]
    if kind == "datasets":
        datasets = pytest.importorskip("datasets")
        make: Callable[[list[dict[str, Any]]], Any] = datasets.Dataset.from_list
    else:
        make = FRAMES[kind]
    data, optouts = make(rows), make(OPT_OUT)
    with ledger.pipeline(f"frames-{kind}") as p:
        data = p.source(data, "chats@1", key="ticket_id", subject="customer_id")
        optouts = p.source(optouts, "optouts@1", subject="customer_id")
        if kind != "datasets":
            data = p.transform("upper-v1", _upper, data)
        data = p.exclude("optout-v1", data, using=optouts, on="customer_id")
        ds = p.dataset(data, "train")
    assert type(data) is type(make(rows))
    assert len(data) == 4
    expected = [
        {**r, "text": r["text"].upper() if kind != "datasets" else r["text"]} for r in rows[1:]
    ]
    assert (
        Digest(ds.event.payload["record_root"]).raw
        == RecordSet.build(
            [digest_of(r) for r in expected],
            subjects=[ledger.subject_hasher().hash(r["customer_id"]) for r in expected],
        ).root
    )


def test_a_filter_hashes_nothing_and_a_map_hashes_only_what_it_changed(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[int] = []
    real = lineage.hash_rows

    def counting(table: pa.Table, where: str) -> Any:
        hashed.append(table.num_rows)
        return real(table, where)

    monkeypatch.setattr(lineage, "hash_rows", counting)
    df = pd.DataFrame({"id": range(1000), "text": [f"row {i}" for i in range(1000)]})
    with ledger.pipeline("lean") as p:
        df = p.source(df, "rows@1", key="id")
        p.wait()  # the workers beside the pipeline have followed every step so far
        assert hashed == [1000]
        df = p.transform("evens-v1", lambda d: d[d["id"] % 2 == 0], df)
        df = p.transform("shuffle-v1", lambda d: d.sample(frac=1, random_state=7), df)
        p.wait()
        assert hashed == [1000]
        df = p.transform(
            "touch-v1", lambda d: d.assign(text=d["text"].where(d["id"] >= 10, "x")), df
        )
        p.wait()
        assert hashed == [1000, 5]  # ids 0, 2, 4, 6, 8
        p.dataset(df, "lean")


def test_unversioned_names_are_refused_unless_allowed(ledger: Ledger) -> None:
    with ledger.pipeline("names") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        with pytest.raises(InputError, match="clean-data-v1"):
            p.transform("clean-data", normalize, df)
        out = p.transform("clean-data", normalize, df, allow_unversioned=True)
        p.dataset(out, "d")
    [step] = [e for e in ledger.entries(type="transform")]
    assert step.event.payload["name"] == "clean-data" and "version" not in step.event.payload
    with pytest.raises(InputError):
        mlprov.transform("clean-data")


def test_a_failing_step_leaves_a_visibly_failed_run_and_no_dataset(ledger: Ledger) -> None:
    def broken(df: pd.DataFrame) -> pd.DataFrame:
        raise ValueError("regex blew up")

    with pytest.raises(ValueError, match="regex blew up"), ledger.pipeline("fails") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        df = p.transform("normalize-v1", normalize, df)
        df = p.transform("pii-redaction-v3", broken, df)
        p.dataset(df, "never")
    kinds = [(e.event.type.value, e.event.payload.get("status")) for e in ledger.entries()]
    assert kinds == [
        ("run", "started"),
        ("source", None),
        ("transform", "succeeded"),
        ("transform", "failed"),
        ("run", "failed"),
    ]
    failed = list(ledger.entries(type="transform"))[-1].event.payload
    assert failed["error"] == "ValueError: regex blew up" and "output_root" not in failed
    end = list(ledger.entries(type="run"))[-1].event.payload
    assert end["error"] == "ValueError: regex blew up"
    assert not list(ledger.entries(type="dataset"))
    assert ledger.verify().ok


def test_a_step_that_drops_the_key_or_repeats_it_is_refused_and_recorded_failed(
    ledger: Ledger,
) -> None:
    with pytest.raises(InputError, match="key column 'ticket_id'"), ledger.pipeline("k") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        p.transform("drop-v1", lambda d: d.drop(columns=["ticket_id"]), df)
    with pytest.raises(InputError, match="names more than one row"), ledger.pipeline("k") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        p.transform("double-v1", lambda d: pd.concat([d, d]), df)
    statuses = [e.event.payload["status"] for e in ledger.entries(type="transform")]
    assert statuses == ["failed", "failed"]


def test_added_rows_are_reported_as_added_and_subjects_follow_their_records(
    ledger: Ledger,
) -> None:
    def augment(df: pd.DataFrame) -> pd.DataFrame:
        extra = pd.DataFrame([{"ticket_id": 99, "customer_id": "zed@example.com", "text": "new"}])
        out = pd.concat([df, extra], ignore_index=True)
        out["customer_id"] = "[redacted]"  # the subject column itself is redacted
        return out

    with ledger.pipeline("aug") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id", subject="customer_id")
        df = p.transform("augment-v1", augment, df)
        ds = p.dataset(df, "aug")
    [step] = list(ledger.entries(type="transform"))
    assert step.event.payload["counts"]["added"] == 1
    assert step.event.payload["counts"]["changed"] == 5
    assert [
        c["key"] for c in changes(ledger, dict(step.event.payload)) if c["change"] == "added"
    ] == ["99"]
    kept = RecordSet.load(
        ledger.blobs_dir / f"{Digest(ds.event.payload['record_root']).hex}.parquet"
    )
    hasher = ledger.subject_hasher()
    assert kept.has_subject(hasher.hash("ann@example.com"))  # inherited by key
    assert kept.has_subject(hasher.hash("[redacted]"))  # the new row's own subject


def test_without_a_key_records_are_matched_by_digest(ledger: Ledger) -> None:
    with ledger.pipeline("nokey") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1")
        df = p.transform("normalize-v1", normalize, df)
        p.dataset(df, "nokey")
    [step] = list(ledger.entries(type="transform"))
    payload = dict(step.event.payload)
    assert payload["matched_by"] == "digest"
    assert payload["counts"] == {
        "in": 5,
        "out": 5,
        "kept": 4,
        "changed": 0,
        "removed": 1,
        "added": 1,
    }
    assert {c["key"] for c in changes(ledger, payload)} == {None}


def test_exclusion_by_value_on_a_plain_column(ledger: Ledger) -> None:
    with ledger.pipeline("by-value") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        banned = p.source(pd.DataFrame({"ticket_id": [3, 5, 42]}), "banned@1")
        df = p.exclude("ban-v1", df, using=banned, on="ticket_id", reason="legal-hold")
        p.dataset(df, "d")
    assert list(df["ticket_id"]) == [1, 2, 4]
    step = list(ledger.entries(type="transform"))[-1].event.payload
    assert step["params"]["matched_on"] == "value"
    assert {(c["key"], c["reason"]) for c in changes(ledger, dict(step))} == {
        ("3", "legal-hold"),
        ("5", "legal-hold"),
    }


def test_untracked_data_and_calls_outside_the_run_are_refused(ledger: Ledger) -> None:
    p = ledger.pipeline("outside")
    with pytest.raises(InputError, match="outside a running pipeline"):
        p.source(pd.DataFrame(ROWS), "chats@1")
    with ledger.pipeline("untracked") as p:
        with pytest.raises(InputError, match="has not seen"):
            p.transform("normalize-v1", normalize, pd.DataFrame(ROWS))
        with pytest.raises(InputError, match="cannot track"):
            p.source({"not": "a frame"}, "chats@1")
    assert dedupe(pd.DataFrame(ROWS)).shape[0] == 4  # the decorator outside a run just runs


def test_code_version_and_code_digest_are_recorded(ledger: Ledger, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("print('hi')\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    with ledger.pipeline("code", repo=repo) as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        df = p.transform("normalize-v1", normalize, df)
        df = p.transform("redact-v1", redact, df)
    start = next(ledger.entries(type="run")).event.payload
    assert start["git_commit"] == head.strip() and start["git_dirty"] is False
    (repo / "train.py").write_text("print('changed')\n")
    with ledger.pipeline("code", repo=repo) as p:
        pass
    assert list(ledger.entries(type="run"))[-2].event.payload["git_dirty"] is True
    a, b = (e.event.payload for e in ledger.entries(type="transform"))
    assert a["code_digest"] != b["code_digest"]
    assert a["function"].endswith(":normalize")


def test_a_step_that_retypes_the_key_column_still_follows_each_record(ledger: Ledger) -> None:
    def as_text(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(ticket_id=df["ticket_id"].astype(str))

    with ledger.pipeline("retype") as p:
        df = p.source(pd.DataFrame(ROWS), "chats@1", key="ticket_id")
        df = p.transform("key-as-text-v1", as_text, df)
        p.dataset(df, "d")
    [step] = list(ledger.entries(type="transform"))
    counts = step.event.payload["counts"]
    assert (counts["changed"], counts["added"], counts["removed"]) == (5, 0, 0)
    assert {c["key"] for c in changes(ledger, dict(step.event.payload))} == {
        "1",
        "2",
        "3",
        "4",
        "5",
    }


def test_without_step_sets_the_dataset_root_is_the_same(ledger: Ledger) -> None:
    full, _ = run_example(ledger)
    size = ledger.size
    lean, _ = run_example(ledger, step_sets=False)
    assert lean.digest == full.digest  # the same record root and history: the same version
    lean_steps = [e.event.payload for e in ledger.entries(type="transform") if e.seq >= size]
    assert len(lean_steps) == 4
    assert all("output_root" not in s for s in lean_steps)
    assert all("changes" in s for s in lean_steps)
    assert (
        ledger.record_set("support-classifier-training").root.hex()
        == Digest(lean.event.payload["record_root"]).hex
    )


def test_a_removal_by_mask_records_the_record_kept_in_each_removed_ones_place(
    ledger: Ledger,
) -> None:
    rows = pd.DataFrame(
        {"ticket_id": [1, 2, 3, 4], "text": ["refund please", "refund pls", "hi", "refund!"]}
    )
    dupes = pd.Series([False, True, False, True])
    kept_as = pd.Series([None, 1, None, 1])  # pandas makes these floats beside the gaps
    with ledger.pipeline("dedupe") as p:
        chats = p.source(rows, "chats@1", key="ticket_id")
        chats = p.exclude(
            "dedupe-v2", chats, where=dupes, duplicate_of=kept_as, params={"threshold": 0.84}
        )
        dataset = p.dataset(chats, "deduped")
    assert list(chats["ticket_id"]) == [1, 3]
    step = steps(ledger, dataset)["dedupe-v2"]
    assert step["kind"] == "exclusion" and step["params"] == {"threshold": 0.84}
    assert [u["role"] for u in step["used"]] == ["input"]
    removed = changes(ledger, step)
    assert [(c["key"], c["duplicate_of"], c["reason"]) for c in removed] == [
        ("2", "1", "dedupe-v2"),
        ("4", "1", "dedupe-v2"),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "either using= and on="),
        ({"where": [True, False, True, False], "on": "text"}, "either using= and on="),
        ({"where": [1, 0, 1, 0]}, "one boolean per row"),
        ({"where": [True, False]}, "one boolean per row"),
        ({"where": [True] * 4, "duplicate_of": [1, 2]}, "2 values for 4 input rows"),
    ],
)
def test_a_bad_exclusion_is_refused_with_what_to_give(
    ledger: Ledger, options: dict[str, Any], message: str
) -> None:
    rows = pa.table({"ticket_id": [1, 2, 3, 4], "text": ["a", "b", "c", "d"]})
    with pytest.raises(InputError, match=message), ledger.pipeline("bad") as p:
        chats = p.source(rows, "chats@1", key="ticket_id")
        p.exclude("dedupe-v2", chats, **options)


def test_a_changed_record_names_the_columns_its_step_changed(ledger: Ledger) -> None:
    rows = pa.table(
        {
            "ticket_id": [1, 2, 3],
            "email": ["a@x.com", "b@x.com", "c@x.com"],
            "text": ["hi a@x.com", "hello", "hey"],
        }
    )

    def redact(t: pa.Table) -> pa.Table:
        email = pa.array(["[email]", "[email]", "c@x.com"])
        text = pa.array(["hi [email]", "hello", "hey"])
        return t.set_column(1, "email", email).set_column(2, "text", text)

    with ledger.pipeline("redact") as p:
        chats = p.source(rows, "chats@1", key="ticket_id")
        chats = p.transform("pii-redaction-v3", redact, chats)
        chats = p.transform("drop-email-v1", lambda t: t.drop_columns(["email"]), chats)
        dataset = p.dataset(chats, "redacted")
    recorded = steps(ledger, dataset)
    assert {c["key"]: c["columns"] for c in changes(ledger, recorded["pii-redaction-v3"])} == {
        "1": ["email", "text"],
        "2": ["email"],
    }
    dropped = changes(ledger, recorded["drop-email-v1"])
    assert {c["key"]: c["columns"] for c in dropped} == {k: ["email"] for k in ("1", "2", "3")}
