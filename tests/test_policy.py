"""The gates on events a real pipeline recorded: each one blocks, and passes once its
condition is fixed (so each test fails if its gate is taken away); the incident story; the
composition of gates; and the policy file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from mlprov.errors import GateBlocked, InputError, NotFoundError
from mlprov.facade import Ledger
from mlprov.governance.gates import GATES, optout_lists
from mlprov.governance.policy import (
    DEFAULT_GATES,
    AllOf,
    Policy,
    all_of,
    any_of,
    check,
    load_policy,
    parse_policy,
    require_clear,
)
from mlprov.governance.review import record_quarantine, record_release, record_review, status_of
from mlprov.ledger import Entry, Event
from mlprov.ledger.keys import SignerKey, write_keypair

ALICE, CAROL = "alice@example.com", "carol@example.com"
CHATS = "chats@2026-05-22"
OPTOUT = "opt-out-list@2026-05-22"
ROWS = [{"id": i, "user": f"u{i}@example.com", "text": f"ticket {i}"} for i in range(8)]
# Every source names a rights basis: the lint gate (MPG008) rightly blocks one that does not.
BASIS = "contract-2024-17 §4"
LIST_BASIS = "customer-exclusion-log"


def write_chats(tmp_path: Path) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def run(ledger: Ledger, tmp_path: Path, optout: str = OPTOUT, users: tuple[str, ...] = ()) -> Entry:
    """chats (read from a file) minus the opt-out list `optout` of `users`: dataset `train`."""
    with ledger.pipeline("train", actor=ALICE, repo=tmp_path) as p:
        chats = p.source(write_chats(tmp_path), CHATS, key="id", subject="user", rights_basis=BASIS)
        listed = p.source(
            [{"user": u} for u in users or ("u3@example.com",)],
            optout,
            subject="user",
            rights_basis=LIST_BASIS,
        )
        kept = p.exclude("opt-out-removal-v2", chats, using=listed, on="user")
        return p.dataset(kept, "train")


def accept(ledger: Ledger, *sources: str) -> None:
    for source in sources or (CHATS, OPTOUT):
        record_review(ledger, source, "accepted", CAROL)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.init(tmp_path)


def gate_ids(ledger: Ledger, target: str | Entry = "train", use: str = "training") -> list[str]:
    return [f.gate for f in check(ledger, target, use)]


def blocked_by(ledger: Ledger, gate: str, target: str | Entry = "train") -> GateBlocked:
    with pytest.raises(GateBlocked, match=gate) as caught:
        require_clear(ledger, target, "training")
    assert caught.value.exit_code == 7 and caught.value.findings
    return caught.value


# -- each gate -------------------------------------------------------------------------------


def test_mpg001_a_never_reviewed_source_blocks(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    found = blocked_by(ledger, "MPG001").findings
    assert found == (
        f"MPG001 source {CHATS} has never been reviewed",
        f"MPG001 source {OPTOUT} has never been reviewed",
    )
    finding = check(ledger, "train")[0]
    assert finding.hint == f"record a review: mlprov review {CHATS} --status accepted"
    accept(ledger)
    require_clear(ledger, "train")
    ghost = ledger.append(
        Event.create("dataset", {"name": "ghost", "sources": ["nowhere@1"]}, actor=ALICE)
    )
    assert [(f.gate, f.verdict, f.message) for f in check(ledger, ghost)] == [
        ("MPG001", "blocked", "source nowhere@1 of dataset ghost is not recorded in this ledger"),
        (
            "MPG005",
            "unknown",
            "dataset ghost: opt-outs cannot be checked: it records no record set",
        ),
    ]


def test_mpg002_the_incident_story_quarantine_blocks_until_released_with_evidence(
    ledger: Ledger, tmp_path: Path
) -> None:
    train = run(ledger, tmp_path)
    accept(ledger)
    ledger.build("support-classifier-v7", dataset=train)
    held = record_quarantine(
        ledger,
        CHATS,
        "opt-out record found in model-review sample",
        "opt-out-removal evidence and reviewer status attached",
        ["training", "benchmark-publication"],
        ["incident-reproduction"],
    )
    found = check(ledger, "train")
    assert [(f.gate, f.subject) for f in found] == [("MPG002", held.digest)]
    assert "mlprov release chats@2026-05-22 --evidence EVENT" in found[0].hint
    assert gate_ids(ledger, CHATS) == ["MPG002", "MPG005"]  # the raw export holds u3 too
    assert gate_ids(ledger, "train", "benchmark-publication") == ["MPG002"]
    assert gate_ids(ledger, "train", "incident-reproduction") == []  # an allowed use
    blocked_by(ledger, "MPG002")
    size = ledger.size
    with pytest.raises(GateBlocked, match="MPG002"):
        ledger.build("support-classifier-v8", dataset=train)
    assert ledger.size == size
    evidence = record_review(
        ledger, CHATS, "accepted_with_limits", CAROL, limits=["English tickets only"]
    )
    assert gate_ids(ledger) == ["MPG002"]  # a review alone lifts nothing
    record_release(ledger, CHATS, [evidence])
    require_clear(ledger, "train")
    build = ledger.build("support-classifier-v8", dataset=train)
    assert build.event.payload["gate"] == "passed"


def test_mpg003_a_rejected_source_or_dataset_blocks(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    accept(ledger)
    no = record_review(ledger, "train", "rejected", CAROL, note="built before consent migration")
    found = check(ledger, "train")
    assert [(f.gate, f.subject) for f in found] == [("MPG003", no.digest)]
    blocked_by(ledger, "MPG003")
    assert gate_ids(ledger, "train", "incident-reproduction") == []
    run(ledger, tmp_path)  # the same data again is the same version: still rejected
    blocked_by(ledger, "MPG003")
    run(ledger, tmp_path, "opt-out-list@2026-06-01", ("u4@example.com",))  # other data: v2
    assert "MPG003" in [f.gate for f in check(ledger, "train@v1")]
    assert "MPG003" not in [f.gate for f in check(ledger, "train@v2")]


def test_mpg004_byte_drift_blocks_and_a_missing_file_is_unknown(
    ledger: Ledger, tmp_path: Path
) -> None:
    run(ledger, tmp_path)
    accept(ledger)
    require_clear(ledger, "train")
    path = tmp_path / "chats.jsonl"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"ticket 5", b"ticket 6"))
    [finding] = check(ledger, "train")
    assert finding.gate == "MPG004" and finding.verdict == "blocked"
    assert "has changed since it was recorded" in finding.message
    blocked_by(ledger, "MPG004")
    path.write_bytes(original)
    require_clear(ledger, "train")
    path.unlink()
    [finding] = check(ledger, "train")
    assert (finding.gate, finding.verdict) == ("MPG004", "unknown")
    assert "byte drift unknown" in finding.message and "no such file" in finding.message
    blocked_by(ledger, "MPG004")  # unknown is not clear


def test_mpg005_a_subject_on_the_newest_opt_out_list_blocks(ledger: Ledger, tmp_path: Path) -> None:
    train = run(ledger, tmp_path)
    accept(ledger)
    require_clear(ledger, train)
    with ledger.pipeline("optout-refresh", repo=tmp_path) as p:  # u5 opts out later
        p.source(
            [{"user": "u3@example.com"}, {"user": "U5@example.com "}],
            "opt-out-list@2",
            rights_basis=LIST_BASIS,
        )
    assert [e.event.name for e in optout_lists(ledger)] == ["opt-out-list@2"]
    accept(ledger, "opt-out-list@2")
    [finding] = check(ledger, train)
    assert finding.gate == "MPG005" and finding.verdict == "unknown"  # the list has no subjects
    with ledger.pipeline("optout-refresh", repo=tmp_path) as p:
        p.source(
            [{"user": "u3@example.com"}, {"user": "u5@example.com"}],
            "opt-out-list@3",
            subject="user",
            rights_basis=LIST_BASIS,
        )
    [finding] = check(ledger, train)
    assert finding.gate == "MPG005" and finding.verdict == "blocked"
    assert finding.message == (
        "1 subject on the opt-out list opt-out-list@3 is still in dataset train@v1"
    )
    blocked_by(ledger, "MPG005", train)
    again = run(ledger, tmp_path, "opt-out-list@3", ("u3@example.com", "u5@example.com"))
    accept(ledger, "opt-out-list@3")
    require_clear(ledger, again)


def test_mpg005_a_subject_shard_altered_in_the_dataset_file_blocks(
    ledger: Ledger, tmp_path: Path
) -> None:
    import json

    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from mlprov.records.setfiles import INDEX

    # several people on the list, none in the chats but u3, so that (whatever the ledger's
    # secret) one of them falls in a subject shard the training set holds no row of
    users = ("u3@example.com", *(f"z{i}@example.com" for i in range(10)))
    train = run(ledger, tmp_path, OPTOUT, users)
    accept(ledger)
    require_clear(ledger, train)
    path = (
        ledger.blobs_dir / f"{train.event.payload['record_root'].removeprefix('sha256:')}.parquet"
    )
    meta = pq.read_metadata(path).metadata
    whole = pq.read_table(path)
    subjects = whole.column("subject").to_pylist()
    index = json.loads(meta[INDEX])
    hashed = [ledger.subject_hasher().hash(u) for u in users]  # on the list, not in train
    listed = next(h for h in hashed if index["subjects"][h[0] + 1] == index["subjects"][h[0]])
    at = index["rows"] + index["subjects"][listed[0]]  # where its shard's rows would be
    at = min(at, len(subjects) - 1)  # a row of a shard beside it, moved into its shard
    subjects[at] = bytes([listed[0]]) + subjects[at][1:]
    altered = whole.set_column(2, "subject", pa.array(subjects, pa.binary(32)))
    pq.write_table(altered.replace_schema_metadata(meta), path)
    [finding] = check(ledger, train)
    assert finding.gate == "MPG005" and finding.verdict == "blocked"
    assert "does not match its index" in finding.message


def test_mpg005_an_opt_out_list_no_step_used_still_counts(ledger: Ledger, tmp_path: Path) -> None:
    with ledger.pipeline("train", repo=tmp_path) as p:
        chats = p.source(
            pa.Table.from_pylist(ROWS), CHATS, key="id", subject="user", rights_basis=BASIS
        )
        p.source([{"user": "u1@example.com"}], "customer-optout@1", subject="user")
        train = p.dataset(chats, "train")  # the exclusion never ran
    accept(ledger, CHATS)
    assert gate_ids(ledger, train) == ["MPG005"]
    assert gate_ids(ledger, "customer-optout@1") == ["MPG001"]  # a list holds its own subjects


def test_mpg006_a_review_whose_signature_fails_blocks(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    key = SignerKey.generate(CAROL)
    assert ledger.location is not None and ledger.location.keys_dir is not None
    write_keypair(key, ledger.location.keys_dir)
    accept(ledger, OPTOUT)
    signed = record_review(ledger, CHATS, "accepted_with_limits", CAROL, ["English"], signer=key)
    require_clear(ledger, "train")
    forged = dict(signed.event.payload, status="accepted", limits=[])
    ledger.append(Event.create("review", forged, actor=ALICE))
    [finding] = check(ledger, "train")
    assert finding.gate == "MPG006" and "does not verify" in finding.message
    blocked_by(ledger, "MPG006")
    record_review(ledger, CHATS, "accepted", CAROL, signer=key)
    require_clear(ledger, "train")
    stranger = SignerKey.generate("mallory@example.com")
    record_review(ledger, CHATS, "accepted", "mallory@example.com", signer=stranger)
    [finding] = check(ledger, "train")
    assert (finding.gate, finding.verdict) == ("MPG006", "unknown")


def test_mpg007_separate_duties_when_the_policy_asks(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    record_review(ledger, CHATS, "accepted", ALICE)  # alice ran the pipeline
    record_review(ledger, OPTOUT, "accepted", CAROL)
    strict = parse_policy({"uses": {"training": {"gates": ["separate-duties"]}}}, "test")
    assert [f.gate for f in check(ledger, "train", policy=strict)] == ["MPG007"]
    assert check(ledger, "train") == []  # not a default gate
    record_review(ledger, CHATS, "accepted", CAROL)
    assert check(ledger, "train", policy=strict) == []


def test_the_default_gates() -> None:
    training = [g.id for g in DEFAULT_GATES["training"]]
    assert training == ["MPG001", "MPG002", "MPG003", "MPG004", "MPG005", "MPG006", "MPG008"]
    assert DEFAULT_GATES["benchmark-publication"] == DEFAULT_GATES["training"]
    assert [g.id for g in DEFAULT_GATES["incident-reproduction"]] == ["MPG002", "MPG004"]
    assert Policy().gate_for("fine-tuning") == AllOf(DEFAULT_GATES["training"])
    assert sorted(GATES) == [f"MPG00{i}" for i in range(1, 9)]


# -- composition and the policy file -----------------------------------------------------------


def test_all_of_reports_everything_and_any_of_needs_one(ledger: Ledger, tmp_path: Path) -> None:
    train = run(ledger, tmp_path)
    never, quarantined, drift = GATES["MPG001"], GATES["MPG002"], GATES["MPG004"]
    assert [f.gate for f in all_of(never, quarantined).check(ledger, train, "training")] == [
        "MPG001",
        "MPG001",
    ]
    assert any_of(never, quarantined).check(ledger, train, "training") == []
    either = any_of(never, drift)
    assert either.check(ledger, train, "training") == []
    (tmp_path / "chats.jsonl").write_text("changed\n")
    found = [f.gate for f in either.check(ledger, train, "training")]
    assert found == ["MPG001", "MPG001", "MPG004"]
    assert either.id == "any_of(MPG001, MPG004)"
    with pytest.raises(InputError):
        any_of()


def test_a_policy_file_chooses_gates_per_use(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    toml = tmp_path / "policy.toml"
    toml.write_text(
        "version = 1\n"
        '[uses.training]\ngates = ["never-reviewed", {any_of = ["MPG002", "MPG003"]}]\n'
        '[uses."*"]\ngates = []\n'
    )
    policy = load_policy(toml)
    assert policy.gate_for("training").id == "all_of(MPG001, any_of(MPG002, MPG003))"
    assert gate_ids_with(ledger, policy, "training") == ["MPG001", "MPG001"]
    assert gate_ids_with(ledger, policy, "benchmark-publication") == []
    as_json = tmp_path / "policy.json"
    as_json.write_text(json.dumps({"uses": {"training": {"gates": ["MPG002"]}}}))
    assert gate_ids_with(ledger, load_policy(as_json), "training") == []
    assert gate_ids_with(ledger, load_policy(as_json), "fine-tuning") == ["MPG001", "MPG001"]
    # The ledger folder's policy.toml is the one `check` and `ledger.build` use by default.
    with pytest.raises(GateBlocked, match="MPG001"):
        ledger.build("m", dataset="train")
    assert ledger.location is not None and ledger.location.home is not None
    (ledger.location.home / "policy.toml").write_text("[uses.training]\ngates = []\n")
    assert load_policy(ledger=ledger).origin.endswith("policy.toml")
    assert check(ledger, "train") == []
    assert ledger.build("m", dataset="train").event.payload["gate"] == "passed"


def gate_ids_with(ledger: Ledger, policy: Policy, use: str) -> list[str]:
    return [f.gate for f in check(ledger, "train", use, policy)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[uses.training]\ngates = ["MPG999"]\n', "unknown gate 'MPG999'"),
        ("version = 2\n", "version 2 is not supported"),
        ("[uses.training]\nrules = []\n", "must hold exactly `gates"),
        ('[uses."Training Runs"]\ngates = []\n', "not a use name"),
        ('[uses.training]\ngates = [{none_of = ["MPG001"]}]\n', "a gate is an id, a name"),
        ("extra = 1\n", "only `version` and `uses`"),
        ("[uses\n", "does not parse"),
    ],
)
def test_a_bad_policy_file_is_a_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as caught:
        load_policy(path)
    assert caught.value.exit_code == 3


def test_a_missing_or_misnamed_policy_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_policy(tmp_path / "nope.toml")
    (tmp_path / "policy.yaml").write_text("uses: {}")
    with pytest.raises(InputError, match=r"neither \.toml nor \.json"):
        load_policy(tmp_path / "policy.yaml")


def test_status_and_check_name_the_target(ledger: Ledger, tmp_path: Path) -> None:
    run(ledger, tmp_path)
    assert status_of(ledger, "train").target.event.name == "train"
    with pytest.raises(NotFoundError):
        check(ledger, "no-such-dataset")
    with pytest.raises(InputError, match="not a use name"):
        check(ledger, "train", "Training")
