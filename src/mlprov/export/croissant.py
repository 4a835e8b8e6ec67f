"""A dataset's Croissant 1.1 `metadata.json`, with the RAI and provenance properties.

Croissant (MLCommons) describes a dataset for the tools that load it: its files, each
with a SHA-256 (`FileObject`), the fields of its records (`RecordSet`), its licence, and
the Responsible-AI properties (`rai:`) that the 1.1 "Responsible AI and Governance"
section draws on, with W3C PROV terms for provenance. mlprov fills them from the ledger,
through the read model (`mlprov.answers.view`) and the manifest (ADR 0016):

- `distribution`: the data files given (`data`), each checked to hold exactly the
  dataset's records (the record digests of its record set) before it is described; and
  each source file the ledger knows by a recorded URI and byte digest. A `contentUrl` is
  relative to the folder the metadata is written to, or the URI the source recorded:
  never a local absolute path. A source's FileObject carries its facts as properties
  (`license` and `mlprov:`, `SOURCE_PROPERTIES`), which is what an import reads back;
- `recordSet`: one set of records, whose fields are the data file's columns;
- `license`: the licences the sources recorded;
- `rai:dataCollection` (each source's acquisition, purpose, period and rights basis, as a
  sentence for people: nothing reads it back),
  `rai:dataCollectionType`, `rai:dataPreprocessingProtocol` (each step in order, with
  its version and parameters), `rai:dataCollectionMissingData` (what each exclusion
  removed, with its report's digest), `rai:personalSensitiveInformation`,
  `rai:dataUseCases` (the reviewer status and the builds trained on it) and
  `rai:dataLimitations` (the reviewers' limits, the unresolved risks and any quarantine);
- `prov:wasDerivedFrom` (the sources) and `prov:wasGeneratedBy` (the steps), by the same
  `urn:mlprov:event:` identifiers as the PROV export.

The document is validated with `mlcroissant` (extra `mlprov[croissant]`) before it is
returned: an export that its own library refuses is never written.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from mlprov.answers.view import LedgerView, SourceStanding, view
from mlprov.digest import Digest, canonical_json, digest_file
from mlprov.errors import InputError, NotFoundError
from mlprov.export.extras import require
from mlprov.export.prov import NAMESPACES
from mlprov.governance.manifest import Manifest, builds_on, from_ledger
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.records.fingerprint import fingerprint
from mlprov.records.readers import read_batches

__all__ = ["CONFORMS_TO", "CONTEXT", "SOURCE_PROPERTIES", "dumps", "metadata", "validate"]

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
#: The context of Croissant 1.1 (schema.org over https, which mlcroissant requires).
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "mlprov": NAMESPACES["mlprov"],
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "equivalentProperty": "cr:equivalentProperty",
}
_FORMATS = {
    ".parquet": "application/x-parquet",
    ".jsonl": "application/jsonlines",
    ".ndjson": "application/jsonlines",
    ".csv": "text/csv",
    ".json": "application/json",
}
_DATA_SUFFIXES = (".parquet", ".jsonl", ".ndjson")
#: Croissant's recommended rai:dataCollectionType values for a source's `acquisition`.
_COLLECTION_TYPE = {
    "crawled": "Web Scraping",
    "user": "User-generated content data",
    "public": "Secondary Data analysis",
    "synthetic": "Others",
    "licensed": "Others",
    "purchased": "Others",
    "other": "Others",
}
_RECORDS = "records"
_SEMVER = re.compile(r"\d+\.\d+\.\d+")


def _event_iri(digest: Digest | str) -> str:
    return NAMESPACES["event"] + Digest(str(digest)).hex


def _data_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "sc:Boolean"
    if pa.types.is_integer(kind):
        return "sc:Integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "sc:Float"
    if pa.types.is_timestamp(kind):
        return "sc:DateTime"
    if pa.types.is_date(kind):
        return "sc:Date"
    return "sc:Text"


def _schema(path: Path) -> pa.Schema:
    if path.suffix.lower() == ".parquet":
        try:
            schema: pa.Schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"cannot read {path} as Parquet: {exc}", "give the data file"
            ) from None
        return schema
    first = next(iter(read_batches(path, batch_size=1024)), None)
    if first is None:
        raise InputError(f"{path} holds no records", "give the dataset's data file")
    return first.schema


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        raise InputError(
            f"{path} is not in {base}, the folder the metadata is written to",
            "put the data file in that folder (or below it): Croissant names it by a "
            "relative URL, never a local absolute path",
        ) from None


def _data_files(
    ledger: LedgerCore, dataset: Entry, data: Sequence[Path], base: Path
) -> list[tuple[Path, str, str, pa.Schema]]:
    """Each data file, its relative URL, its SHA-256 hex and its schema, once its records
    are found to be exactly the dataset's."""
    name = dataset.event.name
    if not data:
        raise InputError(
            f"no data file for the records of dataset {name}",
            "give the file of its records (Parquet or JSON Lines) with --data FILE",
        )
    try:
        recorded = set(ledger.record_set(dataset))
    except NotFoundError:
        raise NotFoundError(
            f"the record set of dataset {name} ({dataset.digest}) is not kept here",
            "export from the folder whose .mlprov/ recorded it",
        ) from None
    found: set[bytes] = set()
    files = []
    for path in data:
        if path.suffix.lower() not in _DATA_SUFFIXES:
            raise InputError(
                f"{path}: a data file must be Parquet or JSON Lines",
                "write the records as .parquet or .jsonl (a CSV holds only text)",
            )
        if not path.is_file():
            raise NotFoundError(f"no data file at {path}", "check the path")
        url = _relative(path, base)
        members = set(fingerprint(path).records)
        stray = members - recorded
        if stray:
            raise InputError(
                f"{path} holds {len(stray)} records that are not in dataset {name}",
                "give the file of this dataset's records, as its pipeline wrote them",
            )
        found |= members
        files.append((path, url, digest_file(path).hex, _schema(path)))
    if found != recorded:
        raise InputError(
            f"the data files lack {len(recorded - found)} of the {len(recorded)} records "
            f"of dataset {name}",
            "give every file of the dataset's records",
        )
    return files


def _file_object(ident: str, url: str, sha256: str, description: str) -> dict[str, Any]:
    suffix = Path(url.split("?")[0]).suffix.lower()
    return {
        "@type": "cr:FileObject",
        "@id": ident,
        "name": ident,
        "description": description,
        "contentUrl": url,
        "encodingFormat": _FORMATS.get(suffix, "application/octet-stream"),
        "sha256": sha256,
    }


def _record_set(files: list[tuple[Path, str, str, pa.Schema]]) -> dict[str, Any]:
    first = files[0]
    fields = []
    for column in first[3]:
        fields.append(
            {
                "@type": "cr:Field",
                "@id": f"{_RECORDS}/{quote(column.name, safe='')}",
                "name": column.name,
                "dataType": _data_type(column.type),
                "source": {"fileObject": {"@id": first[1]}, "extract": {"column": column.name}},
            }
        )
    return {
        "@type": "cr:RecordSet",
        "@id": _RECORDS,
        "name": _RECORDS,
        "description": "the dataset's records, as its data file holds them",
        "field": fields,
    }


#: A source event's facts, each written as its own property of the source's FileObject
#: (`license` is schema.org's; the others mlprov's, ADR 0016), so that a reader takes
#: them as data and never from the sentence in `rai:dataCollection`.
SOURCE_PROPERTIES = {
    "rights_basis": "mlprov:rightsBasis",
    "owner": "mlprov:owner",
    "personal_data": "mlprov:personalData",
    "acquisition": "mlprov:acquisition",
    "purpose": "mlprov:purpose",
    "description": "mlprov:sourceDescription",
    "modality": "mlprov:modality",
    "languages": "mlprov:languages",
    "copyright": "mlprov:copyright",
    "aggregate_consumer_info": "mlprov:aggregateConsumerInfo",
}


def _source_properties(s: SourceStanding, entry: Entry) -> dict[str, Any]:
    """The structured facts of a recorded source, for its FileObject: its licence, the
    facts of its source event (a collection period as its two ends), whether it is an
    opt-out list, its review status now and its event."""
    p = entry.event.payload
    found: dict[str, Any] = {"license": p["license"]} if p.get("license") else {}
    for field, prop in SOURCE_PROPERTIES.items():
        if p.get(field) is not None:
            found[prop] = list(p[field]) if field == "languages" else p[field]
    if p.get("collected"):
        found["mlprov:collectedFrom"], found["mlprov:collectedUntil"] = p["collected"]
    found["mlprov:optOut"] = s.opt_out
    if s.now is not None:
        found["mlprov:reviewStatus"] = s.now.state
    found["mlprov:event"] = str(entry.digest)
    return found


def _collection(v: LedgerView) -> tuple[str, list[str]]:
    parts, kinds = [], []
    for s in v.sources:
        p = s.entry.event.payload if s.entry is not None else {}
        bits = [f"{s.ref}" + (" (an opt-out list)" if s.opt_out else "")]
        if p.get("acquisition"):
            bits.append(f"acquisition {p['acquisition']}")
            kinds.append(_COLLECTION_TYPE[p["acquisition"]])
        if p.get("collected"):
            bits.append(f"collected {p['collected'][0]} to {p['collected'][1]}")
        for key in ("purpose", "description", "owner"):
            if p.get(key):
                bits.append(f"{key} {p[key]}")
        bits.append(f"rights basis {s.rights_basis or 'not recorded'}")
        if s.entry is None:
            bits.append("not recorded in this ledger")
        parts.append(", ".join(bits))
    return "Sources: " + "; ".join(parts) + ".", list(dict.fromkeys(kinds))


def _steps(manifest: Manifest) -> tuple[list[str], list[str]]:
    steps, missing = [], []
    for i, t in enumerate(manifest.transforms, 1):
        text = f"{i}: {t.name}"
        if t.version:
            text += f" (version {t.version})"
        text += f", {t.kind}"
        if t.params:
            text += f", parameters {canonical_json(t.params).decode()}"
        if t.counts:
            text += ", " + ", ".join(f"{k} {n}" for k, n in sorted(t.counts.items()))
        steps.append(text)
    for r in manifest.exclusion_reports:
        count = "some" if r.removed is None else r.removed
        text = f"{r.step or 'a removal step'} removed {count} records"
        if r.digest:
            text += f" (exclusion report {r.digest}: keys and digests, never contents)"
        missing.append(text)
    return steps, missing


def _personal(v: LedgerView) -> list[str]:
    found = []
    for s in v.sources:
        flag = s.entry.event.payload.get("personal_data") if s.entry is not None else None
        if flag is True:
            found.append(
                f"{s.ref} holds personal data; the ledger keeps its subjects only as keyed hashes"
            )
        elif flag is False:
            found.append(f"{s.ref} is recorded as holding no personal data")
        else:
            found.append(f"{s.ref}: whether it holds personal data is not recorded")
    return found


def _uses(ledger: LedgerCore, v: LedgerView) -> tuple[list[str], list[str]]:
    a = v.approval_now
    by = ", ".join(a.reviewers) or "no one"
    uses = [f"Training, with reviewer status {a.status} ({a.where_from()}; reviewed by {by})"]
    for b in builds_on(ledger, v.dataset):
        uses.append(f"Training of the model {b.event.name} (build event {b.digest})")
    limits = [f"Limit: {x}" for x in a.limits] + [f"Unresolved risk: {x}" for x in a.risks]
    for s in v.sources:
        if s.now is not None and s.now.state in ("quarantined", "rejected"):
            limits.append(f"{s.ref} is {s.now.state}")
    return uses, limits


def metadata(
    ledger: LedgerCore, ref: Entry | Digest | str, data: Sequence[Path], base: Path
) -> dict[str, Any]:
    """The Croissant 1.1 metadata of a recorded dataset (NAME, NAME@VERSION or a digest):
    `data` are the files of its records (checked against its record set), `base` the folder
    the metadata is written to (their URLs are relative to it). Validated with mlcroissant."""
    require("mlcroissant", "croissant")  # before any work: it judges what is written
    dataset = ledger.find(ref, ("dataset",)).entry
    p = dataset.event.payload
    name = dataset.event.name or str(dataset.digest)
    if not p.get("record_root"):
        raise InputError(
            f"dataset {name} ({dataset.digest}) has no record set",
            "Croissant describes records: record the dataset with a pipeline, or a manifest "
            "naming its record_root",
        )
    files = _data_files(ledger, dataset, data, base)
    v = view(ledger, dataset)
    manifest = from_ledger(ledger, dataset)
    collected, kinds = _collection(v)
    steps, missing = _steps(manifest)
    uses, limits = _uses(ledger, v)
    distribution = [
        _file_object(url, url, sha, f"records of {name}, checked against its record set")
        for _, url, sha, _ in files
    ]
    for s in v.sources:
        sp = s.entry.event.payload if s.entry is not None else {}
        if s.entry is not None and sp.get("uri") and sp.get("byte_digest"):
            ident = f"source/{quote(s.ref, safe='@')}"
            described = f"source {s.ref} as recorded (event {s.entry.digest})"
            distribution.append(
                _file_object(ident, sp["uri"], Digest(sp["byte_digest"]).hex, described)
                | _source_properties(s, s.entry)
            )
    licences = list(
        dict.fromkeys(
            str(s.entry.event.payload["license"])
            for s in v.sources
            if s.entry is not None and s.entry.event.payload.get("license")
        )
    )
    when = dataset.event.recorded_at[:19] + "Z"
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": (
            f"Training set {name}"
            + (f" {p['version']}" if p.get("version") else "")
            + f" as recorded by mlprov: {p.get('record_count', 'an unrecorded number of')} records "
            f"from {len(v.sources)} sources through {len(manifest.transforms)} steps."
        ),
        "url": _event_iri(dataset.digest),
        "license": licences or ["not recorded: no source of this dataset records a licence"],
        "creator": {"@type": "sc:Person", "name": dataset.event.actor},
        "datePublished": when,
        "dateCreated": when,
        "citeAs": f"{name}, mlprov dataset event {dataset.digest}",
        "rai:dataCollection": collected,
        "rai:dataPreprocessingProtocol": steps,
        "rai:personalSensitiveInformation": _personal(v),
        "rai:dataUseCases": uses,
        "prov:wasDerivedFrom": [
            {"@id": _event_iri(s.entry.digest)} for s in v.sources if s.entry is not None
        ],
        "prov:wasGeneratedBy": [
            {"@id": _event_iri(t.event), "@type": "prov:Activity", "prov:label": text}
            for t, text in zip(manifest.transforms, steps, strict=True)
            if t.event is not None
        ],
        "mlprov:recordRoot": str(p["record_root"]),
        "mlprov:event": str(dataset.digest),
        "distribution": distribution,
        "recordSet": [_record_set(files)],
    }
    if _SEMVER.fullmatch(str(p.get("version", ""))):  # else it is in the description
        doc["version"] = str(p["version"])
    if kinds:
        doc["rai:dataCollectionType"] = kinds
    if missing:
        doc["rai:dataCollectionMissingData"] = " ".join(f"{m}." for m in missing)
    if limits:
        doc["rai:dataLimitations"] = limits
    validate(doc)
    return doc


def validate(doc: dict[str, Any]) -> None:
    """Raise InputError with mlcroissant's own words unless it accepts `doc` with no error."""
    mlc = require("mlcroissant", "croissant")
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        mlc.Dataset(jsonld=copy.deepcopy(doc))  # it writes into what it reads
    except mlc.ValidationError as exc:
        raise InputError(
            f"mlcroissant refuses the metadata: {str(exc).strip().splitlines()[-1][:300]}",
            "report it: mlprov should never write Croissant that its library refuses",
        ) from None


def dumps(doc: dict[str, Any]) -> bytes:
    """The metadata as `metadata.json` holds it: indented UTF-8 JSON."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
