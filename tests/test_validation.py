"""The one set of validators (mlprov.validation) and the one resolver (mlprov.ledger.names),
through the Python API: names, versions, periods, payloads, references."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlprov
from mlprov import validation
from mlprov.errors import ConflictError, InputError, KeyFormatError, NotFoundError
from mlprov.facade import Ledger
from mlprov.ledger import Event
from mlprov.ledger.keys import SignerKey, write_keypair

FAST = settings(max_examples=150, deadline=500, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("ref", ["src@   ", "src@1@2", "src@", "@1", "a b@1", "src@1 2"])
def test_malformed_references_are_refused_with_the_form(ref: str) -> None:
    with pytest.raises(InputError) as caught:
        validation.split_versioned(ref)
    assert caught.value.exit_code == 3
    assert "e.g." in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("foo..bar", "is not a date"),
        ("2026-05..2024-01", "runs backwards"),
        ("2024-13..2025", "is not a date"),
        ("2024-02-30..2025", "is not a date"),
        ("2024-01", "is not START..END"),
        ("2024..never", "nor `ongoing`"),
    ],
)
def test_malformed_periods_are_refused(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        validation.parse_period(text)


@pytest.mark.parametrize(
    "text", ["2024-01..2026-05", "2024..2024", "2024-02-29..ongoing", " 2024 .. 2025-01-01 "]
)
def test_periods_of_dates_in_order_are_accepted(text: str) -> None:
    start, end = validation.parse_period(text)
    assert start == text.split("..")[0].strip() and end == text.split("..")[1].strip()


def test_the_payload_models_use_the_same_validators() -> None:
    for payload, problem in [
        ({"name": "s", "version": "   "}, "blank"),
        ({"name": "s", "version": "1@2"}, "contains '@'"),
        ({"name": "s", "version": "1", "collected": ["foo", "bar"]}, "is not a date"),
        ({"name": "s", "version": "1", "collected": ["2026", "2024"]}, "runs backwards"),
    ]:
        with pytest.raises(InputError, match=problem):
            Event.create("source", payload, actor="a")
    with pytest.raises(InputError, match="contains '@'"):
        Event.create("dataset", {"name": "d", "version": "v1@x"}, actor="a")


def test_json_with_a_repeated_key_is_refused() -> None:
    with pytest.raises(InputError, match="the key 'a' twice"):
        validation.loads_json(b'{"a": 1, "b": {"c": 2}, "a": 3}')
    with pytest.raises(InputError, match="the key 'c' twice"):
        validation.loads_json('[{"c": 1, "c": 1}]')
    with pytest.raises(InputError, match="not valid JSON"):
        validation.loads_json("NaN")
    with pytest.raises(InputError, match="not UTF-8"):
        validation.loads_json(b'"\xff"')


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_parse_as_json_or_raise_an_input_error(data: bytes) -> None:
    try:
        validation.loads_json(data)
    except InputError as exc:
        assert exc.exit_code == 3


@FAST
@given(st.text(max_size=60))
def test_any_reference_parses_or_raises_an_input_error(text: str) -> None:
    try:
        ref = validation.parse_ref(text)
    except InputError as exc:
        assert exc.exit_code == 3
        return
    assert ref.digest_like or ref.name is not None
    if ref.name is not None:
        assert validation.name_problem(ref.name) is None
    if ref.version is not None:
        assert validation.version_problem(ref.version) is None


@FAST
@given(st.text(max_size=30), st.text(max_size=30))
def test_any_period_is_checked_or_refused(start: str, end: str) -> None:
    try:
        validation.check_period(start, end)
    except InputError as exc:
        assert exc.exit_code == 3


@FAST
@given(st.text(max_size=80))
def test_any_root_text_is_a_digest_or_an_input_error(text: str) -> None:
    try:
        assert len(validation.hex_digest(text)) == 32
    except InputError as exc:
        assert exc.exit_code == 3


@pytest.mark.parametrize("name", ["../../evil", "/etc/evil", "a/../b", "a//b", "."])
def test_key_names_that_read_as_paths_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="cannot name a key file"):
        write_keypair(SignerKey.generate(name), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_url_like_key_name_is_one_file(tmp_path: Path) -> None:
    private, public = write_keypair(SignerKey.generate("example.com/log"), tmp_path)
    assert private.parent == public.parent == tmp_path


@pytest.mark.parametrize("store", [123, 1.5, ["a"]])
def test_open_refuses_a_store_that_is_not_a_path(store: object) -> None:
    with pytest.raises(InputError, match="must be a path or a URL"):
        mlprov.open(store)  # type: ignore[arg-type]


# -- the resolver ---------------------------------------------------------------------------


def _datasets(ledger: Ledger) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "c"]})
    for version in ("v7", "v8"):
        with ledger.pipeline("training") as p:
            data = p.source(frame, "chats@2026-05", key="id")
            p.dataset(data, "support-classifier-training", version=version)


def test_a_dataset_version_is_named_by_the_version_its_event_records(
    sqlite_ledger: Ledger,
) -> None:
    _datasets(sqlite_ledger)
    v7 = sqlite_ledger.find("support-classifier-training@v7")
    v8 = sqlite_ledger.find("support-classifier-training@v8")
    assert v7.entry.event.payload["version"] == "v7" and v8.entry.seq > v7.entry.seq
    assert v7.note is None
    newest = sqlite_ledger.find("support-classifier-training")
    assert newest.entry == v8.entry
    assert newest.note is not None and "support-classifier-training@v8" in newest.note
    assert sqlite_ledger.find(v7.entry.digest.hex[:12]).entry == v7.entry
    assert sqlite_ledger.find("chats").entry.event.name == "chats@2026-05"
    assert sqlite_ledger.record_set("support-classifier-training@v7").size == 3
    with pytest.raises(NotFoundError, match="recorded: support-classifier-training@v7"):
        sqlite_ledger.find("support-classifier-training@v9")
    with pytest.raises(InputError, match="names a run"):
        sqlite_ledger.find("training")
    with pytest.raises(InputError, match="no valid version"):
        sqlite_ledger.find("support-classifier-training@   ")


def test_a_source_version_names_one_content_in_the_api(sqlite_ledger: Ledger) -> None:
    one = pd.DataFrame({"id": [1, 2], "text": ["a", "b"]})
    other = pd.DataFrame({"id": [1, 2], "text": ["a", "c"]})
    with sqlite_ledger.pipeline("p") as p:
        p.source(one, "chats@1", key="id")
    size = sqlite_ledger.size
    with sqlite_ledger.pipeline("p") as p:
        p.source(one.copy(), "chats@1", key="id")  # the same content: the same event
    assert [e.event.name for e in sqlite_ledger.entries(type="source")] == ["chats@1"]
    with pytest.raises(ConflictError) as caught, sqlite_ledger.pipeline("p") as p:
        p.source(other, "chats@1", key="id")
    assert caught.value.exit_code == 5
    assert caught.value.message.count("sha256:") == 3  # the event and both roots
    assert "chats@NEW-VERSION" in (caught.value.hint or "")
    assert len(list(sqlite_ledger.entries(type="source"))) == 1 and sqlite_ledger.size > size


def test_a_step_function_that_is_not_callable_is_refused(sqlite_ledger: Ledger) -> None:
    with sqlite_ledger.pipeline("p") as p:
        data = p.source(pd.DataFrame({"id": [1]}), "s@1", key="id")
        with pytest.raises(InputError, match="not callable"):
            p.transform("clean-v1", "not a function", data)  # type: ignore[arg-type]


def test_duplicate_of_as_pandas_spells_it(sqlite_ledger: Ledger) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "a", "b"]})
    with sqlite_ledger.pipeline("p") as p:
        data = p.source(frame, "s@1", key="id")
        first = data.groupby("text")["id"].transform("first")
        dup = first != data["id"]
        kept = p.exclude("dedupe-v1", data, where=dup, duplicate_of=first.where(dup, None))
        assert list(kept["id"]) == [1, 3]
        again = p.exclude(
            "dedupe-v2", kept, where=[False, False], duplicate_of=first.where(dup).to_numpy()[:2]
        )
        assert len(again) == 2


def test_a_data_error_inside_a_step_names_the_step_and_is_audited(
    sqlite_ledger: Ledger,
) -> None:
    from mlprov.answers.audit import audit

    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "a", "b"]})
    with pytest.raises(InputError) as caught, sqlite_ledger.pipeline("p") as p:
        data = p.source(frame, "s@1", key="id")
        p.exclude("dedupe-v1", data, where=[False, True, False], duplicate_of=[None, 1.5, None])
    assert "step dedupe-v1: duplicate_of=" in caught.value.message
    assert "one value per input row" in (caught.value.hint or "")
    failed = [e for e in sqlite_ledger.entries(type="transform")]
    assert [e.event.payload["status"] for e in failed] == ["failed"]
    found = [f for f in audit(sqlite_ledger).findings if f.id == "AU013"]
    assert found and "dedupe-v1" in found[0].subject.name
    assert sqlite_ledger.verify().ok
