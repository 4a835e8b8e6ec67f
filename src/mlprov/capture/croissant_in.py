"""A Croissant 1.0 or 1.1 file (`metadata.json`) read as a hand-written manifest, for
:mod:`mlprov.capture.handwritten` to record like any other (ADR 0016).

A file is Croissant by its content: a JSON object with `@context` whose `conformsTo` is a
Croissant version (`http://mlcommons.org/croissant/…`) or whose `@type` is `sc:Dataset`.
It is validated with `mlcroissant` (extra `mlprov[croissant]`) before it is read; then:

- each `cr:FileObject` is a local file named by a `contentUrl` relative to the file's
  folder (a URL, an absolute path or a `..` escape is refused), whose bytes must have the
  `sha256` it gives (a mismatch is refused before anything is recorded; a file with no
  `sha256`, an `md5` only, is refused: mlprov records SHA-256). A `cr:FileSet` or a file
  inside an archive (`containedIn`) is refused: list its files as FileObjects;
- a FileObject that mlprov's own export wrote for a source (`@id` `source/NAME@VERSION`) is
  that source, and the others are the dataset's data file (one: several are refused; a
  source the export names without a file is not among them). In any other file every
  FileObject is a source: `NAME@VERSION` from its `name` (a name without `@` takes the
  dataset's `version`, else the date of its `datePublished`); the only one, if it is
  alone, is also the data file. A name outside mlprov's form is made one (`My file.csv`
  is `My-file.csv`);
- each source's facts are properties of its FileObject: its licence `license`; its rights
  basis `mlprov:rightsBasis` (else none, and lint says so); its owner `mlprov:owner`,
  else its `creator` or `publisher`; its collection period `mlprov:collectedFrom` and
  `mlprov:collectedUntil`; `mlprov:personalData` and `mlprov:optOut` (true or false);
  and `mlprov:acquisition`, `mlprov:purpose`, `mlprov:sourceDescription`,
  `mlprov:modality`, `mlprov:languages`, `mlprov:copyright` and
  `mlprov:aggregateConsumerInfo`, checked as a source event checks them (`mlprov:` is
  `urn:mlprov:terms#`; the full IRI is read too). That is all an mlprov export is read
  for: its sentences (`rai:dataCollection`, `rai:personalSensitiveInformation`) are for
  people, and its dataset-wide licences are not any one source's. In any other file a
  fact a FileObject does not give is the dataset's: the licence `license`, the owner
  `publisher` (else `creator`), the period `rai:dataCollectionTimeframe` (or
  mlcroissant's `rai:dataCollectionTimeFrame`), else `temporalCoverage`, and the
  personal-data flag from `rai:personalSensitiveInformation` (an entry naming the file
  says whether it holds personal data; entries naming none say it of every file: none
  at all when each says there is none);
- a `cr:RecordSet` whose `key` names a field gives the key column of the file that field
  reads (`mlprov:subject` likewise its subject column); `key` and `subject` given to
  `record` name the columns of every other file that holds them;
- each `rai:dataPreprocessingProtocol` entry is a step, in the order of their leading
  numbers: as mlprov's export wrote it (name, version, kind, parameters), else the text
  itself (`description`), named by its first words; a step that speaks of removal is an
  exclusion, whose removed records are unknown (never invented).
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import ValidationError

from mlprov.digest import digest_file
from mlprov.errors import InputError, MissingExtraError, NotFoundError
from mlprov.governance.manifest import MAX_MANIFEST, Manifest, SourceRecord, Step
from mlprov.governance.manifest_files import resolve_inside
from mlprov.ledger.events import validation_message
from mlprov.ledger.payloads import SourcePayload
from mlprov.records.readers import read_batches
from mlprov.validation import name_problem, period_problem

__all__ = ["Croissant", "is_croissant", "read"]

_CROISSANT = "http://mlcommons.org/croissant/"
_DATASET_TYPES = (
    "sc:Dataset",
    "schema:Dataset",
    "Dataset",
    "https://schema.org/Dataset",
    "http://schema.org/Dataset",
)
_EXCLUSION = re.compile(r"opt[-_ ]?out|exclu|remov|erasure|dedup|filter", re.I)
_INDEX = re.compile(r"^\s*(\d+)\s*[:.)]\s*")
#: A step as mlprov's export writes it (mlprov.export.croissant._steps).
_EXPORTED_STEP = re.compile(
    r"(?P<name>\S+)(?: \(version (?P<version>[^)]*)\))?, (?P<kind>transform|exclusion)"
    r"(?:, parameters (?P<params>\{.*\}))?(?:, [a-z_]+ \d+)*"
)
#: The facts of a source event that the manifest form has no field for, each read from
#: its own property of the source's FileObject (as mlprov's export writes them).
_FACTS = {
    "acquisition": "acquisition",
    "purpose": "purpose",
    "description": "sourceDescription",
    "modality": "modality",
    "languages": "languages",
    "copyright": "copyright",
    "aggregate_consumer_info": "aggregateConsumerInfo",
}
_MLPROV = "urn:mlprov:terms#"


@dataclass(frozen=True)
class Croissant:
    """A Croissant file as a manifest: the manifest, and for each source the facts of its
    source event that the manifest form has no field for (`collected`, `acquisition`,
    `purpose`, `description`); `raw` is the file's bytes."""

    raw: bytes
    manifest: Manifest
    facts: dict[str, dict[str, Any]]


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_croissant(data: dict[str, Any]) -> bool:
    """Whether a JSON object is a Croissant dataset (see the module doc)."""
    if "@context" not in data:
        return False
    conforms = data.get("conformsTo") or data.get("dct:conformsTo")
    types = data.get("@type")
    types = types if isinstance(types, list) else [types]
    return (isinstance(conforms, str) and conforms.startswith(_CROISSANT)) or any(
        t in _DATASET_TYPES for t in types
    )


def _validate(doc: dict[str, Any], where: str) -> None:
    try:
        mlc = importlib.import_module("mlcroissant")
    except ImportError:
        raise MissingExtraError("mlcroissant", "croissant") from None
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        mlc.Dataset(jsonld=copy.deepcopy(doc))  # it writes into what it reads
    except mlc.ValidationError as exc:
        lines = [x.strip(" -") for x in str(exc).strip().splitlines()[1:] if x.strip()]
        first = lines[0] if lines else str(exc).strip()
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise InputError(
            f"{where} is not valid Croissant: mlcroissant says: {first[:300]}{more}",
            "fix the metadata; `mlcroissant validate --jsonld FILE` lists every problem",
        ) from None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """A property's text: a string, or the `name` (else `@id`, `url`) of an object."""
    for v in _list(value):
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, dict):
            for k in ("name", "@id", "url"):
                if isinstance(v.get(k), str) and v[k].strip():
                    return str(v[k]).strip()
    return None


def _name(text: str) -> str:
    """`text` as an mlprov name (letters, digits and `. _ / : + -`)."""
    if name_problem(text) is None:
        return text
    made = re.sub(r"[^A-Za-z0-9._/:+-]+", "-", text).strip("-._/:+")[:120]
    return made or "unnamed"


def _period(value: Any, what: str) -> tuple[str, str] | None:
    """A collection period from a list of two times or an ISO 8601 interval `A/B`."""
    items = [str(v) for v in _list(value) if v]
    if len(items) == 1 and "/" in items[0]:
        items = items[0].split("/", 1)
    if not items:
        return None
    if len(items) != 2:
        raise InputError(
            f"{what} is not a period: {', '.join(items)}",
            "give its start and end, e.g. 2024-01-01/2026-05-31",
        )
    start, end = (x.strip()[:10] for x in items)
    end = "ongoing" if end in ("..", "") else end
    if period_problem(start, end):
        raise InputError(f"{what} {start}/{end} is not a period of dates", "e.g. 2024-01/2026-05")
    return start, end


def _personal(entries: list[str], names: tuple[str, ...], every: list[str]) -> bool | None:
    """Whether a file (known by `names`) holds personal data, by the entries of
    `rai:personalSensitiveInformation` (`every` names every file)."""
    mine = [e for e in entries if any(e.startswith(n) for n in names)]
    said = mine or [e for e in entries if not any(e.startswith(n) for n in every)]
    if not said:
        return None
    if all(re.search(r"not recorded", e) for e in said):
        return None
    none = re.compile(r"\bno (personal|sensitive)|\bnone\b", re.I)
    return not all(none.search(e) for e in said)


def _str(value: Any) -> str | None:
    """A property's text exactly as written (a string), else as :func:`_text` reads it."""
    if isinstance(value, str):
        return value if value.strip() else None
    return _text(value)


def _flag(obj: dict[str, Any], local: str, where: str) -> bool | None:
    """An mlprov property that is true or false, if given."""
    found = _prop(obj, local)
    if found is None or isinstance(found, bool):
        return found
    raise InputError(
        f"{where}: mlprov:{local} is {json.dumps(found)}, not true or false",
        f"write mlprov:{local} as true or false",
    )


def _prop(obj: dict[str, Any], local: str) -> Any:
    """An mlprov property of a node (`mlprov:NAME`, or its full IRI), else None."""
    found = obj.get(f"mlprov:{local}")
    return obj.get(_MLPROV + local) if found is None else found


def _own_facts(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """The source event facts a FileObject gives as mlprov properties, checked as a source
    event checks them."""
    facts = {field: _prop(obj, local) for field, local in _FACTS.items()}
    facts = {k: v for k, v in facts.items() if v is not None}
    if "languages" in facts:
        facts["languages"] = tuple(_list(facts["languages"]))
    start, end = _prop(obj, "collectedFrom"), _prop(obj, "collectedUntil")
    if start is not None or end is not None:
        facts["collected"] = (start, end)
    try:
        checked = SourcePayload(name="x", version="1", **facts)
    except ValidationError as exc:
        raise InputError(
            f"{where} has mlprov: properties a source cannot have: "
            f"{validation_message(exc, 'source')}",
            "fix them: docs/adr/0016-export-prov-croissant.md lists what each holds",
        ) from None
    return {k: getattr(checked, k) for k in facts}


def _columns(path: Path) -> set[str] | None:
    try:
        first = next(iter(read_batches(path, batch_size=1)), None)
    except InputError:
        return None  # a CSV (it needs a schema) or a file the fingerprint will refuse
    return set(first.schema.names) if first is not None else None


def _marked(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    """For each FileObject `@id`, the columns its record sets mark as `key` and `subject`."""
    marked: dict[str, dict[str, str]] = {}
    for rs in _list(doc.get("recordSet")):
        if not isinstance(rs, dict):
            continue
        fields = {f.get("@id"): f for f in _list(rs.get("field")) if isinstance(f, dict)}
        for role, prop in (("key", "key"), ("subject", "mlprov:subject")):
            for ref in _list(rs.get(prop)):
                field = fields.get(ref.get("@id") if isinstance(ref, dict) else ref)
                source = field.get("source", {}) if field else {}
                file = (source.get("fileObject") or {}).get("@id")
                column = (source.get("extract") or {}).get("column")
                if file and column:
                    marked.setdefault(file, {})[role] = column
    return marked


@dataclass
class _File:
    ident: str
    name: str
    url: str
    sha256: str
    obj: dict[str, Any]


def _files(doc: dict[str, Any], base: Path, where: str) -> list[_File]:
    files = []
    for obj in _list(doc.get("distribution")):
        if not isinstance(obj, dict):
            continue
        ident = str(obj.get("@id") or obj.get("name") or "")
        if obj.get("@type") in ("cr:FileSet", "FileSet") or obj.get("containedIn"):
            raise InputError(
                f"{where}: {ident} is a file set or lies inside an archive",
                "list each file as a cr:FileObject with its own contentUrl and sha256",
            )
        url = str(obj.get("contentUrl") or "")
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
            raise InputError(
                f"{where}: file {ident} is at a URL ({url}), not in the file's folder",
                "download it beside the metadata and give its contentUrl relative to it",
            )
        path = resolve_inside(base, unquote(url), f"file {ident} contentUrl")
        sha = str(obj.get("sha256") or "").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise InputError(
                f"{where}: file {ident} gives no SHA-256"
                + (f" ({sha!r} is not 64 hex digits)" if sha else ""),
                "add its sha256 (sha256sum FILE): mlprov checks every file against it",
            )
        if not path.is_file():
            raise NotFoundError(
                f"{where}: file {ident} is not at {url} beside the metadata",
                "put the dataset's files in the metadata's folder, as its contentUrl says",
            )
        actual = digest_file(path).hex
        if actual != sha:
            raise InputError(
                f"{where}: file {ident} ({url}) has SHA-256 {actual}, not the {sha} the "
                "metadata gives: nothing was recorded",
                "restore the file the metadata describes, or fix its sha256",
            )
        files.append(_File(ident, str(obj.get("name") or ident), url, sha, obj))
    if not files:
        raise InputError(f"{where} names no cr:FileObject", "describe the dataset's files")
    return files


def _params(text: str | None) -> dict[str, Any] | None:
    """A step's parameters as the export wrote them (JSON), or None if they are not."""
    try:
        found = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def _steps(doc: dict[str, Any]) -> tuple[Step, ...]:
    texts = [t for t in _list(doc.get("rai:dataPreprocessingProtocol")) if isinstance(t, str)]
    numbers = [_INDEX.match(t) for t in texts]
    if all(numbers):  # JSON-LD arrays are unordered: the numbers give the order
        order = [int(m.group(1)) for m in numbers if m]
        texts = [t for _, t in sorted(zip(order, texts, strict=True), key=lambda p: p[0])]
    steps = []
    for i, text in enumerate(texts, 1):
        body = _INDEX.sub("", text, count=1).strip()
        m = _EXPORTED_STEP.fullmatch(body)
        params = _params(m["params"]) if m else None
        if m and params is not None and name_problem(m["name"]) is None:
            kind: Literal["transform", "exclusion"] = (
                "exclusion" if m["kind"] == "exclusion" else "transform"
            )
            steps.append(Step(name=m["name"], version=m["version"], kind=kind, params=params))
            continue
        words = _name("-".join(body.split()[:6]).lower())
        steps.append(
            Step(
                name=words if words != "unnamed" else f"step-{i}",
                kind="exclusion" if _EXCLUSION.search(body) else "transform",
                params={"description": body},
            )
        )
    return tuple(steps)


def read(path: Path, *, key: str | None = None, subject: str | None = None) -> Croissant | None:
    """The Croissant file at `path` as a manifest (see the module doc), its files checked
    against their SHA-256; None if the file is not Croissant."""
    try:
        if path.stat().st_size > MAX_MANIFEST:
            return None  # not a manifest either: the manifest reader says so
        raw = path.read_bytes()
    except OSError:
        return None  # the manifest reader says what is wrong with it
    doc = _json(raw)
    if doc is None:
        return None
    if not is_croissant(doc):
        if "@context" in doc:
            raise InputError(
                f"{path} is JSON-LD but not Croissant (no Croissant conformsTo, not a sc:Dataset)",
                "give a Croissant 1.0 or 1.1 metadata.json, or a manifest (YAML or JSON)",
            )
        return None
    where = str(path)
    _validate(doc, where)
    base = path.parent
    files = _files(doc, base, where)
    exported = [f for f in files if f.ident.startswith("source/")]
    sources = exported or files
    data = [f for f in files if f not in exported] if exported else files[:1] * (len(files) == 1)
    if len(data) > 1:
        raise InputError(
            f"{where} has {len(data)} data files; mlprov records one per dataset",
            "write the dataset's records in one file",
        )
    published = str(doc.get("datePublished") or doc.get("dateCreated") or "")
    version = _text(doc.get("version")) or published[:10] or None
    refs = []
    for f in sources:
        text = unquote(f.ident.removeprefix("source/")) if f in exported else f.name
        name, at, given = text.partition("@")
        if not (at and given) and version is None:
            raise InputError(
                f"{where}: file {f.ident} has no version",
                "give the dataset a version, or name the file NAME@VERSION",
            )
        refs.append(f"{_name(name)}@{given if at and given else version}")
    exported_doc = "mlprov:event" in doc
    # In mlprov's export each source's facts are on its FileObject and nowhere else: the
    # dataset's licences, period and RAI prose are not any one source's.
    licence = None if exported_doc else _text(doc.get("license"))
    owner = None if exported_doc else _text(doc.get("publisher")) or _text(doc.get("creator"))
    period = None
    if not exported_doc:
        period = _period(
            doc.get("rai:dataCollectionTimeframe") or doc.get("rai:dataCollectionTimeFrame"),
            "rai:dataCollectionTimeframe",
        ) or _period(doc.get("temporalCoverage"), "temporalCoverage")
    personal = (
        [] if exported_doc else [str(x) for x in _list(doc.get("rai:personalSensitiveInformation"))]
    )
    marked = _marked(doc)
    every = [n for f, r in zip(sources, refs, strict=True) for n in (r, f.name, f.ident) if n]

    def columns(f: _File) -> tuple[str | None, str | None]:
        have = _columns(resolve_inside(base, unquote(f.url), "file"))
        own = marked.get(f.ident, {})

        def pick(role: str, default: str | None) -> str | None:
            if role in own:
                return own[role]
            return default if have is None or default in have else None

        return pick("key", key), pick("subject", subject)

    records, facts = [], {}
    for f, ref in zip(sources, refs, strict=True):
        what = f"{where}: file {f.ident}"
        fkey, fsubject = columns(f)
        flag = _flag(f.obj, "personalData", what)
        records.append(
            SourceRecord(
                ref=ref,
                license=_str(f.obj.get("license")) or licence,
                owner=_str(_prop(f.obj, "owner"))
                or _text(f.obj.get("creator"))
                or _text(f.obj.get("publisher"))
                or owner,
                rights_basis=_str(_prop(f.obj, "rightsBasis")),
                personal_data=flag
                if flag is not None or exported_doc
                else _personal(personal, (ref, f.name, f.ident), every),
                byte_digest=f"sha256:{f.sha256}",
                file=unquote(f.url),
                key=fkey,
                subject=fsubject,
                opt_out=_flag(f.obj, "optOut", what) or None,
            )
        )
        extra = _own_facts(f.obj, what)
        if "collected" not in extra and period is not None:
            extra["collected"] = period
        facts[ref] = extra
    dkey, dsubject = columns(data[0]) if data else (None, None)
    try:
        manifest = Manifest(
            schema_version=2,
            dataset=_name(str(doc.get("name") or path.stem)),
            version=_text(doc.get("version")),
            created_at=str(doc.get("dateCreated") or published or "not given"),
            source_records=tuple(records),
            transforms=_steps(doc),
            sha256=f"sha256:{data[0].sha256}" if data else None,
            data_file=unquote(data[0].url) if data else None,
            key=dkey,
            subject=dsubject,
        )
    except ValidationError as exc:
        raise InputError(
            f"{where} cannot be read as a manifest: {validation_message(exc, 'manifest')}",
            "check its name, version and files",
        ) from None
    return Croissant(raw, manifest, facts)
