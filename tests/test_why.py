"""`why` on the incident of incident-example.md, built for real: a stale opt-out list, a
redaction that ran before the opt-out join, a near-duplicate that survived dedupe, and a
source reused after quarantine — each answered with its true cause and a checkable proof."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tests.test_cli import assert_error, mlprov, ok

from mlprov.answers.why import Answer, to_json, to_markdown, to_text, why
from mlprov.digest import Digest
from mlprov.errors import GateBlocked, InputError
from mlprov.facade import Ledger
from mlprov.governance.review import record_quarantine, record_review
from mlprov.ledger import Entry
from mlprov.records.setproofs import load_set_proof
from mlprov.records.sets import RecordSet

REVIEWER = "carol@example.com"
# customer_id is whom a ticket concerns; email and channel are what the steps look at.
TICKETS = pd.DataFrame(
    [
        (1, "C1", "ann@example.com", "web", "my invoice is wrong"),
        (2, "C2", "bob@example.com", "chat", "the app crashes on login"),
        (3, "C3", "cat@example.com", "web", "please cancel my plan"),
        (4, "C4", "dan@example.com", "web", "refund for order 5512 please, it arrived broken"),
        (5, "C9", "inbox@example.com", "web", "refund for order 5512 please it arrived broken!"),
        (6, "C6", "eve@example.com", "web", "how do I export my data"),
    ],
    columns=["ticket_id", "customer_id", "email", "channel", "text"],
)
# The list of 2026-05-01 (C1, C2, C4) and of 2026-05-22 (C3 opted out since).
OPT_OUT_OLD = TICKETS[TICKETS.customer_id.isin(["C1", "C2", "C4"])][["customer_id", "email"]]
OPT_OUT_NEW = TICKETS[TICKETS.customer_id.isin(["C1", "C2", "C3", "C4"])][["customer_id", "email"]]


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(text=df.text.str.strip().str.lower())


def redact(df: pd.DataFrame) -> pd.DataFrame:
    """pii-redaction-v3: masks the e-mail of chat transcripts, the column the v7 join needs."""
    return df.assign(email=df.email.where(df.channel != "chat", "[redacted]"))


def near_duplicates(df: pd.DataFrame, threshold: float) -> tuple[pd.Series, pd.Series]:
    """Each row that is a near-duplicate of a later one, and the later one's key."""
    texts, keys = list(df.text), list(df.ticket_id)
    dupe, kept = [False] * len(df), [None] * len(df)
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if difflib.SequenceMatcher(None, texts[i], texts[j]).ratio() >= threshold:
                dupe[i], kept[i] = True, keys[j]
                break
    return pd.Series(dupe, index=df.index), pd.Series(kept, index=df.index, dtype=object)


def source(p: object, data: pd.DataFrame) -> pd.DataFrame:
    return p.source(  # type: ignore[attr-defined,no-any-return]
        data,
        "support-chat-export@2026-05-22",
        key="ticket_id",
        subject="customer_id",
        rights_basis="internal-use-policy-2026-04",
        license="LicenseRef-proprietary",
        personal_data=True,
    )


def optout_list(p: object, data: pd.DataFrame, version: str) -> pd.DataFrame:
    return p.source(  # type: ignore[attr-defined,no-any-return]
        data,
        f"opt-out-list@{version}",
        subject="customer_id",
        rights_basis="customer-exclusion-log",
    )


@dataclass
class Incident:
    ledger: Ledger
    v7: Entry
    v7_retrain: Entry
    v8: Entry


def v7_pipeline(ledger: Ledger) -> Entry:
    """The flawed pipeline: redaction before an opt-out join on e-mail, with the old list,
    and dedupe before the opt-out removal."""
    with ledger.pipeline("support-classifier-training") as p:
        chats = source(p, TICKETS)
        old = optout_list(p, OPT_OUT_OLD, "2026-05-01")
        chats = p.transform("normalize-v1", normalize, chats)
        chats = p.transform("pii-redaction-v3", redact, chats)
        dupes, kept = near_duplicates(chats, 0.84)
        chats = p.exclude(
            "dedupe-v2", chats, where=dupes, duplicate_of=kept, params={"threshold": 0.84}
        )
        chats = p.exclude("opt-out-removal-v2", chats, using=old, on="email")
        return p.dataset(chats, "support-classifier-training", version="v7")


def v8_pipeline(ledger: Ledger) -> Entry:
    """The fixed pipeline: the newest list, joined on the subject before anything else."""
    with ledger.pipeline("support-classifier-training") as p:
        chats = source(p, TICKETS)
        new = optout_list(p, OPT_OUT_NEW, "2026-05-22")
        chats = p.exclude("opt-out-removal-v3", chats, using=new, on="customer_id")
        chats = p.transform("normalize-v1", normalize, chats)
        chats = p.transform("pii-redaction-v3", redact, chats)
        dupes, kept = near_duplicates(chats, 0.84)
        chats = p.exclude(
            "dedupe-v2", chats, where=dupes, duplicate_of=kept, params={"threshold": 0.84}
        )
        return p.dataset(chats, "support-classifier-training", version="v8")


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Incident:
    ledger = Ledger.init(tmp_path_factory.mktemp("incident"))
    with ledger.pipeline("opt-out-intake") as p:  # C3's opt-out arrives before v7 runs
        optout_list(p, OPT_OUT_NEW, "2026-05-22")
    v7_data = v7_pipeline(ledger)
    record_review(
        ledger,
        "support-chat-export@2026-05-22",
        "accepted_with_limits",
        REVIEWER,
        limits=["English tickets only"],
        risks=["legacy tickets before consent-policy migration"],
    )
    for ref in ("opt-out-list@2026-05-01", "opt-out-list@2026-05-22"):
        record_review(ledger, ref, "accepted", REVIEWER)
    v7 = ledger.build("support-classifier-v7", dataset=v7_data, gates=())  # as in May: none
    # An opted-out customer finds their ticket in a review sample: the export is quarantined.
    record_quarantine(
        ledger,
        "support-chat-export@2026-05-22",
        trigger="opt-out record found in model-review sample",
        exit_condition="opt-out-removal evidence and reviewer status attached",
    )
    # Someone retrains on the same export anyway, forcing past the gates.
    again = v7_pipeline(ledger)
    with pytest.raises(GateBlocked):
        ledger.build("support-classifier-v7.1", dataset=again)
    v7_retrain = ledger.build("support-classifier-v7.1", dataset=again, force=True)
    v8_data = v8_pipeline(ledger)
    v8 = ledger.build("support-classifier-v8", dataset=v8_data, gates=())
    return Incident(ledger, v7, v7_retrain, v8)


def codes(answer: Answer) -> list[str]:
    return [c.code for c in answer.causes]


def check_proofs(answer: Answer) -> None:
    """Every proof in the JSON answer verifies on its own against the dataset's root."""
    root = bytes.fromhex(answer.dataset.event.payload["record_root"].removeprefix("sha256:"))
    for item in to_json(answer)["proofs"]:
        proof = load_set_proof(json.dumps(item["proof"]).encode())
        proof.verify(root)


def test_a_subject_removed_in_time_is_proven_out_with_the_step_that_removed_it(
    incident: Incident,
) -> None:
    answer = incident.ledger.why(incident.v7, subject="C1")
    assert answer.present is False
    [proof] = answer.proofs
    assert not proof.present and proof.proof.kind == "subject"
    check_proofs(answer)
    [trail] = answer.trails
    assert trail.removed_by is not None and trail.removed_by.name == "opt-out-removal-v2"
    assert [f.did for f in trail.fates] == ["kept", "kept", "kept", "removed"]
    assert trail.removed_by.detail == "removed it"  # its reason only named the step again
    assert codes(answer) == []
    text = to_text(answer)
    assert "opt-out-removal-v2 (step 4): removed it (event" in text  # no "[v2]" after "-v2"
    assert "did not reach the dataset" in text and "removed by" not in text


def test_a_redaction_before_the_opt_out_join_is_named(incident: Incident) -> None:
    answer = why(incident.ledger, "support-classifier-v7", subject="C2")
    assert answer.present is True
    check_proofs(answer)
    assert codes(answer) == ["column-rewritten", "gates-not-run"]
    [trail] = answer.trails
    assert [f.did for f in trail.fates] == ["kept", "changed", "kept", "kept"]
    assert trail.fates[1].columns == ("email",)
    text = answer.causes[0].text
    assert "'email'" in text and "pii-redaction-v3 (step 2)" in text
    assert "opt-out-list@2026-05-01" in text


def test_a_stale_opt_out_list_is_named_with_the_newer_version(incident: Incident) -> None:
    answer = why(incident.ledger, incident.v7, subject="C3")
    assert answer.present is True
    assert codes(answer) == ["stale-list", "gates-not-run"]
    text = answer.causes[0].text
    assert "used opt-out-list@2026-05-01" in text and "opt-out-list@2026-05-22" in text


def test_a_near_duplicate_kept_in_place_of_an_opted_out_record_is_named(
    incident: Incident,
) -> None:
    # The person is proven out of the set, and told their content lives on in key 5.
    answer = why(incident.ledger, incident.v7, subject="C4")
    assert answer.present is False
    [trail] = answer.trails
    assert trail.removed_by is not None and trail.removed_by.duplicate_of == "5"
    assert codes(answer) == ["duplicate-kept"]
    twin = [p for p in answer.proofs if "(key 5)" in p.about]
    assert len(twin) == 1 and twin[0].present
    check_proofs(answer)
    # Asked about the surviving record itself, the answer names the near-duplicate.
    kept = why(incident.ledger, incident.v7, key="5")
    assert kept.present is True
    assert "near-duplicate" in codes(kept)


def test_a_source_reused_after_quarantine_is_named_with_the_override(incident: Incident) -> None:
    answer = why(incident.ledger, incident.v7_retrain, subject="C2")
    assert answer.present is True
    assert codes(answer) == ["source-quarantined", "column-rewritten", "build-forced"]
    assert "opt-out record found in model-review sample" in answer.causes[0].text
    assert "MPG002" in answer.causes[2].text  # the quarantine gate it was forced past
    # At v7's own build time the export was not yet quarantined, and no gate ran.
    v7 = codes(why(incident.ledger, incident.v7, subject="C2"))
    assert v7 == ["column-rewritten", "gates-not-run"]


def test_the_fixed_build_proves_every_opted_out_subject_out(incident: Incident) -> None:
    for subject in ("C1", "C2", "C3", "C4"):
        answer = why(incident.ledger, incident.v8, subject=subject)
        assert answer.present is False, subject
        check_proofs(answer)
        [trail] = answer.trails
        assert trail.removed_by is not None and trail.removed_by.name == "opt-out-removal-v3"


def test_other_builds_that_contain_the_record_are_listed(incident: Incident) -> None:
    answer = why(incident.ledger, incident.v7, subject="C2")
    held = {b.event.name: contains for b, contains in answer.other_builds}
    assert held == {"support-classifier-v7.1": True, "support-classifier-v8": False}


def test_a_record_given_by_content_or_digest_is_found(incident: Incident) -> None:
    row = {**TICKETS.iloc[5].to_dict(), "ticket_id": 6}  # C6 never opted out
    answer = why(incident.ledger, incident.v7, record=json.dumps(row))
    [trail] = answer.trails  # found in the export, and followed to the set as normalised
    assert [f.did for f in trail.fates] == ["changed", "kept", "kept", "kept"]
    assert trail.removed_by is None and answer.present is True
    check_proofs(answer)
    by_key = why(incident.ledger, incident.v7, key="6")
    assert by_key.present is True
    assert codes(by_key) == ["not-on-list", "gates-not-run"]
    digest = "sha256:" + by_key.trails[0].digest.hex()
    assert why(incident.ledger, incident.v7, digest=digest).present is True


def test_missing_evidence_is_said_to_be_missing(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("p") as p:
        chats = source(p, TICKETS)
        dataset = p.dataset(chats, "d")
    build = ledger.build("m", dataset=dataset, gates=())
    root = dataset.event.payload["record_root"].removeprefix("sha256:")
    (ledger.blobs_dir / f"{root}.parquet").unlink()
    answer = why(ledger, build, subject="C1")
    assert answer.present is None
    assert any("record set" in m for m in answer.missing)
    assert "Unknown" in to_text(answer)


def test_exactly_one_question_is_asked(incident: Incident) -> None:
    with pytest.raises(InputError, match="exactly one"):
        why(incident.ledger, incident.v7, subject="C1", key="1")
    with pytest.raises(InputError, match="exactly one"):
        why(incident.ledger, incident.v7)


def test_text_markdown_and_json_carry_the_same_answer(incident: Incident) -> None:
    answer = why(incident.ledger, incident.v7, subject="C2")
    text, md = to_text(answer), to_markdown(answer)
    for out in (text, md):
        assert "Yes: the subject" in out and "column-rewritten" in out
        assert "pii-redaction-v3" in out and "C2" not in out  # the subject only by its hash
    assert md.startswith("## Answer")
    data = to_json(answer)
    assert data["present"] is True and data["causes"][0]["code"] == "column-rewritten"
    assert data["manifest_digest"] == incident.v7.event.payload["manifest_digest"]


def test_the_cli_answers_and_writes_checkable_proofs(incident: Incident, tmp_path: Path) -> None:
    home = incident.ledger.location.home.parent  # type: ignore[union-attr]
    out = ok(mlprov("why", "--model", "support-classifier-v7", "--subject", "C3", cwd=home))
    assert "Yes: the subject" in out and "[stale-list]" in out
    data = json.loads(
        ok(mlprov("why", "--model", "support-classifier-v8", "--subject", "C3", "--json", cwd=home))
    )
    assert data["present"] is False
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(data["proofs"][0]["proof"]))
    root = data["dataset"]["record_root"].removeprefix("sha256:")
    assert "valid" in ok(mlprov("check-proof", proof_file, "--root", root, cwd=tmp_path))
    # the answer's JSON as written is a proof file too: every proof in it is checked,
    # against the record root the answer names, and its claim "in" must match the proof
    answer_file = tmp_path / "why.json"
    answer_file.write_text(json.dumps(data))
    checked = mlprov("check-proof", answer_file, "--json", cwd=tmp_path)
    assert json.loads(ok(checked))["proofs"][0]["in"] is False
    data["proofs"][0]["in"] = True
    answer_file.write_text(json.dumps(data))
    assert_error(mlprov("check-proof", answer_file, cwd=tmp_path), 10, "shows otherwise")
    data["proofs"][0]["in"] = False
    data["dataset"]["record_root"] = "sha256:" + "ab" * 32
    answer_file.write_text(json.dumps(data))
    assert_error(mlprov("check-proof", answer_file, cwd=tmp_path), 10, "not " + "ab" * 32)
    md = ok(
        mlprov(
            "why",
            "--model",
            "support-classifier-v7",
            "--key",
            "5",
            "--format",
            "markdown",
            cwd=home,
        )
    )
    assert "## Why" in md and "near-duplicate" in md
    # no selector is a usage error (2), as a missing option is
    assert_error(mlprov("why", "--model", "support-classifier-v7", cwd=home), 2, "exactly one")
    assert_error(
        mlprov("why", "--model", "no-such-build", "--key", "1", cwd=home), 3, "no-such-build"
    )


def test_the_answers_are_the_same_on_every_store(ledger: Ledger) -> None:
    """The conftest ledger runs on SQLite and on PostgreSQL."""
    with ledger.pipeline("opt-out-intake") as p:
        optout_list(p, OPT_OUT_NEW, "2026-05-22")
    build = ledger.build("support-classifier-v7", dataset=v7_pipeline(ledger), gates=())
    # Nobody reviewed the export here, and the answers say so too.
    assert codes(why(ledger, build, subject="C2"))[:2] == ["source-unreviewed", "column-rewritten"]
    assert codes(why(ledger, build, subject="C3"))[:2] == ["source-unreviewed", "stale-list"]
    removed = why(ledger, build, subject="C1")
    assert removed.present is False
    check_proofs(removed)


def test_a_set_without_subjects_cannot_answer_for_a_person(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("p") as p:
        chats = p.source(TICKETS, "support-chat-export@2026-05-22", key="ticket_id")
        dataset = p.dataset(chats, "d")
    answer = why(ledger, ledger.build("m", dataset=dataset, gates=()), subject="C1")
    assert answer.present is None and answer.proofs == ()
    assert any("records no subjects" in m for m in answer.missing)
    assert why(ledger, dataset, key="1").present is True  # a record can still be found


def test_an_unknown_key_is_not_claimed_proven_absent(incident: Incident) -> None:
    answer = why(incident.ledger, incident.v7, key="no-such-ticket")
    assert answer.present is False and answer.proofs == () and answer.trails == ()
    assert any("cannot be proven" in m for m in answer.missing)


def test_answers_from_set_files_read_by_shard_are_those_of_whole_sets(tmp_path: Path) -> None:
    """Set files of the earlier format have no index and are read whole: the answers,
    proofs included, are the same byte for byte."""
    import pyarrow.parquet as pq

    from mlprov.records.setfiles import EARLIER, read_rows
    from mlprov.records.setreader import SetFile

    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("opt-out-intake") as p:
        optout_list(p, OPT_OUT_NEW, "2026-05-22")
    build = ledger.build("support-classifier-v7", dataset=v7_pipeline(ledger), gates=())
    questions = [{"subject": c} for c in ("C1", "C2", "C3", "C4", "C5", "nobody")]
    questions += [{"key": "4"}, {"key": "5"}, {"key": "404"}]

    def answers() -> list[bytes]:
        return [json.dumps(to_json(why(ledger, build, **q))).encode() for q in questions]

    indexed = answers()
    sets = sorted(ledger.blobs_dir.glob("[0-9a-f]*[0-9a-f].parquet"))
    assert sets and all(isinstance(ledger.open_record_set(p.stem), SetFile) for p in sets)
    for path in sets:
        rows, _ = read_rows(path)
        meta = {b"mlprov.format": EARLIER.encode(), b"mlprov.root": path.stem.encode()}
        pq.write_table(rows.replace_schema_metadata(meta), path)
    assert not any(isinstance(ledger.open_record_set(p.stem), SetFile) for p in sets)
    assert answers() == indexed


def test_answers_from_changes_files_read_by_part_are_those_of_whole_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger recorded before changes files were indexed (ADR 0021: the step's rows in
    the order it made them, no `changes_root`) is read whole and answers as one recorded
    now, read a part at a time: the same text, but for the digests and times that name
    its events, sets and subjects."""
    import re

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlprov.capture import lineage
    from mlprov.store import blobs

    def record(folder: Path) -> tuple[Ledger, Entry]:
        ledger = Ledger.init(folder)
        with ledger.pipeline("opt-out-intake") as p:
            optout_list(p, OPT_OUT_NEW, "2026-05-22")
        v7 = ledger.build("support-classifier-v7", dataset=v7_pipeline(ledger), gates=())
        return ledger, v7

    questions = [{"subject": c} for c in ("C1", "C2", "C3", "C4", "C5", "C9", "nobody")]
    questions += [{"key": k} for k in ("1", "4", "5", "404")]

    def answers(ledger: Ledger, build: Entry) -> list[str]:
        said = [to_text(why(ledger, build, **q)) for q in questions]
        return [re.sub(r"[0-9a-f]{8,}|\d{4}-\d\d-\d\d[T ][\d:.]+Z?", "<>", s) for s in said]

    now, build = record(tmp_path / "now")
    steps = [e.event.payload for e in now.entries(type="transform")]
    assert steps and all("changes_root" in s for s in steps if "changes" in s)
    indexed = answers(now, build)

    def earlier(self: lineage.Changes, directory: Path) -> dict[str, Digest | None]:
        if self.table.num_rows == 0:
            return {"changes": None}
        sink = pa.BufferOutputStream()
        pq.write_table(self.table, sink)
        data = sink.getvalue().to_pybytes()
        return {"changes": blobs.put(directory, data, ".changes.parquet")}

    monkeypatch.setattr(lineage.Changes, "saved", earlier)
    before, old_build = record(tmp_path / "before")
    old_steps = [e.event.payload for e in before.entries(type="transform")]
    assert not any("changes_root" in s for s in old_steps)
    assert any("changes" in s for s in old_steps)
    got = answers(before, old_build)
    for a, b in zip(got, indexed, strict=True):
        assert a == b, "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))


def test_an_altered_part_of_a_changes_file_is_said_not_read_as_an_answer(tmp_path: Path) -> None:
    """The part of a changes file that holds a record, altered, is refused: the step's fate
    is unknown and the answer says why, rather than reading the altered rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlprov.digest import Digest

    ledger = Ledger.init(tmp_path)
    with ledger.pipeline("opt-out-intake") as p:
        optout_list(p, OPT_OUT_NEW, "2026-05-22")
    build = ledger.build("support-classifier-v8", dataset=v8_pipeline(ledger), gates=())
    assert "opt-out-removal-v3 (step 1): removed it" in to_text(why(ledger, build, key="1"))
    [step] = [
        e.event.payload
        for e in ledger.entries(type="transform")
        if e.event.payload["name"] == "opt-out-removal-v3"
    ]
    path = ledger.blobs_dir / f"{Digest(step['changes']).hex}.changes.parquet"
    file = pq.ParquetFile(path)
    rows = file.read()  # the removal now says it was a change
    rows = rows.set_column(0, "change", pa.array(["changed"] * rows.num_rows, pa.string()))
    pq.write_table(rows.replace_schema_metadata(file.schema_arrow.metadata), path)
    text = to_text(why(ledger, build, key="1"))
    assert (
        "opt-out-removal-v3 (step 1): its changes file is missing: what it did is unknown" in text
    )
    assert "part 1 of the changes file" in text and "does not match the digest" in text
    assert "changed it" not in text
def test_the_key_and_subject_links_of_an_answer_are_proven(
    incident: Incident, tmp_path: Path
) -> None:
    """Ticket 6 (C6) is in v7's dataset: the answers by key and by subject each carry a
    pair proof, for the dataset and for the source, that check-proof accepts."""
    by_key = why(incident.ledger, incident.v7, key="6")
    by_subject = why(incident.ledger, incident.v7, subject="C6")
    for answer, what in ((by_key, "carries key 6"), (by_subject, "names subject")):
        assert answer.present
        where = {label for label in (link.about.split(" in ")[1] for link in answer.links)}
        assert where == {"support-chat-export@2026-05-22", label_of(answer.dataset)}
        lines = [x for x in to_text(answer).splitlines() if x.strip().startswith("proven:")]
        assert len(lines) == 2 and all(what in x for x in lines)
        for link in answer.links:
            link.proof.verify(bytes.fromhex(link.event.event.payload["pairs_root"][7:]))
    answer_file = tmp_path / "why.json"
    answer_file.write_text(json.dumps(to_json(by_key)))
    home = incident.ledger.location.home.parent  # type: ignore[union-attr]
    checked = json.loads(ok(mlprov("check-proof", answer_file, "--json", cwd=home)))
    pairs = [p for p in checked["proofs"] if p["kind"] == "key-pair"]
    assert len(pairs) == 2 and {p["key"] for p in pairs} == {"6"}
    # an answer whose link is moved to another record does not check
    data = to_json(by_key)
    moved = data["links"][0]["proof"]["digest"]  # another record of the same shard
    data["links"][0]["proof"]["digest"] = moved[:-2] + ("01" if moved.endswith("00") else "00")
    answer_file.write_text(json.dumps(data))
    assert_error(mlprov("check-proof", answer_file, cwd=home), 10, "is not the pair")


def label_of(entry: Entry) -> str:
    from mlprov.ledger.names import label

    return label(entry)


def test_a_dataset_without_a_pairs_root_claims_no_link(tmp_path: Path) -> None:
    """A dataset event recorded before pairs roots gives the answer it gave then: no link
    claimed proven, and no `links` in its JSON; the same set with its pairs root does."""
    ledger = Ledger.init(tmp_path)
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(50)]
    records = RecordSet.build(digests, keys=[f"t-{i}" for i in range(50)])
    records.save(ledger.blobs_dir)
    facts = {"record_count": 50, "record_root": Digest.from_raw(records.root)}
    old = ledger.record("dataset", {"name": "old", "version": "v1", **facts})
    new = ledger.record(
        "dataset",
        {
            "name": "new",
            "version": "v1",
            **facts,
            "pairs_root": Digest.from_raw(records.pairs.root),
        },
    )
    before, after = why(ledger, old, key="t-7"), why(ledger, new, key="t-7")
    assert before.present and after.present
    assert before.links == () and "links" not in to_json(before)
    assert "proven:" not in to_text(before)
    [link] = after.links
    assert link.proof.digest == digests[7].hex() and link.proof.key == "t-7"
    assert "proven: record" in to_text(after) and "carries key t-7" in to_text(after)
