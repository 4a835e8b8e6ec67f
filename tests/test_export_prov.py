"""`mlprov export prov`: a build, a dataset or the ledger as W3C PROV, judged by the `prov`
package's own reader (PROV-JSON and PROV-O), the PROV-JSON schema it ships and rdflib,
and checked back against the ledger with `--check`."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import rdflib
from prov.model import (
    PROV_TYPE,
    ProvActivity,
    ProvAgent,
    ProvDerivation,
    ProvDocument,
    ProvEntity,
    ProvGeneration,
    ProvInvalidation,
    ProvRecord,
    ProvUsage,
)
from tests.test_cli import assert_error, mlprov, ok

from mlprov.answers.view import build_facts
from mlprov.errors import GateBlocked, InputError, IntegrityError, NotFoundError
from mlprov.export.prov import document, serialize
from mlprov.export.provcheck import check
from mlprov.facade import Ledger
from mlprov.governance.review import record_review
from mlprov.ledger import Entry

READERS = {
    "json": {"format": "json"},
    "turtle": {"format": "rdf", "rdf_format": "turtle"},
    "jsonld": {"format": "rdf", "rdf_format": "json-ld"},
}
MLPROV = "urn:mlprov:terms#"
TICKETS = pa.table(
    {
        "ticket_id": [1, 2, 3, 4],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "ann@example.com"],
        "text": ["My parcel", "I cannot log in", "Please refund", "Where is it?"],
    }
)
OPT_OUTS = pa.table({"email": ["ann@example.com"]})


@dataclass
class Small:
    ledger: Ledger
    dataset: Entry
    build: Entry
    data: pa.Table


def lower(t: pa.Table) -> pa.Table:
    return t.set_column(2, "text", pc.utf8_lower(t["text"]))


def small_pipeline(ledger: Ledger) -> tuple[Entry, pa.Table]:
    with ledger.pipeline("ticket-training") as p:
        tickets = p.source(
            TICKETS,
            "tickets@2026-06-01",
            key="ticket_id",
            subject="email",
            rights_basis="customer-terms-2025 §4",
            license="LicenseRef-customer-terms",
            personal_data=True,
        )
        optouts = p.source(OPT_OUTS, "opt-outs@2026-06-01", subject="email", rights_basis="log")
        kept = p.exclude("opt-out-removal-v1", tickets, using=optouts, on="email")
        out = p.transform("lowercase-v1", lower, kept, params={"locale": "en"})
        return p.dataset(out, "ticket-training", version="1.0.0"), out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Small:
    ledger = Ledger.init(tmp_path_factory.mktemp("small"))
    dataset, data = small_pipeline(ledger)
    for ref in ("tickets@2026-06-01", "opt-outs@2026-06-01"):
        record_review(ledger, ref, "accepted_with_limits", "carol@example.com", limits=["en"])
    build = ledger.build("ticket-router-v1", dataset=dataset, code_version="v1")
    return Small(ledger, dataset, build, data)


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Small:
    """Unicode everywhere a name allows it, a failed step and a build forced past a gate."""
    ledger = Ledger.init(tmp_path_factory.mktemp("odd"))
    rows = pa.table(
        {
            "clé": ["a", "b", "c"],
            "personne": ["zoë@exemple.fr", "åsa@exemple.se", "李@例子.中国"],
            "texte": ["Ça ne marche pas", "Håll käften", "你好"],
        }
    )

    def boom(t: pa.Table) -> pa.Table:
        raise ValueError("étape cassée")

    def source(p: object) -> pa.Table:
        return p.source(  # type: ignore[attr-defined,no-any-return]
            rows,
            "tickets@été-2026",
            key="clé",
            subject="personne",
            rights_basis="conditions générales §4 — «clients»",
        )

    with pytest.raises(ValueError), ledger.pipeline("clients/fr:v+1") as p:
        p.transform("casse-v1", boom, source(p))
    with ledger.pipeline("clients/fr:v+1", actor="José Núñez") as p:
        src = source(p)
        out = p.exclude("retrait-v1", src, where=[k == "b" for k in rows["clé"].to_pylist()])
        out = p.transform("minuscules-v1", lambda t: t, out, params={"langue": "français"})
        dataset = p.dataset(out, "donnees/fr:v+1", version="v1-été")
    with pytest.raises(GateBlocked):  # the source was never reviewed
        ledger.build("modele-v1", dataset=dataset)
    build = ledger.build(
        "modele-v1", dataset=dataset, force=True, config={"taux": 0.1}, actor="José Núñez"
    )
    record_review(ledger, dataset, "accepted_with_limits", "Zoë Ångström", limits=["«fr» seul"])
    return Small(ledger, dataset, build, rows.filter(pc.not_equal(rows["clé"], "b")))


def records(doc: ProvDocument, kind: type[ProvRecord]) -> list[ProvRecord]:
    return list(doc.get_records(kind))


def values(record: ProvRecord, attr: str) -> list[object]:
    return [v for k, v in record.attributes if str(k.uri) == MLPROV + attr]


def event_digests(doc: ProvDocument) -> Counter[str]:
    return Counter(str(v) for r in doc.get_records() for v in values(r, "event"))


# -- round trips through prov's own readers -----------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "turtle", "jsonld"])
@pytest.mark.parametrize("which", ["build", "dataset", "ledger"])
def test_every_format_reads_back_with_prov_as_the_same_document(
    small: Small, fmt: str, which: str
) -> None:
    ref = {"build": small.build.event.name, "dataset": str(small.dataset.digest)}.get(which)
    doc = document(small.ledger, ref)
    text = serialize(doc, fmt).decode()
    back = ProvDocument.deserialize(content=text, **READERS[fmt])  # type: ignore[arg-type]
    assert back == doc
    assert len(list(back.get_records())) > 20


def test_prov_json_is_valid_by_the_schema_prov_ships(small: Small, odd: Small) -> None:
    schema_file = resources.files("prov") / "tests" / "schemas" / "prov-json.schema.json"
    schema = json.loads(schema_file.read_text())
    for led in (small.ledger, odd.ledger):
        jsonschema.validate(json.loads(serialize(document(led), "json")), schema)


def test_turtle_parses_with_rdflib_into_prov_o_triples(small: Small) -> None:
    graph = rdflib.Graph().parse(data=serialize(document(small.ledger), "turtle"), format="turtle")
    PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
    removed = rdflib.URIRef(f"urn:mlprov:removed:sha256:{step(small.ledger, 'opt-out').digest.hex}")
    assert (removed, rdflib.RDF.type, PROV.Entity) in graph
    invalidation = graph.value(removed, PROV.qualifiedInvalidation)
    assert graph.value(invalidation, PROV.activity) == rdflib.URIRef(
        f"urn:mlprov:event:sha256:{step(small.ledger, 'opt-out').digest.hex}"
    )


def step(ledger: Ledger, prefix: str) -> Entry:
    return next(e for e in ledger.entries(type="transform") if e.event.name.startswith(prefix))


# -- what the document says matches the ledger -------------------------------------------------


def test_every_event_of_the_ledger_is_named_once_and_relations_match_it(small: Small) -> None:
    led = small.ledger
    doc = ProvDocument.deserialize(content=serialize(document(led), "json").decode())
    entries = list(led.entries())
    assert event_digests(doc) == Counter(str(e.digest) for e in entries)
    kinds = Counter(e.event.type.value for e in entries)
    transforms = [e for e in entries if e.event.type.value == "transform"]
    used = sum(len(t.event.payload["used"]) for t in transforms)
    # steps' inputs, the two reviews, the build's dataset
    assert len(records(doc, ProvUsage)) == used + kinds["review"] + 1
    removing = [t for t in transforms if t.event.payload["counts"]["removed"]]
    assert len(removing) == 1
    [invalidation] = records(doc, ProvInvalidation)
    assert str(invalidation.formal_attributes[1][1]).endswith(removing[0].digest.hex)
    # each step's output and report, the dataset by its run, the model is not (no artifact)
    generated = len(transforms) + len(removing) + 1
    assert len(records(doc, ProvGeneration)) == generated
    # entities: sources, dataset, outputs, one report and one removed set, the export
    assert len(records(doc, ProvEntity)) == kinds["source"] + 1 + len(transforms) + 2 + 1
    # activities: steps, one run (two events), reviews, the build
    assert len(records(doc, ProvActivity)) == len(transforms) + 1 + kinds["review"] + 1
    agents = {str(a.identifier.uri) for a in records(doc, ProvAgent)}
    assert agents == {
        "urn:mlprov:pipeline:ticket-training",
        "urn:mlprov:reviewer:carol%40example.com",
        f"urn:mlprov:actor:{led.entries().__next__().event.actor.replace('@', '%40')}",
    }
    derived = {
        (str(d.formal_attributes[0][1]), str(d.formal_attributes[1][1]))
        for d in records(doc, ProvDerivation)
    }
    for source in led.entries(type="source"):
        assert (f"event:{small.dataset.digest.hex}", f"event:{source.digest.hex}") in derived


def test_the_build_document_carries_the_review_status_at_build_time(small: Small) -> None:
    doc = document(small.ledger, small.build.event.name)
    [build] = [
        r for r in records(doc, ProvActivity) if values(r, "event") == [str(small.build.digest)]
    ]
    assert values(build, "reviewerStatusAtBuild") == ["accepted_with_limits"]
    assert values(build, "reviewLimitsAtBuild") == ['["en"]']
    types = {str(t) for t in build.get_attribute(PROV_TYPE)}
    assert types == {"mlprov:Build"}


def test_unicode_a_failed_step_and_a_forced_build_round_trip_and_check(
    odd: Small, tmp_path: Path
) -> None:
    led = odd.ledger
    for fmt in ("json", "turtle", "jsonld"):
        data = serialize(document(led), fmt)
        back = ProvDocument.deserialize(content=data.decode(), **READERS[fmt])  # type: ignore[arg-type]
        assert back == document(led)
        assert check(led, data).events == led.size
    doc = document(led)
    failed = [
        r
        for r in records(doc, ProvActivity)
        if values(r, "status") == ["failed"] and values(r, "error")
    ]
    assert [values(r, "error") for r in failed] == [["ValueError: étape cassée"]]
    # a failed step generates nothing
    gen = {str(g.formal_attributes[1][1]) for g in records(doc, ProvGeneration)}
    assert f"event:{failed[0].identifier.localpart}" not in gen
    [build] = [r for r in records(doc, ProvActivity) if values(r, "forced") == [True]]
    assert values(build, "gate") == ["blocked"]
    agents = {str(a.identifier.uri) for a in records(doc, ProvAgent)}
    assert "urn:mlprov:pipeline:clients%2Ffr%3Av%2B1" in agents
    assert "urn:mlprov:actor:Jos%C3%A9%20N%C3%BA%C3%B1ez" in agents
    assert "urn:mlprov:reviewer:Zo%C3%AB%20%C3%85ngstr%C3%B6m" in agents
    text = serialize(document(led, "donnees/fr:v+1@v1-été"), "turtle").decode()
    assert "conditions générales §4 — «clients»" in text


# -- --check ------------------------------------------------------------------------------------


def test_check_passes_on_what_was_written_and_fails_when_a_relation_or_digest_changes(
    small: Small, tmp_path: Path
) -> None:
    home = small.ledger.location.home.parent  # type: ignore[union-attr]
    out = tmp_path / "build.prov.json"
    ok(mlprov("export", "prov", "ticket-router-v1", "--out", out, cwd=home))
    said = ok(mlprov("export", "prov", "--check", out, "ticket-router-v1", cwd=home))
    assert "agrees with the ledger" in said
    text = out.read_text(encoding="utf-8")
    doc = json.loads(text)
    # a relation pointed at another recorded event
    first, second = (f"event:{e.digest.hex}" for e in small.ledger.entries(type="source"))
    key = next(k for k, u in doc["used"].items() if u["prov:entity"] == first)
    doc["used"][key]["prov:entity"] = second  # the step used the other source, it says
    bad = tmp_path / "moved.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    assert_error(mlprov("export", "prov", "--check", bad, cwd=home), 10, "contradicts the ledger")
    # a digest changed by one digit
    digest = small.dataset.digest.hex
    flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    bad.write_text(text.replace(digest, flipped), encoding="utf-8")
    assert_error(mlprov("export", "prov", "--check", bad, cwd=home), 10, "contradicts the ledger")
    # an attribute of an event changed
    bad.write_text(text.replace("customer-terms-2025", "customer-terms-2099"), encoding="utf-8")
    assert_error(mlprov("export", "prov", "--check", bad, cwd=home), 10, "contradicts the ledger")


@pytest.mark.parametrize("fmt", ["turtle", "jsonld"])
def test_check_reads_prov_o_and_finds_a_removed_relation(small: Small, fmt: str) -> None:
    data = serialize(document(small.ledger, small.dataset.digest), fmt)
    assert check(small.ledger, data).target == str(small.dataset.digest)
    graph = rdflib.Dataset()
    graph.parse(data=data.decode(), format="turtle" if fmt == "turtle" else "json-ld")
    PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
    triple = next(iter(graph.triples((None, PROV.wasDerivedFrom, None))))
    graph.remove(triple)
    cut = graph.serialize(format="turtle" if fmt == "turtle" else "json-ld").encode()
    with pytest.raises(IntegrityError, match="leaves out"):
        check(small.ledger, cut, format=fmt)  # type: ignore[arg-type]


def test_check_against_a_grown_ledger_still_passes(tmp_path: Path) -> None:
    ledger = Ledger.init(tmp_path)
    dataset, _ = small_pipeline(ledger)
    data = serialize(document(ledger, dataset), "json")
    record_review(ledger, "tickets@2026-06-01", "accepted", "carol@example.com")
    assert check(ledger, data).tree_size < ledger.size


def test_a_ledger_with_server_tokens_exports_and_checks(tmp_path: Path) -> None:
    """Every event type has its PROV element: a token granted and revoked (an `access`
    event) is an activity of the whole ledger's document like any other."""
    ledger = Ledger.init(tmp_path)
    small_pipeline(ledger)
    ledger.close()
    ok(mlprov("tokens", "create", "ci-bot", "--role", "recorder", cwd=tmp_path))
    ok(mlprov("tokens", "revoke", "ci-bot", cwd=tmp_path))
    with Ledger.open(cwd=tmp_path) as again:
        doc = document(again)
        assert event_digests(doc) == Counter(str(e.digest) for e in again.entries())
        data = serialize(doc, "json")
        assert check(again, data).tree_size == again.size
    assert b"AccessChange" in data and b"mlp_" not in data


def test_malformed_or_foreign_documents_are_bad_input(small: Small, tmp_path: Path) -> None:
    home = small.ledger.location.home.parent  # type: ignore[union-attr]
    junk = tmp_path / "junk.ttl"
    junk.write_text("this is not turtle {", encoding="utf-8")
    assert_error(mlprov("export", "prov", "--check", junk, cwd=home), 3, "not a readable PROV")
    plain = ProvDocument()
    plain.add_namespace("ex", "https://example.org/")
    plain.entity("ex:thing")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(plain.serialize(format="json"), encoding="utf-8")
    assert_error(mlprov("export", "prov", "--check", foreign, cwd=home), 3, "mlprov did not write")
    with pytest.raises(InputError, match="written from the ledger"):
        other = Ledger.init(tmp_path / "other")
        check(other, serialize(document(small.ledger), "json"))


# -- bad input on the command line ------------------------------------------------------------


def test_bad_targets_formats_and_outputs_write_nothing(small: Small, tmp_path: Path) -> None:
    home = small.ledger.location.home.parent  # type: ignore[union-attr]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_error(mlprov("export", "prov", "no-such-build", cwd=home), 3, "no-such-build")
    assert_error(mlprov("export", "prov", "tickets@2026-06-01", cwd=home), 3, "not a build")
    assert_error(mlprov("export", "prov", "--format", "xml", cwd=home), 3, "unknown format")
    assert_error(mlprov("export", "prov", "--out", tmp_path, cwd=home), 3, "is a directory")
    missing = tmp_path / "no" / "such" / "x.json"
    assert_error(mlprov("export", "prov", "--out", missing, cwd=home), 3, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(NotFoundError):
        document(small.ledger, "no-such-build")


def test_the_document_names_no_local_path(small: Small) -> None:
    text = serialize(document(small.ledger), "turtle").decode()
    home = str(small.ledger.location.home.parent)  # type: ignore[union-attr]
    assert home not in text and not re.search(r"/tmp/|/home/|/root/", text)


# -- the demo's ledger --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    from mlprov.demo import run

    folder = tmp_path_factory.mktemp("demo") / "incident"
    run(folder, lambda section: None)
    return Ledger.open(cwd=folder)


def test_the_demo_builds_export_read_back_and_check(demo: Ledger) -> None:
    for build in demo.entries(type="build"):
        doc = document(demo, build)
        for fmt in ("json", "turtle"):
            data = serialize(doc, fmt)
            back = ProvDocument.deserialize(content=data.decode(), **READERS[fmt])  # type: ignore[arg-type]
            assert back == doc
            assert check(demo, data, str(build.digest)).target == str(build.digest)
        assert str(build.digest) in event_digests(doc)
        # the status PROV gives is the one explain, triage and the card read
        [activity] = [r for r in records(doc, ProvActivity) if values(r, "event") == [build.digest]]
        facts = build_facts(demo, build)
        assert values(activity, "reviewerStatusAtBuild") == [facts.reviewer_status]
        [risks] = values(activity, "reviewRisksAtBuild")
        assert json.loads(str(risks)) == list(facts.risks)
    whole = document(demo)
    assert event_digests(whole) == Counter(str(e.digest) for e in demo.entries())


def test_a_missing_library_is_named_with_its_extra(small: Small, tmp_path: Path) -> None:
    home = small.ledger.location.home.parent  # type: ignore[union-attr]
    shadow = tmp_path / "shadow"
    for package in ("prov", "mlcroissant"):
        (shadow / package).mkdir(parents=True)
        (shadow / package / "__init__.py").write_text("raise ImportError('absent')\n")
    path = os.pathsep.join(p for p in (str(shadow), os.environ.get("PYTHONPATH")) if p)
    _, hint = assert_error(mlprov("export", "prov", cwd=home, PYTHONPATH=path), 6, "'prov'")
    assert "mlprov[prov]" in hint
    args = ("export", "croissant", "ticket-training", "--data", "x.parquet")
    _, hint = assert_error(mlprov(*args, cwd=home, PYTHONPATH=path), 6, "'mlcroissant'")
    assert "mlprov[croissant]" in hint


def test_the_demo_dataset_in_croissant_loads_through_mlcroissant(demo: Ledger) -> None:
    """The demo's v8 training set, rebuilt from its source file by the demo's own steps for
    the keys its record set holds (the export checks the records are the dataset's)."""
    import mlcroissant as mlc
    import pyarrow.parquet as pq

    from mlprov.demo import steps
    from mlprov.export.croissant import dumps, metadata

    home = demo.location.home.parent  # type: ignore[union-attr]
    dataset = demo.find("support-classifier-training@v8", ("dataset",)).entry
    keys = set(demo.record_set(dataset).table.column("key").to_pylist())
    source = pq.read_table(home / "data" / "support-chat-export-2026-05-22.parquet")
    kept = source.filter(pa.array([str(k) in keys for k in source["ticket_id"].to_pylist()]))
    folder = home / "croissant"
    folder.mkdir()
    pq.write_table(steps.redact(steps.normalize(kept)), folder / "train.parquet")
    doc = metadata(demo, dataset, [folder / "train.parquet"], folder)
    (folder / "metadata.json").write_bytes(dumps(doc))
    ds = mlc.Dataset(jsonld=str(folder / "metadata.json"))
    assert not ds.metadata.ctx.issues.errors
    assert len(list(ds.records("records"))) == dataset.event.payload["record_count"]
    urls = {f.content_url for f in ds.metadata.distribution}
    assert "data/support-chat-export-2026-05-22.parquet" in urls


def test_the_export_and_its_check_on_each_store(ledger: Ledger) -> None:
    """The same export, read back and checked, on SQLite and on PostgreSQL."""
    dataset, _ = small_pipeline(ledger)
    built = ledger.build("ticket-router-v1", dataset=dataset, gates=())
    for ref in (built, None):
        data = serialize(document(ledger, ref), "turtle")
        back = ProvDocument.deserialize(content=data.decode(), **READERS["turtle"])  # type: ignore[arg-type]
        assert back == document(ledger, ref)
        assert check(ledger, data).events == (ledger.size if ref is None else 8)


@pytest.mark.parametrize("fmt", ["json", "turtle", "jsonld"])
def test_a_dataset_from_a_hand_written_manifest_exports_and_checks(
    tmp_path: Path, fmt: str
) -> None:
    manifest = Path(__file__).parent / "manifests" / "incident-after.yaml"
    (tmp_path / manifest.name).write_bytes(manifest.read_bytes())
    ok(mlprov("init", cwd=tmp_path))
    ok(mlprov("manifest", "record", manifest.name, cwd=tmp_path))
    ok(mlprov("build", "m1", "--dataset", "support-classifier-training", "--force", cwd=tmp_path))
    out = tmp_path / f"m1.{fmt}"
    ok(mlprov("export", "prov", "m1", "--format", fmt, "--out", out, cwd=tmp_path))
    said = ok(mlprov("export", "prov", "--check", out, "m1", cwd=tmp_path))
    assert f"agrees with the ledger ({fmt}, export of sha256:" in said
    # the same document read twice: prefixes a reader makes up do not matter
    with Ledger.open(cwd=tmp_path) as led:
        assert check(led, out.read_bytes()).events == check(led, out.read_bytes()).events == 2


def test_quarantine_release_model_evaluation_and_prediction(tmp_path: Path) -> None:
    from prov.model import ProvCommunication

    from mlprov.governance.review import record_quarantine, record_release

    led = Ledger.init(tmp_path)
    with led.pipeline("p") as p:
        kept = p.transform("keep-v1", lambda t: t, p.source(TICKETS, "s@1", key="ticket_id"))
        data = p.dataset(kept, "d")
    (tmp_path / "model.bin").write_bytes(b"weights")
    build = led.build("m", dataset=data, artifact=tmp_path / "model.bin", force=True)
    quarantine = record_quarantine(led, "s@1", trigger="complaint", exit_condition="a review")
    review = record_review(led, "s@1", "accepted", "carol@example.com", note="checked")
    release = record_release(led, "s@1", evidence=[review])
    led.evaluation(build, "holdout", {"accuracy": 0.9})
    with led.predictions(build) as log:
        log.log({"x": 1}, {"y": 2})
    for fmt in ("json", "turtle", "jsonld"):
        assert check(led, serialize(document(led), fmt)).events == led.size
    doc = document(led)
    model = f"model:{build.digest.hex}"
    [artifact] = [r for r in records(doc, ProvEntity) if str(r.identifier) == model]
    assert values(artifact, "artifactDigest") == [build.event.payload["artifact_digest"]]
    informed = {
        (str(c.formal_attributes[0][1]), str(c.formal_attributes[1][1]))
        for c in records(doc, ProvCommunication)
    }
    assert (f"event:{release.digest.hex}", f"event:{quarantine.digest.hex}") in informed
    users = Counter(
        str(u.formal_attributes[0][1])
        for u in records(doc, ProvUsage)
        if str(u.formal_attributes[1][1]) == model
    )
    assert sorted(users.values()) == [1, 1]  # the evaluation and the prediction
    assert len(users) == 2
