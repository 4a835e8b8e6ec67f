"""The dataset manifest: the receipt of a training set, as a typed, versioned document.

A :class:`Manifest` names the dataset, its source records (`name@version`, each with its
rights basis, licence, owner, personal-data flag, byte digest, record-set root, review
status and quarantine), its transforms in order (name, version, parameters, kind, counts,
what each used, its changes file), the exclusion reports, the reviewer status with its
limits and unresolved risks, the SHA-256 of the bytes, the record-set root and count, and
the model builds recorded on it. It is read and written as YAML or JSON (`load`, `loads`,
`dump`), and its JSON Schema (`json_schema`) is published as `docs/spec/manifest.schema.json`.

- :func:`from_ledger` generates the manifest of any recorded dataset from the ledger.
- :func:`mlprov.governance.manifest_files.record` records a hand-written manifest (a team whose
  pipeline is not yet instrumented) as a `dataset` event, after checking every byte
  digest it can against the files it names.

**The hand-written form.** Besides the full form that `dump` writes, `load` accepts the
short form of a manifest typed by hand (the shape of the incident example) and normalises
it into the typed model:

- `source: NAME` is one source record; `source_records` items may be plain `name@version`
  text;
- a top-level `rights_basis` text applies to every source record that has none of its own;
- `transforms` items may be text, `name-vN [key=value ...]`: the version is taken from the
  `-vN` suffix, `key=value` words become parameters (numbers and booleans parsed as YAML),
  and a name that speaks of opt-outs, exclusion, removal or erasure is an `exclusion` step.
  Steps given as mappings are taken as they are;
- `exclusion_report: FILE` is one exclusion report (a file relative to the manifest) that
  covers every removal step; `model_build: NAME` is one build;
- `sha256` may be written with or without `sha256:`, and abbreviated (`4d81c0ee...`):
  an abbreviated digest is kept as given, and lint reports that it cannot be checked.

Timestamps stay text (`created_at` is not turned into a date), so what is recorded is what
was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as _ValidationError

from mlprov.digest import Digest
from mlprov.errors import InputError, NotFoundError
from mlprov.governance.approval import approval_of
from mlprov.governance.manifest_form import V2_FIELDS, Loader, normalise
from mlprov.governance.review import State, status_of, target_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, validation_message
from mlprov.ledger.payloads import trained_dataset

__all__ = [
    "MAX_MANIFEST",
    "SCHEMA_VERSION",
    "WRITTEN",
    "BuildRef",
    "ExclusionReport",
    "Input",
    "Manifest",
    "SourceRecord",
    "Step",
    "builds_on",
    "dump",
    "from_ledger",
    "is_opt_out",
    "json_schema",
    "load",
    "loads",
    "step_of",
]

#: The newest manifest schema: 2 adds the columns of the files a manifest names (`key`,
#: `subject`) and what an exclusion step used and removed (`using`, `on`, `removed_keys`).
SCHEMA_VERSION: Final = 2
#: Said of every answer about a dataset recorded from a hand-written manifest.
WRITTEN: Final = (
    "recorded from a hand-written manifest (mlprov manifest record), not captured: its "
    "sources and data are fingerprinted from the files it names; its steps are as it "
    "describes them"
)
#: A manifest is a small document; a larger file is the wrong file.
MAX_MANIFEST = 4 * 1024 * 1024
_OPT_OUT = re.compile(r"opt[-_]?out", re.I)
_HEX = re.compile(r"(?:sha256:)?([0-9a-f]{6,64})(\.\.\.|…)?", re.I)


def _loose_digest(text: str) -> str:
    found = _HEX.fullmatch(text.strip())
    if found is None:
        raise ValueError("a digest is sha256:<64 hex digits>, or its first hex digits and '...'")
    hexpart = found.group(1).lower()
    return f"sha256:{hexpart}" if len(hexpart) == 64 and not found.group(2) else f"{hexpart}..."


#: A byte digest as a person writes it: full (`sha256:<64 hex>`) or abbreviated (`4d81c0ee...`).
LooseDigest = Annotated[str, StringConstraints(max_length=80), AfterValidator(_loose_digest)]
Text = Annotated[str, StringConstraints(max_length=4000)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=400)]
ReviewStatus = Literal[
    "never_reviewed", "accepted", "accepted_with_limits", "quarantined", "rejected"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRecord(_Model):
    """A source the dataset was built from, named `name@version`."""

    ref: Label
    rights_basis: Text | None = None
    license: Text | None = None
    owner: Text | None = None
    personal_data: bool | None = None
    byte_digest: LooseDigest | None = None
    file: Text | None = Field(default=None, description="the source file, relative to the manifest")
    key: Label | None = Field(
        default=None, description="schema 2: the file's column of record keys"
    )
    subject: Label | None = Field(
        default=None, description="schema 2: the file's column naming whom a record is about"
    )
    record_root: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    review_status: ReviewStatus | None = None
    quarantined: bool | None = None
    opt_out: bool | None = Field(default=None, description="the source is an opt-out list")
    event: Digest | None = None

    @property
    def name(self) -> str:
        return self.ref.partition("@")[0]

    @property
    def version(self) -> str | None:
        return self.ref.partition("@")[2] or None


class Input(_Model):
    """Something a step used: `input` (the data it changed) or `using` (a list it consulted)."""

    role: Label
    ref: Label


class Step(_Model):
    """One transform or exclusion step, in the order the steps ran."""

    name: Label
    version: Label | None = None
    kind: Literal["transform", "exclusion"] = "transform"
    params: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    used: tuple[Input, ...] = ()
    changes: Digest | None = Field(default=None, description="the step's changes file")
    event: Digest | None = None
    on: Label | None = Field(default=None, description="schema 2: the column an exclusion matched")
    removed_keys: Text | None = Field(
        default=None,
        description="schema 2: a file of the keys the step removed, one a line, relative to "
        "the manifest",
    )


class ExclusionReport(_Model):
    """What a removal step removed: its changes file (by digest) or a named report file."""

    step: Label | None = Field(default=None, description="the step; none: every removal step")
    file: Text | None = None
    digest: LooseDigest | None = None
    removed: int | None = Field(default=None, ge=0)


class BuildRef(_Model):
    """A model build recorded on the dataset, and the manifest it names."""

    name: Label | None = None
    event: Digest | None = None
    manifest: Digest | None = None


class Manifest(_Model):
    """The receipt of a training set (see the module doc)."""

    schema_version: Literal[1, 2] = 1
    dataset: Label
    version: Label | None = None
    created_at: Label
    source_records: tuple[SourceRecord, ...] = ()
    transforms: tuple[Step, ...] = ()
    exclusion_reports: tuple[ExclusionReport, ...] = ()
    reviewer_status: ReviewStatus | None = None
    limits: tuple[Text, ...] = ()
    unresolved_risks: tuple[Text, ...] = ()
    sha256: LooseDigest | None = Field(default=None, description="the SHA-256 of the bytes")
    data_file: Text | None = Field(default=None, description="the file sha256 is of")
    key: Label | None = Field(default=None, description="schema 2: data_file's key column")
    subject: Label | None = Field(default=None, description="schema 2: data_file's subject column")
    record_root: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    builds: tuple[BuildRef, ...] = ()
    event: Digest | None = Field(default=None, description="the dataset event, when recorded")

    @model_validator(mode="after")
    def _fields_of_its_schema(self) -> Manifest:
        if self.schema_version >= 2:
            return self
        parts: list[tuple[str, BaseModel]] = [("", self)]
        parts += [("source_records.", x) for x in self.source_records]
        parts += [("transforms.", x) for x in self.transforms]
        used = [
            where + f
            for where, part in parts
            for f in V2_FIELDS[type(part).__name__]
            if getattr(part, f) is not None
        ]
        if used:
            raise ValueError(
                f"{', '.join(dict.fromkeys(used))} need schema_version 2 (this gives 1)"
            )
        return self


# -- reading and writing ---------------------------------------------------------------------


def loads(text: str | bytes, format: Literal["yaml", "json"] = "yaml", where: str = "") -> Manifest:
    """A manifest from its YAML or JSON text, in the full or the hand-written form."""
    label = where or "the manifest"
    if len(text) > MAX_MANIFEST:
        raise InputError(f"{label} is larger than {MAX_MANIFEST} bytes", "give the right file")
    try:
        data = json.loads(text) if format == "json" else yaml.load(text, Loader=Loader)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{label} is not valid JSON: {exc}", "check its syntax") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{label} is not valid YAML{at}", "check its syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{label} is not a mapping of fields", "start with `dataset: NAME`")
    try:
        return Manifest.model_validate(normalise(data))
    except _ValidationError as exc:
        raise InputError(
            f"{label} is malformed: {validation_message(exc, 'manifest')}",
            "see docs/spec/manifest.schema.json and README (Manifests and lint)",
        ) from None


def read(path: Path) -> tuple[bytes, Manifest]:
    """A manifest file's bytes and its manifest (JSON by a `.json` suffix, else YAML)."""
    try:
        if path.stat().st_size > MAX_MANIFEST:
            raise InputError(f"{path} is larger than {MAX_MANIFEST} bytes", "give the right file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no manifest file at {path}", "check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a manifest file", "give a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    fmt: Literal["yaml", "json"] = "json" if path.suffix.lower() == ".json" else "yaml"
    return raw, loads(raw, fmt, str(path))


def load(path: Path | str) -> Manifest:
    """The manifest in a YAML or JSON file (see :func:`loads`)."""
    return read(Path(path))[1]


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v not in (None, [], {}, ())}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Safe YAML that double-quotes text a plain scalar would not keep (NEL, U+2028, ...)."""


def _text(dumper: Any, value: str) -> Any:
    style = '"' if any(not c.isprintable() and c not in "\n" for c in value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(manifest: Manifest, format: Literal["yaml", "json"] = "yaml") -> str:
    """The manifest's text in the full form; empty fields are left out."""
    data = _prune(manifest.model_dump(mode="json"))
    if format == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if format != "yaml":
        raise InputError(f"unknown manifest format {format!r}", "use yaml or json")
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the full form, as published in docs/spec/."""
    schema = Manifest.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


# -- generating from the ledger --------------------------------------------------------------


def is_opt_out(name: str) -> bool:
    """Whether a source name says it is an opt-out list (`opt-out`, `optout`, `opt_out`)."""
    return bool(_OPT_OUT.search(name))


def _source(ledger: LedgerCore, entry: Entry, used_as_list: set[str]) -> SourceRecord:
    p = entry.event.payload
    state = status_of(ledger, entry).state
    return SourceRecord(
        ref=entry.event.name or p["name"],
        rights_basis=p.get("rights_basis"),
        license=p.get("license"),
        owner=p.get("owner"),
        personal_data=p.get("personal_data"),
        byte_digest=p.get("byte_digest"),
        record_root=p.get("record_root"),
        record_count=p.get("record_count"),
        review_status=state.value,
        quarantined=state is State.QUARANTINED,
        opt_out=entry.digest in used_as_list or is_opt_out(p["name"]),
        event=entry.digest,
    )


def _sources(
    ledger: LedgerCore, named: Iterable[str], parts: list[Entry], lists: set[str]
) -> list[SourceRecord]:
    """The dataset's sources in the order it names them, then any other ancestor source; a
    named source the ledger does not hold is a bare record (MPG001 reports it)."""
    by_label = {e.event.name: e for e in parts}
    found: list[SourceRecord] = []
    for label in named:
        entry = by_label.pop(label, None)
        if entry is None:
            entry = next(ledger.entries(type="source", name=label, newest_first=True), None)
        found.append(_source(ledger, entry, lists) if entry else SourceRecord(ref=label))
    return found + [_source(ledger, e, lists) for e in by_label.values()]


def step_of(entry: Entry) -> Step:
    """A recorded step (a `transform` event) as a manifest lists it."""
    p = entry.event.payload
    return Step(
        name=p["name"],
        version=p.get("version"),
        kind=p.get("kind", "transform"),
        params=dict(p.get("params", {})),
        counts=dict(p.get("counts", {})),
        used=tuple(
            Input(role=u["role"], ref=u.get("name") or u["event"]) for u in p.get("used", ())
        ),
        changes=p.get("changes"),
        event=entry.digest,
    )


def _review(
    ledger: LedgerCore, entry: Entry, parts: list[Entry]
) -> tuple[str, list[str], list[str]]:
    """The dataset's approval (mlprov.governance.approval): its status, limits and risks."""
    found = approval_of(ledger, entry, parts)
    return found.status, list(found.limits), list(found.risks)


def builds_on(ledger: LedgerCore, dataset: Entry) -> list[Entry]:
    """The builds recorded on a dataset, oldest first."""
    found = ledger.entries(type="build")
    return [b for b in found if trained_dataset(b.event.payload) == dataset.digest]


def _builds(ledger: LedgerCore, entry: Entry) -> list[BuildRef]:
    found = []
    for b in builds_on(ledger, entry):
        p = b.event.payload
        found.append(BuildRef(name=p["name"], event=b.digest, manifest=p.get("manifest")))
    return found


def from_ledger(ledger: LedgerCore, ref: Entry | Digest | str) -> Manifest:
    """The manifest of a recorded dataset (its name, digest or Entry).

    A pipeline's dataset: its ancestor sources and succeeded steps in log order, the
    changes file of every step that removed records as its exclusion report, each source's
    review state, and the builds recorded on it. The reviewer status is the dataset's own
    review when it has one, else the weakest of its sources' (a source never reviewed makes
    it `never_reviewed`), with their limits and risks. A dataset recorded from a
    hand-written manifest gives that manifest back, with the ledger's review states where
    the ledger has any, and the builds recorded since.
    """
    entry = target_of(ledger, ref)
    if entry.event.type.value != "dataset":
        raise InputError(
            f"{entry.event.name} is a {entry.event.type.value}, not a dataset",
            "a manifest describes a dataset: give a dataset name or digest",
        )
    payload = entry.event.payload
    ancestors = ledger.trace(entry.digest)
    parts = [e for e in ancestors if e.event.type.value == "source"]
    steps = [
        e
        for e in ancestors
        if e.event.type.value == "transform" and e.event.payload.get("status") != "failed"
    ]
    builds = _builds(ledger, entry)
    status, limits, risks = _review(ledger, entry, parts)
    if "manifest" in payload:
        return _recorded(ledger, entry, status, builds)
    lists = {
        u["event"]
        for s in steps
        if s.event.payload.get("kind") == "exclusion"
        for u in s.event.payload.get("used", ())
        if u.get("role") == "using"
    }
    transforms = [step_of(s) for s in steps]
    reports = [
        ExclusionReport(step=t.name, digest=t.changes, removed=t.counts.get("removed"))
        for t in transforms
        if t.kind == "exclusion" or t.counts.get("removed", 0) > 0
    ]
    return Manifest(
        dataset=payload["name"],
        version=payload.get("version"),
        created_at=entry.event.recorded_at,
        source_records=tuple(_sources(ledger, payload.get("sources", ()), parts, lists)),
        transforms=tuple(transforms),
        exclusion_reports=tuple(reports),
        reviewer_status=status,  # type: ignore[arg-type]
        limits=tuple(limits),
        unresolved_risks=tuple(risks),
        sha256=payload.get("byte_digest"),
        record_root=payload.get("record_root"),
        record_count=payload.get("record_count"),
        builds=tuple(builds),
        event=entry.digest,
    )


def _recorded(ledger: LedgerCore, entry: Entry, status: str, builds: list[BuildRef]) -> Manifest:
    try:
        written = Manifest.model_validate(entry.event.payload["manifest"])
    except _ValidationError as exc:  # recorded by hand past `mlprov manifest record`
        raise InputError(
            f"dataset {entry.event.name} ({entry.digest.short}) holds a malformed manifest: "
            f"{validation_message(exc, 'manifest')}",
            "record datasets from manifests with `mlprov manifest record`, which checks them",
        ) from None
    sources = []
    for s in written.source_records:
        try:
            found = target_of(ledger, s.ref) if s.version else None
        except (InputError, NotFoundError):
            found = None
        if found is not None and found.event.type.value == "source":
            state = status_of(ledger, found).state
            p = found.event.payload
            s = s.model_copy(
                update={
                    "review_status": state.value,
                    "quarantined": state is State.QUARANTINED,
                    "event": found.digest,
                    # the facts the manifest leaves out, as the source's event records them
                    **{
                        fact: p.get(fact)
                        for fact in ("rights_basis", "license", "owner", "personal_data")
                        if getattr(s, fact) is None and p.get(fact) is not None
                    },
                }
            )
        sources.append(s)
    known = {(b.name, b.event) for b in written.builds}
    named = {b.name for b in written.builds}
    extra = [b for b in builds if (b.name, b.event) not in known and b.name not in named]
    steps, reports = _written_steps(ledger, entry, written)
    update: dict[str, Any] = {
        "source_records": tuple(sources),
        "transforms": steps,
        "exclusion_reports": reports,
        "version": entry.event.payload.get("version") or written.version,
        "builds": (*written.builds, *extra),
        "event": entry.digest,
    }
    if status != State.NEVER_REVIEWED.value:  # a claim the ledger contradicts gives way
        update["reviewer_status"] = status
    return written.model_copy(update=update)


def _written_steps(
    ledger: LedgerCore, entry: Entry, written: Manifest
) -> tuple[tuple[Step, ...], tuple[ExclusionReport, ...]]:
    """The manifest's steps with the events `mlprov manifest record` recorded for them
    (what each used, its counts and changes file, where files showed them), and an
    exclusion report for each step whose changes file shows what it removed."""
    recorded = {
        e.event.payload["name"]: e
        for e in ledger.trace(entry.digest)
        if e.event.type.value == "transform" and e.event.payload.get("recorded_from") == "manifest"
    }
    steps, reports = [], list(written.exclusion_reports)
    for t in written.transforms:
        found = recorded.get(t.name)
        if found is not None:
            step = step_of(found)
            t = t.model_copy(
                update={
                    "used": step.used,
                    "counts": step.counts,
                    "changes": step.changes,
                    "event": step.event,
                }
            )
            if t.changes is not None and not any(r.step == t.name for r in reports):
                reports.append(
                    ExclusionReport(step=t.name, digest=t.changes, removed=t.counts.get("removed"))
                )
        steps.append(t)
    return tuple(steps), tuple(reports)
