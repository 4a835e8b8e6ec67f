"""The dataset manifest: round trips, generation from a real pipeline run, the hand-written
form, malformed input, recording with digest checks and path tricks, the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.capture.handwritten import record
from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, NotFoundError
from mlprov.facade import Ledger
from mlprov.governance.manifest import (
    BuildRef,
    ExclusionReport,
    Input,
    Manifest,
    SourceRecord,
    Step,
    dump,
    from_ledger,
    json_schema,
    load,
    loads,
)
from mlprov.governance.review import record_review

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "manifests"
CAROL = "carol@example.com"
TICKETS = [{"id": i, "user": f"u{i}@example.com", "text": f"Ticket {i % 3}"} for i in range(6)]

# -- round trips -----------------------------------------------------------------------------

words = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=12)
digests = st.binary(min_size=32, max_size=32).map(Digest.from_raw)
json_values = st.one_of(st.integers(-(2**40), 2**40), st.booleans(), words, st.floats(-1e6, 1e6))
states = st.sampled_from(["never_reviewed", "accepted", "accepted_with_limits", "rejected"])
sources = st.builds(
    SourceRecord,
    ref=words,
    rights_basis=st.none() | words,
    personal_data=st.none() | st.booleans(),
    byte_digest=st.none() | digests.map(str) | digests.map(lambda d: d.hex[:8] + "..."),
    record_root=st.none() | digests,
    record_count=st.none() | st.integers(0, 10**9),
    review_status=st.none() | states,
    opt_out=st.none() | st.booleans(),
)
steps = st.builds(
    Step,
    name=words,
    version=st.none() | words,
    kind=st.sampled_from(["transform", "exclusion"]),
    params=st.dictionaries(words, json_values, max_size=3),
    counts=st.dictionaries(st.sampled_from(["in", "out", "removed"]), st.integers(0, 99)),
    used=st.lists(st.builds(Input, role=words, ref=words), max_size=2).map(tuple),
    changes=st.none() | digests,
)
manifests = st.builds(
    Manifest,
    dataset=words,
    version=st.none() | words,
    created_at=words,
    source_records=st.lists(sources, max_size=3).map(tuple),
    transforms=st.lists(steps, max_size=3).map(tuple),
    exclusion_reports=st.lists(
        st.builds(ExclusionReport, step=st.none() | words, file=st.none() | words), max_size=2
    ).map(tuple),
    reviewer_status=st.none() | states,
    limits=st.lists(words, max_size=2).map(tuple),
    unresolved_risks=st.lists(words, max_size=2).map(tuple),
    sha256=st.none() | digests.map(str),
    record_root=st.none() | digests,
    builds=st.lists(st.builds(BuildRef, name=st.none() | words), max_size=2).map(tuple),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests)
def test_every_manifest_round_trips_through_yaml_and_json(manifest: Manifest) -> None:
    assert loads(dump(manifest, "yaml"), "yaml") == manifest
    assert loads(dump(manifest, "json"), "json") == manifest


def test_the_schema_file_is_the_models_schema_and_dumps_validate_against_it() -> None:
    published = json.loads((ROOT / "docs/spec/manifest.schema.json").read_text(encoding="utf-8"))
    assert published == json_schema(), "regenerate docs/spec/manifest.schema.json"
    after = load(FIXTURES / "incident-after.yaml")
    jsonschema.validate(json.loads(dump(after, "json")), published)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"dataset": "x"}, published)  # created_at is required


# -- generated from the ledger ---------------------------------------------------------------


def pipeline(ledger: Ledger, optout: str = "opt-out-list@1") -> None:
    with ledger.pipeline("train") as p:
        rows = p.source(
            TICKETS, "tickets@1", key="id", subject="user", rights_basis="contract-2024-17"
        )
        listed = p.source(
            [{"user": "u1@example.com"}],
            optout,
            subject="user",
            rights_basis="customer-exclusion-log",
        )
        rows = p.transform("lower-v1", lambda r: r, rows, params={"case": "lower"})
        rows = p.exclude("opt-out-removal-v2", rows, using=listed, on="user")
        rows = p.transform(
            "dedupe-v2",
            lambda r: [x for x in r if x["id"] < 3],
            rows,
            params={"threshold": 0.84},
        )
        p.dataset(rows, "train")


def test_from_ledger_on_a_real_pipeline_run(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    pipeline(ledger)
    m = from_ledger(ledger, "train")
    assert [s.ref for s in m.source_records] == ["tickets@1", "opt-out-list@1"]
    assert [s.rights_basis for s in m.source_records] == [
        "contract-2024-17",
        "customer-exclusion-log",
    ]
    assert [s.opt_out for s in m.source_records] == [False, True]
    assert [(t.name, t.version, t.kind) for t in m.transforms] == [
        ("lower-v1", "v1", "transform"),
        ("opt-out-removal-v2", "v2", "exclusion"),
        ("dedupe-v2", "v2", "transform"),
    ]
    assert m.transforms[2].params == {"threshold": 0.84}
    assert ("using", "opt-out-list@1") in [(u.role, u.ref) for u in m.transforms[1].used]
    assert [(r.step, r.removed) for r in m.exclusion_reports] == [
        ("opt-out-removal-v2", 1),
        ("dedupe-v2", 3),
    ]
    assert all(r.digest for r in m.exclusion_reports)
    assert m.reviewer_status == "never_reviewed" and m.record_count == 2 and m.record_root
    record_review(ledger, "tickets@1", "accepted_with_limits", CAROL, limits=["English only"])
    record_review(ledger, "opt-out-list@1", "accepted", CAROL, risks=["a late opt-out"])
    m = from_ledger(ledger, "train")
    assert m.reviewer_status == "accepted_with_limits"  # the weakest of the sources'
    assert (m.limits, m.unresolved_risks) == (("English only",), ("a late opt-out",))
    record_review(ledger, "train", "accepted", CAROL)
    build = ledger.build("classifier-v7", dataset="train", gates=())
    m = from_ledger(ledger, "train")
    assert m.reviewer_status == "accepted" and m.limits == ()  # the dataset's own review
    assert m.builds == (BuildRef(name="classifier-v7", event=build.digest),)
    assert loads(dump(m)) == m
    with pytest.raises(InputError, match="not a dataset"):
        from_ledger(ledger, "tickets@1")
    with pytest.raises(NotFoundError):
        from_ledger(ledger, "no-such-dataset")


# -- the hand-written form -------------------------------------------------------------------


def test_the_incident_after_manifest_is_normalised() -> None:
    m = load(FIXTURES / "incident-after.yaml")
    assert m.created_at == "2026-05-22T18:10:00Z"  # text, not a date
    assert [s.ref for s in m.source_records] == [
        "support-chat-export@2026-05-22",
        "opt-out-list@2026-05-22",
    ]
    assert {s.rights_basis for s in m.source_records} == {
        "internal-use-policy-2026-04 + customer-exclusion-log"
    }
    assert [(t.name, t.version, t.kind) for t in m.transforms] == [
        ("normalize-v1", "v1", "transform"),
        ("pii-redaction-v3", "v3", "transform"),
        ("opt-out-removal-v2", "v2", "exclusion"),
        ("dedupe-v2", "v2", "transform"),
    ]
    assert m.exclusion_reports == (ExclusionReport(file="removed-records-8841.json"),)
    assert m.reviewer_status == "accepted_with_limits" and len(m.unresolved_risks) == 2
    assert m.sha256 == "4d81c0ee..." and m.builds == (BuildRef(name="support-classifier-v7"),)
    before = load(FIXTURES / "incident-before.yaml")
    assert [s.ref for s in before.source_records] == ["support-chat-export"]
    assert before.source_records[0].rights_basis == "internal"


def test_inline_parameters_and_full_digests() -> None:
    text = (
        "dataset: d\ncreated_at: 2026-05-22\nsource_records: [a@1]\n"
        "transforms: ['dedupe-v2 threshold=0.84 exact=true', 'clean-data']\n"
        f"sha256: SHA256:{'AB' * 32}\n"
    )
    m = loads(text)
    assert m.transforms[0].params == {"threshold": 0.84, "exact": True}
    assert m.transforms[1].version is None and m.sha256 == "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dataset: d\ncreated_at: x\nreviewer_status: maybe\n", "reviewer_status"),
        ("dataset: d\ncreated_at: x\nsauce: 1\n", "sauce"),
        (
            "dataset: d\ncreated_at: x\nsource_records: [{ref: a@1, rights: x}]\n",
            "source_records.0",
        ),
        ("dataset: d\ncreated_at: x\nsha256: not-a-digest\n", "sha256"),
        ("dataset: d\n", "created_at"),
        ("- just\n- a list\n", "not a mapping"),
        ("dataset: [unclosed\n", "not valid YAML"),
        ("dataset: d\ncreated_at: x\ntransforms: ['dedupe-v2 threshold']\n", "key=value"),
        ("dataset: d\ncreated_at: x\nsource: a\nsource_records: [b@1]\n", "not both"),
    ],
)
def test_malformed_manifests_are_clear_errors(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        loads(text, where="m.yaml")
    assert caught.value.exit_code == 3 and caught.value.hint


def test_a_huge_or_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    with pytest.raises(InputError, match="larger than"):
        load(big)
    with pytest.raises(InputError, match="not valid JSON"):
        loads("{", "json")


# -- recording a hand-written manifest -------------------------------------------------------


def write_manifest(folder: Path, sha: str, report: str = "removed.json") -> Path:
    path = folder / "manifest.yaml"
    path.write_text(
        "dataset: support-classifier-training\ncreated_at: 2026-05-22T18:10:00Z\n"
        "source_records: [support-chat-export@2026-05-22]\n"
        "rights_basis: internal-use-policy-2026-04\n"
        "transforms: [opt-out-removal-v2]\n"
        f"exclusion_report: {report}\nreviewer_status: accepted\n"
        f"data_file: data/train.jsonl\nsha256: {sha}\nmodel_build: support-classifier-v7\n"
    )
    return path


def test_record_checks_every_digest_it_can_and_records_nothing_on_a_mismatch(
    tmp_path: Path,
) -> None:
    ledger = Ledger.init(tmp_path)
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "train.jsonl"
    data.write_text('{"text": "hello"}\n')
    (tmp_path / "removed.json").write_text('{"removed": []}\n')
    actual = digest_file(data)
    wrong = write_manifest(tmp_path, "0" * 8 + "...")
    with pytest.raises(InputError, match="nothing was recorded"):
        record(ledger, wrong)
    assert ledger.size == 0
    path = write_manifest(tmp_path, actual.hex[:8] + "...")
    entry = record(ledger, path, actor=CAROL).dataset
    payload = entry.event.payload
    assert payload["byte_digest"] == actual  # the abbreviation, checked, recorded in full
    assert payload["manifest_digest"] == Digest.of_bytes(path.read_bytes())
    assert payload["sources"] == ("support-chat-export@2026-05-22",)
    m = from_ledger(ledger, "support-classifier-training")
    assert m.event == entry.digest and m.sha256 == actual
    assert m.exclusion_reports[0].digest == digest_file(tmp_path / "removed.json")
    assert m.reviewer_status == "accepted"  # the claim stands where the ledger has no review
    # linting the recorded manifest: its files were checked when it was recorded, so no
    # "is not here, so its digest cannot be checked" while they are right there
    from mlprov.governance.lint import lint

    assert [f.rule for f in lint(m, ledger) if f.rule == "MP011"] == []
    assert "MP011" in {f.rule for f in lint(m.model_copy(update={"event": None}), ledger)}


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../outside.json", "data/../../outside.json", "~/x.json"]
)
def test_record_refuses_files_outside_the_manifests_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (tmp_path / "outside.json").write_text("{}")
    ledger = Ledger.init(tmp_path)
    path = write_manifest(folder, "abcdef12...", report=name)
    with pytest.raises(InputError, match=r"absolute path|leaves the manifest's folder"):
        record(ledger, path)
    assert ledger.size == 0
