"""Reports filled from a real ledger: every item names its ledger fields or is missing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from mlprov.answers.reports import (
    CONFIG_KEYS,
    KINDS,
    Item,
    Report,
    from_json,
    report,
    to_json,
    to_markdown,
)
from mlprov.answers.reports.eu import size_bin
from mlprov.cli.report import register
from mlprov.errors import InputError, NotFoundError
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Entry
from mlprov.ledger.payloads import BuildPayload, DatasetPayload, SourcePayload, TransformPayload

CHATS = [{"id": i, "customer": f"c{i}@example.com", "text": f"ticket {i}"} for i in range(6)]
WEB = [{"id": 100 + i, "customer": f"w{i}@example.com", "text": f"page {i}"} for i in range(4)]
CONFIG = {
    "provider": "Example AI Ltd, compliance@example.com",
    "base_model": "none: trained from scratch",
    "placed_on_market": "2026-07",
    "continuous_training": False,
    "intended_purpose": "route support tickets to the right team",
    "tokens": 2_500_000_000,
    "epochs": 3,
}
CHATS_FACTS: dict[str, Any] = {
    "rights_basis": "contract-2024-17 §4",
    "license": "LicenseRef-proprietary",
    "owner": "support-ops",
    "collected": ("2024-01", "2026-05"),
    "personal_data": True,
    "acquisition": "licensed",
    "purpose": "customer support",
    "modality": "text",
    "languages": ["en"],
    "description": "support tickets",
    "copyright": "protected",
    "aggregate_consumer_info": False,
}
WEB_FACTS: dict[str, Any] = {
    "rights_basis": "TDM exception, Art. 4 CDSM",
    "license": "various",
    "owner": "the sites' publishers",
    "collected": ("2025-01", "ongoing"),
    "personal_data": False,
    "acquisition": "crawled",
    "purpose": "public help pages",
    "modality": "text",
    "languages": ["en", "de"],
    "description": "help-centre pages",
    "copyright": "mixed",
    "aggregate_consumer_info": False,
}


def record(ledger: Ledger, tmp_path: Path, drop: tuple[str, ...] = ()) -> Entry:
    """A pipeline of two sources (the crawled one without the facts in `drop`), an opt-out
    exclusion and a filter, its dataset, reviews and a build; returns the build."""
    web_facts = {k: v for k, v in WEB_FACTS.items() if k not in drop}
    with ledger.pipeline("support-training") as p:
        chats = p.source(
            pa.Table.from_pylist(CHATS),
            "chats@2026-05",
            key="id",
            subject="customer",
            **CHATS_FACTS,
        )
        web = p.source(
            pa.Table.from_pylist(WEB),
            "help-pages@2026-05",
            key="id",
            subject="customer",
            **web_facts,
        )
        optout = p.source(
            pa.table({"customer": ["c1@example.com"]}),
            "opt-out-list@2026-05-20",
            subject="customer",
            rights_basis="customer-exclusion-log",
        )
        rows = p.transform(
            "merge-v1",
            lambda a, b: pa.concat_tables([a, b]),
            chats,
            web,
            purpose="one training table",
        )
        rows = p.exclude(
            "opt-out-removal-v2",
            rows,
            using=optout,
            on="customer",
            purpose="honour customers' objections",
        )
        rows = p.transform(
            "drop-short-v1",
            lambda t: t.filter(pa.compute.not_equal(t["id"], 103)),
            rows,
            purpose="remove unusable pages",
        )
        dataset = p.dataset(rows, "support-training")
    for ref in ("chats@2026-05", "help-pages@2026-05", "opt-out-list@2026-05-20"):
        record_review(ledger, ref, "accepted", "carol@example.com")
    record_review(
        ledger, dataset, "accepted_with_limits", "dana@example.com", limits=["English only"]
    )
    return ledger.build(
        "support-router-v1", dataset=dataset, config=CONFIG, code_version="abc123", gates=()
    )


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.init(tmp_path / "full") as ledger:
        record(ledger, tmp_path)
        yield ledger


def reports(ledger: Ledger) -> Iterator[Report]:
    for kind in KINDS:
        yield report(ledger, kind, "support-router-v1")
    yield report(ledger, "datasheet", "support-training")
    yield report(ledger, "ab2013", "support-training")


# -- the filled reports ----------------------------------------------------------------------


def test_the_eu_summary_is_filled_from_the_ledger(full: Ledger) -> None:
    got = report(full, "eu-training-summary", "support-router-v1")
    value = {i.id: i.value for i in got.items}
    assert value["1.1"] == CONFIG["provider"]
    assert value["1.2.i"] == "support-router-v1"
    assert value["1.2.iii"] == "2026-07"
    assert value["1.3.modalities"] == "text (chats@2026-05, help-pages@2026-05)"
    assert value["1.3.size"] is not None and value["1.3.size"].startswith("8 records")
    assert value["1.3.bin.text"] == "1 billion to 10 trillion tokens (2,500,000,000 tokens)"
    assert value["1.3.latest"] == (
        "collection is ongoing for help-pages@2026-05; 05/2026 (end of collection of chats@2026-05)"
    )
    assert value["2.1"] == "N" and value["2.4"] == "N" and value["2.5"] == "N"
    assert value["2.2.1"] is not None and value["2.2.1"].startswith("Y: chats@2026-05 (text")
    assert value["2.3"] is not None and value["2.3"].startswith("Y: help-pages@2026-05")
    assert value["2.3.iv"] == "help-pages@2026-05: from 2025-01, ongoing (collection continues)"
    assert value["3.1"] == (
        "opt-out-removal-v2 removed 1 record using opt-out-list@2026-05-20 "
        "(the newest recorded version)"
    )
    assert value["3.2"] == "drop-short-v1 removed 1 record (purpose: remove unusable pages)"
    assert got.item("3.1").fields == (
        "transform.kind",
        "transform.used",
        "transform.counts.removed",
        "source.version",
    )
    assert got.item("3.3.review").value == "accepted_with_limits; limits: English only"
    # the opt-out list is consulted, not trained on: it is no data source
    assert "opt-out-list" not in (value["2.6"] or "") and value["2.6"] == "N"
    assert got.missing == ()


def test_ab2013_has_the_twelve_items_in_order(full: Ledger) -> None:
    for target in ("support-router-v1", "support-training"):
        got = report(full, "ab2013", target)
        assert [i.id for i in got.items] == [str(n) for n in range(1, 13)]
    got = report(full, "ab2013", "support-router-v1")
    value = {i.id: i.value for i in got.items}
    assert value["1"] == (
        "chats@2026-05 (owner: support-ops); help-pages@2026-05 (owner: the sites' publishers)"
    )
    assert value["2"] == CONFIG["intended_purpose"]
    assert value["3"] == "8 records (from sources: chats@2026-05: 6; help-pages@2026-05: 4)"
    assert value["5"] == "yes: chats@2026-05 (protected), help-pages@2026-05 (mixed)"
    assert value["6"] == "yes: chats@2026-05 (licensed)"
    assert value["7"] == "yes: chats@2026-05"
    assert value["8"] is not None and value["8"].startswith("no:")
    assert value["9"] is not None and "opt-out-removal-v2" in value["9"]
    assert "purpose: honour customers' objections" in value["9"]
    assert value["10"] == (
        "chats@2026-05: 2024-01 to 2026-05; help-pages@2026-05: from 2025-01, ongoing "
        "(collection continues)"
    )
    build = full.get(got.target_digest)
    day = build.event.recorded_at[:10]
    assert value["11"] == (
        f"chats@2026-05: {day} (build support-router-v1); "
        f"help-pages@2026-05: {day} (build support-router-v1)"
    )
    assert got.item("11").fields == ("build.recorded_at",)
    assert value["12"] == "no: no source is recorded as synthetic"
    assert got.missing == ()
    # a dataset has no build config: its intended purpose is missing, and says why
    on_dataset = report(full, "ab2013", "support-training")
    assert on_dataset.item("2").missing
    assert "build" in on_dataset.item("2").note


def test_the_datasheet_has_the_seven_sections(full: Ledger) -> None:
    for target in ("support-training", "support-router-v1"):
        got = report(full, "datasheet", target)
        assert [s.title for s in got.sections] == [
            "Motivation",
            "Composition",
            "Collection process",
            "Preprocessing, cleaning and labelling",
            "Uses",
            "Distribution",
            "Maintenance",
        ]
        assert all(s.items for s in got.sections)
    got = report(full, "datasheet", "support-training")
    assert got.item("motivation.purpose").missing  # only a build's config records it
    assert got.item("uses.builds").value is not None
    assert got.item("uses.builds").value.startswith("support-router-v1")
    assert got.item("uses.limits").value == "English only"
    assert got.item("collection.acquisition").value == (
        "chats@2026-05: licensed; help-pages@2026-05: crawled"
    )
    assert got.item("preprocessing.removed").value == (
        "opt-out-removal-v2 removed 1 record using opt-out-list@2026-05-20 (purpose: honour "
        "customers' objections); drop-short-v1 removed 1 record (purpose: remove unusable pages)"
    )
    on_build = report(full, "datasheet", "support-router-v1")
    assert on_build.item("motivation.purpose").value == CONFIG["intended_purpose"]


# -- a removed field turns its items to missing ------------------------------------------


@pytest.mark.parametrize(
    ("drop", "eu_ids", "ab_ids", "sheet_ids"),
    [
        (("collected",), {"1.3.latest", "2.3.iv"}, {"10"}, {"collection.timeframe"}),
        (
            ("acquisition",),
            {"2.1", "2.2.1", "2.2.2", "2.3", "2.3.iv", "2.4", "2.5", "2.6"},
            {"6", "12"},
            {"collection.acquisition"},
        ),
        (("modality",), {"1.3.modalities", "1.3.bin"}, set(), set()),
        (("personal_data",), set(), {"7"}, {"composition.personal"}),
        (("copyright",), set(), {"5"}, {"composition.copyright"}),
    ],
)
def test_a_source_without_a_fact_turns_its_items_to_missing(
    tmp_path: Path,
    drop: tuple[str, ...],
    eu_ids: set[str],
    ab_ids: set[str],
    sheet_ids: set[str],
) -> None:
    with Ledger.init(tmp_path / "full") as full:
        record(full, tmp_path)
        before = {k: report(full, k, "support-router-v1") for k in KINDS}
    with Ledger.init(tmp_path / "partial") as partial:
        record(partial, tmp_path, drop=drop)
        after = {k: report(partial, k, "support-router-v1") for k in KINDS}
    for kind, ids in (
        ("eu-training-summary", eu_ids),
        ("ab2013", ab_ids),
        ("datasheet", sheet_ids),
    ):
        was = {i.id for i in before[kind].missing}
        now = {i.id for i in after[kind].missing}
        assert now - was == ids, kind
        for id in ids:
            item = after[kind].item(id)
            assert item.value is None and item.missing
            assert any(f.startswith("source.") for f in item.fields)
            assert "help-pages@2026-05" in item.note  # names the source that lacks it
            markdown = to_markdown(after[kind])
            missing_list = markdown.split("\n## Missing\n", 1)[1]
            assert f"- `{id}` " in missing_list
            assert f"`{item.fields[0]}`" in missing_list.split(f"- `{id}` ", 1)[1].split("\n")[0]
            listed = json.loads(to_json(after[kind]))["missing"]
            assert id in [m["id"] for m in listed]


def test_partially_recorded_says_how_many(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        record(ledger, tmp_path, drop=("acquisition",))
        item = report(ledger, "ab2013", "support-router-v1").item("6")
    assert item.note.startswith("partially recorded: 1 of 2 sources (chats@2026-05: licensed)")
    assert item.note.endswith("not recorded for help-pages@2026-05")


def test_no_config_leaves_provider_market_date_and_bins_missing(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        build = record(ledger, tmp_path)
        ledger.build(
            "bare-v1", dataset=build.event.payload["dataset"], code_version="abc", gates=()
        )
        got = report(ledger, "eu-training-summary", "bare-v1")
    gone = {i.id: i for i in got.missing}
    assert {"1.1", "1.2.ii", "1.2.iii", "1.3.continuous", "1.3.bin.text"} <= set(gone)
    assert gone["1.1"].fields == ("build.config.provider",)
    note = gone["1.3.bin.text"].note
    assert "recorded in records (8)" in note and "`tokens`" in note


def test_a_hand_written_manifest_is_reported_from_what_it_says(tmp_path: Path) -> None:
    from mlprov.capture.handwritten import record as record_manifest

    written = tmp_path / "manifest.yaml"
    written.write_text(
        (Path(__file__).parent / "manifests" / "incident-after.yaml").read_text(encoding="utf-8")
    )
    with Ledger.init(tmp_path) as ledger:
        record_manifest(ledger, written)
        got = report(ledger, "ab2013", "support-classifier-training")
        sheet = report(ledger, "datasheet", "support-classifier-training")
    assert got.item("1").value == "support-chat-export@2026-05-22"  # the opt-out list is apart
    assert got.item("6").missing and got.item("10").missing and got.item("11").missing
    assert got.item("9").fields == ("dataset.manifest.transforms.purpose",)
    assert "normalize-v1" in got.item("9").note
    assert sheet.item("collection.rights").value == (
        "support-chat-export@2026-05-22: internal-use-policy-2026-04 + customer-exclusion-log"
    )


def test_an_older_opt_out_list_and_a_bad_count_are_reported_as_such(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger:
        build = record(ledger, tmp_path)
        with ledger.pipeline("newer-list") as p:
            p.source(pa.table({"customer": ["c2@example.com"]}), "opt-out-list@2026-06-01")
        ledger.build(
            "odd-v1",
            dataset=build.event.payload["dataset"],
            config={"tokens": "lots"},
            code_version="abc",
            gates=(),
        )
        got = report(ledger, "eu-training-summary", "odd-v1")
    assert got.item("3.1").value is not None
    assert "an older version; newest recorded: opt-out-list@2026-06-01" in got.item("3.1").value
    assert got.item("1.3.bin.text").missing
    assert got.item("1.3.bin.text").note == "`tokens` in the build config is not a count"


# -- guards ------------------------------------------------------------------------------


_ENVELOPE = {"recorded_at", "actor", "digest"}
_MODELS = {
    "source": SourcePayload,
    "transform": TransformPayload,
    "dataset": DatasetPayload,
    "build": BuildPayload,
}


def _is_ledger_field(field: str) -> bool:
    kind, _, rest = field.partition(".")
    head = rest.split(".")[0]
    if kind == "review":
        return head in {"status", "limits", "risks", "reviewer"}
    if field.startswith("build.config."):
        return rest.removeprefix("config.") in CONFIG_KEYS
    if field.startswith("dataset.manifest.transforms."):
        return True
    return kind in _MODELS and (head in _MODELS[kind].model_fields or head in _ENVELOPE)


def test_every_item_names_ledger_fields_or_is_missing(tmp_path: Path, full: Ledger) -> None:
    with Ledger.init(tmp_path / "partial") as partial:
        record(partial, tmp_path, drop=tuple(WEB_FACTS))
        made = [*reports(full), *reports(partial)]
    assert len(made) == 10
    for got in made:
        assert got.items
        for item in got.items:
            assert item.fields or item.missing, item
            assert item.fields, item  # a missing item names the fields that would fill it
            assert (item.value is None) == item.missing, item
            assert all(_is_ledger_field(f) for f in item.fields), item
        assert [i.id for i in got.missing] == [i.id for i in got.items if i.missing]
        assert len({i.id for i in got.items}) == len(got.items)  # ids are unique


def test_an_item_refuses_a_value_without_fields_or_a_missing_value() -> None:
    with pytest.raises(ValueError, match="names no ledger field"):
        Item("x", "X", "yes", ())
    with pytest.raises(ValueError, match="exactly when not missing"):
        Item("x", "X", None, ("source.owner",))
    with pytest.raises(ValueError, match="exactly when not missing"):
        Item("x", "X", "yes", ("source.owner",), missing=True)
    with pytest.raises(ValueError, match="an empty value"):
        Item("x", "X", " ", ("source.owner",))


def test_json_and_markdown_carry_the_same_items(full: Ledger) -> None:
    for got in reports(full):
        data = json.loads(to_json(got))
        markdown = to_markdown(got)
        body, missing_list = markdown.split("\n## Missing\n", 1)
        json_ids = [i["id"] for s in data["sections"] for i in s["items"]]
        assert json_ids == re.findall(r"^- `([^`]+)` \*\*", body, re.M)
        assert json_ids == [i.id for i in got.items]
        assert [m["id"] for m in data["missing"]] == re.findall(
            r"^- `([^`]+)` ", missing_list, re.M
        )
        assert from_json(to_json(got)) == got  # the JSON round-trips


def test_recorded_text_is_shown_literally_in_markdown(tmp_path: Path) -> None:
    with Ledger.init(tmp_path) as ledger, ledger.pipeline("p") as p:
        data = p.source(
            pa.table({"id": [1]}), "odd@1", key="id", description="*bold*\n# heading `code`"
        )
        p.dataset(data, "odd")
    with Ledger.open(str(tmp_path / ".mlprov" / "ledger.db")) as ledger:
        markdown = to_markdown(report(ledger, "datasheet", "odd"))
    assert r"odd@1: \*bold\* \# heading \`code\`" in markdown


def test_size_bins() -> None:
    assert size_bin("text", 999_999_999) == "less than 1 billion tokens"
    assert size_bin("text", 1e9) == "1 billion to 10 trillion tokens"
    assert size_bin("text", 1e13) == "1 billion to 10 trillion tokens"
    assert size_bin("text", 1e13 + 1) == "more than 10 trillion tokens"
    assert size_bin("image", 5e5) == "less than 1 million images"
    assert size_bin("image", 2e9) == "more than 1 billion images"
    assert size_bin("audio", 10_000) == "10,000 hours to 1 million hours"
    assert size_bin("video", 2e6) == "more than 1 million hours"


def test_wrong_targets_are_input_errors(full: Ledger) -> None:
    with pytest.raises(InputError, match="not a build"):
        report(full, "eu-training-summary", "support-training")
    with pytest.raises(NotFoundError):
        report(full, "ab2013", "no-such-model")
    with pytest.raises(InputError, match="unknown report"):
        report(full, "model-card", "support-router-v1")
    with pytest.raises(InputError):
        from_json(b'{"schema_version": 1}')


# -- the command -------------------------------------------------------------------------


def test_the_report_command(full: Ledger, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    store = str(tmp_path / "full" / ".mlprov" / "ledger.db")
    shown = runner.invoke(app, ["ab2013", "support-router-v1", "--store", store])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("# AB 2013 training data documentation: support-router-v1")
    out = tmp_path / "eu.json"
    written = runner.invoke(
        app,
        ["eu-training-summary", "support-router-v1", "--format", "json", "--out", str(out)],
        env={"MLPROV_STORE": store},
    )
    assert written.exit_code == 0, written.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == "eu-training-summary" and data["target"]["name"] == "support-router-v1"
    wrong = runner.invoke(app, ["model-card", "support-router-v1", "--store", store])
    assert wrong.exit_code == 2


def test_the_command_offers_every_kind_of_report() -> None:
    from typing import get_args

    from mlprov.answers.reports.items import Kind
    from mlprov.cli import report as command

    assert get_args(command.Kind) == get_args(Kind) == tuple(KINDS)
