"""Lint: the questions a reviewer asks of a manifest, as rules with ids, hints and severities.

Each :class:`Rule` has an id (`MP001`…), a name, a severity (`error`, `warning`, `note`), a
short description and a hint; rules compose with :func:`all_of`. `lint(manifest)` runs
every rule; given a ledger it also runs the rules that need one (marked *ledger*).
A manifest with an `error` finding fails (see :func:`has_errors`).

=====  ========================  ========  ==================================================
id     name                      severity  finds
=====  ========================  ========  ==================================================
MP001  rights-basis              error     a source with no rights basis, or a vague one
                                           (`internal`, `public`, `n/a`, ...); opt-out
                                           lists need none
MP002  unversioned-source        error     no source records, or one not named `name@version`
MP003  unversioned-transform     error     a step without a version (`clean-data`, `dedupe`)
MP004  vague-transform           warning   a step with a generic name (`clean-data-v1`);
                                           as a note, a step that records no parameters
MP005  missing-exclusion-report  error     a removal step, or an opt-out list among the
                                           sources, without an exclusion report
MP006  exclusion-order           error     an exclusion step recorded before the opt-out list
                                           it needs, or one that used no opt-out list (ledger)
MP007  stale-opt-out-list        error     an opt-out list older than the newest version
                                           recorded (ledger)
MP008  no-reviewer-status        error     no reviewer status, or `never_reviewed`
MP009  limits-unstated           error     `accepted_with_limits` with neither limits nor
                                           unresolved risks
MP010  byte-drift                error     a named file whose bytes differ from its digest;
                                           neither a sha256 nor a record-set root
MP011  unchecked-digest          warning   a digest that cannot be checked here: abbreviated,
                                           its file not named, or the file not here (a
                                           recorded manifest's files were checked when it
                                           was recorded)
MP012  quarantined-source        error     a quarantined or rejected source or dataset
                                           (re-read from the ledger when one is given)
MP013  build-manifest-missing    error     a build that names a manifest (or is itself) not
                                           in the ledger (ledger)
=====  ========================  ========  ==================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

from mlprov.digest import Digest, digest_file, shorten
from mlprov.errors import InputError, NotFoundError
from mlprov.governance.manifest import (
    Manifest,
    SourceRecord,
    Step,
    is_opt_out,
)
from mlprov.governance.manifest_files import digest_matches, resolve_inside
from mlprov.governance.review import State, status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import step_base, step_version

__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "RuleSet",
    "Severity",
    "all_of",
    "has_errors",
    "lint",
    "vague_rights_basis",
]

Severity = Literal["error", "warning", "note"]
_REMOVAL = re.compile(r"opt[-_]?out|exclu|remov|erasure|dedup|filter|drop", re.I)
_VAGUE_BASIS = frozenset(
    {
        "internal", "public", "internal data", "public data", "internal use", "open",
        "publicly available", "n/a", "na", "none", "unknown", "tbd", "todo", "yes", "ok",
        "various", "misc", "-", "?",
    }
)  # fmt: skip
_VAGUE_STEPS = frozenset(
    {
        "clean", "clean-data", "cleanup", "clean-up", "cleaning", "data-cleaning", "process",
        "processing", "preprocess", "preprocessing", "prepare", "prep", "transform", "fix",
        "misc", "step", "filter", "normalise-data",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One finding: the rule, how bad, what, how to fix it, and where in the manifest.

    `field` is the manifest's top-level field it is about; `value`, when set, is text of
    that field to point at (a source's ref, a step's name)."""

    rule: str
    name: str
    severity: Severity
    message: str
    hint: str
    field: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.rule} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "field": self.field,
            "value": self.value,
        }


@dataclass(frozen=True)
class _Hit:
    message: str
    field: str | None = None
    value: str | None = None
    severity: Severity | None = None  # else the rule's
    hint: str | None = None  # else the rule's


@dataclass(frozen=True)
class _Context:
    manifest: Manifest
    ledger: LedgerCore | None
    base: Path | None  # the folder a manifest file's names are relative to


Check = Callable[[_Context], Iterator[_Hit]]


@dataclass(frozen=True)
class Rule:
    """A lint rule: id, name, default severity, what it finds, how to fix it, its check."""

    id: str
    name: str
    severity: Severity
    description: str
    hint: str
    check: Check = field(repr=False, compare=False)
    needs_ledger: bool = False

    def run(
        self, manifest: Manifest, ledger: LedgerCore | None, base: Path | None
    ) -> list[Finding]:
        if self.needs_ledger and ledger is None:
            return []
        return [
            Finding(
                self.id,
                self.name,
                h.severity or self.severity,
                h.message,
                h.hint or self.hint,
                h.field,
                h.value,
            )
            for h in self.check(_Context(manifest, ledger, base))
        ]


@dataclass(frozen=True)
class RuleSet:
    """Rules run together: every finding of every rule, in rule order."""

    rules: tuple[Rule | RuleSet, ...]

    def run(
        self, manifest: Manifest, ledger: LedgerCore | None, base: Path | None
    ) -> list[Finding]:
        return [f for r in self.rules for f in r.run(manifest, ledger, base)]


def all_of(*rules: Rule | RuleSet) -> RuleSet:
    return RuleSet(tuple(rules))


# -- the checks ------------------------------------------------------------------------------


def vague_rights_basis(basis: str | None) -> bool:
    """Whether a rights basis names nothing a reviewer could check (`internal`, empty, ...)."""
    text = (basis or "").strip().lower()
    return not text or text in _VAGUE_BASIS


def _is_list(s: SourceRecord) -> bool:
    return bool(s.opt_out) or is_opt_out(s.name)


def _rights_basis(ctx: _Context) -> Iterator[_Hit]:
    for s in ctx.manifest.source_records:
        if _is_list(s):
            continue  # an opt-out list is consulted, not trained on: it needs no rights basis
        basis = (s.rights_basis or "").strip()
        if not basis:
            yield _Hit(f"source {s.ref} has no rights basis", "source_records", s.ref)
        elif vague_rights_basis(basis):
            yield _Hit(
                f"source {s.ref} has the rights basis {basis!r}, which names no policy, "
                "contract or legal basis",
                "rights_basis",
                basis,
            )


def _unversioned_source(ctx: _Context) -> Iterator[_Hit]:
    if not ctx.manifest.source_records:
        yield _Hit("the manifest names no source records", "source_records")
    for s in ctx.manifest.source_records:
        if not s.version or not s.name:
            yield _Hit(f"source {s.ref} is not a versioned source record", "source_records", s.ref)


def _versioned(step: Step) -> bool:
    return bool(step.version) or step_version(step.name) is not None


def _unversioned_transform(ctx: _Context) -> Iterator[_Hit]:
    for t in ctx.manifest.transforms:
        if not _versioned(t):
            yield _Hit(f"step {t.name} has no version", "transforms", t.name)


def _vague_transform(ctx: _Context) -> Iterator[_Hit]:
    for t in ctx.manifest.transforms:
        base = step_base(t.name).lower()
        if base in _VAGUE_STEPS:
            yield _Hit(f"step {t.name} has a name too vague to review", "transforms", t.name)
        elif _versioned(t) and not t.params:
            yield _Hit(
                f"step {t.name} records no parameters",
                "transforms",
                t.name,
                severity="note",
                hint="record what it was run with (dedupe-v2 threshold=0.84), or {} on purpose",
            )


def _removes(t: Step) -> bool:
    if t.kind == "exclusion" or t.counts.get("removed", 0) > 0:
        return True
    return "removed" not in t.counts and bool(_REMOVAL.search(t.name))


def _reported(t: Step, m: Manifest) -> bool:
    if t.changes is not None or t.counts.get("removed") == 0:
        return True
    return any(r.step in (None, t.name) for r in m.exclusion_reports)


def _missing_exclusion_report(ctx: _Context) -> Iterator[_Hit]:
    m = ctx.manifest
    for t in m.transforms:
        if _removes(t) and not _reported(t, m):
            yield _Hit(
                f"step {t.name} removes records but no exclusion report shows which",
                "transforms",
                t.name,
            )
    exclusions = [t for t in m.transforms if t.kind == "exclusion" and _reported(t, m)]
    if not exclusions and not m.exclusion_reports:
        for s in m.source_records:
            if _is_list(s):
                yield _Hit(
                    f"opt-out list {s.ref} is among the sources, but no exclusion report shows "
                    "what it removed",
                    "source_records",
                    s.ref,
                )


def _event(ledger: LedgerCore, ref: Digest | str | None) -> Entry | None:
    if ref is None:
        return None
    try:
        return ledger.get(ref)
    except (InputError, NotFoundError):
        return None


def _source_entry(ledger: LedgerCore, s: SourceRecord) -> Entry | None:
    found = _event(ledger, s.event)
    if found is None and s.version:
        found = next(ledger.entries(type="source", name=s.ref, newest_first=True), None)
    return found


def _exclusion_order(ctx: _Context) -> Iterator[_Hit]:
    assert ctx.ledger is not None
    m = ctx.manifest
    lists = {s.ref: _source_entry(ctx.ledger, s) for s in m.source_records if _is_list(s)}
    for t in m.transforms:
        used = {u.ref for u in t.used if u.role == "using"}
        if t.kind != "exclusion" or not lists or (t.used and not used and not is_opt_out(t.name)):
            continue  # a removal by mask that is not about opt-outs (a dedupe) needs no list
        if t.used and not used & set(lists):
            yield _Hit(
                f"exclusion step {t.name} used none of the opt-out lists "
                f"({', '.join(sorted(lists))})",
                "transforms",
                t.name,
            )
        step = _event(ctx.ledger, t.event)
        for ref, listing in lists.items():
            if step is not None and listing is not None and step.seq < listing.seq:
                yield _Hit(
                    f"exclusion step {t.name} was recorded (#{step.seq}) before the opt-out "
                    f"list {ref} was loaded (#{listing.seq})",
                    "transforms",
                    t.name,
                )


def _newest_versions(ledger: LedgerCore) -> dict[str, Entry]:
    newest: dict[str, Entry] = {}
    for e in ledger.entries(type="source"):
        newest[e.event.payload["name"]] = e  # log order: the last one is the newest
    return newest


def _stale_opt_out_list(ctx: _Context) -> Iterator[_Hit]:
    assert ctx.ledger is not None
    m = ctx.manifest
    refs = {s.ref for s in m.source_records if _is_list(s)}
    refs |= {
        u.ref for t in m.transforms if t.kind == "exclusion" for u in t.used if u.role == "using"
    }
    if not refs:
        return
    newest = _newest_versions(ctx.ledger)
    for ref in sorted(refs):
        name = ref.partition("@")[0]
        latest = newest.get(name)
        if latest is not None and latest.event.name != ref:
            yield _Hit(
                f"opt-out list {ref} is not the newest recorded version ({latest.event.name})",
                "source_records",
                ref,
            )


def _no_reviewer_status(ctx: _Context) -> Iterator[_Hit]:
    status = ctx.manifest.reviewer_status
    if status is None or status == State.NEVER_REVIEWED.value:
        what = "no reviewer status" if status is None else "never reviewed"
        yield _Hit(f"dataset {ctx.manifest.dataset} has {what}", "reviewer_status")


def _limits_unstated(ctx: _Context) -> Iterator[_Hit]:
    m = ctx.manifest
    if m.reviewer_status == "accepted_with_limits" and not m.limits and not m.unresolved_risks:
        yield _Hit(
            "reviewer status accepted_with_limits states neither limits nor unresolved risks",
            "reviewer_status",
        )


def _files(m: Manifest) -> Iterator[tuple[str, str | None, str | None, str]]:
    """(what, file, digest, field) for every digest the manifest gives or needs."""
    yield "the dataset's sha256", m.data_file, m.sha256, "sha256"
    for s in m.source_records:
        if s.file or s.byte_digest:
            yield f"source {s.ref}", s.file, s.byte_digest, "source_records"
    for r in m.exclusion_reports:
        if r.file or (r.digest and not r.digest.startswith("sha256:")):
            yield f"exclusion report {r.file or r.step}", r.file, r.digest, "exclusion_reports"


def _actual(ctx: _Context, file: str | None) -> Digest | None:
    if file is None or ctx.base is None:
        return None
    path = resolve_inside(ctx.base, file, "file")
    return digest_file(path) if path.is_file() else None


def _byte_drift(ctx: _Context) -> Iterator[_Hit]:
    m = ctx.manifest
    if m.sha256 is None and m.record_root is None:
        yield _Hit(
            "the dataset has neither a sha256 of its bytes nor a record-set root",
            "sha256",
            hint="give the sha256 of the dataset file (and name it in data_file)",
        )
    for what, file, given, where in _files(m):
        actual = _actual(ctx, file)
        if actual is not None and given is not None and not digest_matches(given, actual):
            yield _Hit(
                f"{what}: {file} has SHA-256 {shorten(actual.hex, 16)}, not {given} (byte drift)",
                where,
                given,
            )


def _unchecked_digest(ctx: _Context) -> Iterator[_Hit]:
    for what, file, given, where in _files(ctx.manifest):
        if given is None and file is None:
            continue
        recorded = ctx.manifest.event is not None and ctx.base is None
        if file is not None and recorded and given is not None and given.startswith("sha256:"):
            continue  # `manifest record` checked the file and recorded its full digest
        if file is not None:
            if _actual(ctx, file) is None:  # else MP010 has checked it
                yield _Hit(
                    f"{what}: {file} is not here, so its digest cannot be checked", where, file
                )
        elif given is not None and not given.startswith("sha256:"):
            yield _Hit(f"{what}: {given} is abbreviated, so it cannot be checked", where, given)
        elif given is not None and file is None and ctx.manifest.event is None:
            yield _Hit(f"{what}: no file is named, so {given} cannot be checked", where, given)


def _quarantined_source(ctx: _Context) -> Iterator[_Hit]:
    m = ctx.manifest
    blocked = (State.QUARANTINED.value, State.REJECTED.value)
    for s in m.source_records:
        state = s.review_status
        if ctx.ledger is not None:
            found = _source_entry(ctx.ledger, s)
            state = status_of(ctx.ledger, found).state.value if found is not None else state
        if state in blocked or (s.quarantined and ctx.ledger is None):
            yield _Hit(f"source {s.ref} is {state or 'quarantined'}", "source_records", s.ref)
    if m.reviewer_status in blocked:
        yield _Hit(f"dataset {m.dataset} is {m.reviewer_status}", "reviewer_status")


def _build_manifest_missing(ctx: _Context) -> Iterator[_Hit]:
    assert ctx.ledger is not None
    for b in ctx.manifest.builds:
        entry = _event(ctx.ledger, b.event)
        if b.event is not None and entry is None:
            yield _Hit(f"build {b.name or b.event} is not in the ledger", "builds", b.name)
            continue
        if entry is None and b.name:
            entry = next(ctx.ledger.entries(type="build", name=b.name, newest_first=True), None)
        named = [b.manifest]
        if entry is not None:
            named.append(entry.event.payload.get("manifest"))
        for digest in dict.fromkeys(d for d in named if d is not None):
            found = _event(ctx.ledger, digest)
            if found is None or found.event.type.value != "dataset":
                yield _Hit(
                    f"build {b.name or b.event} names the manifest {Digest(digest).short}, "
                    "which is not a dataset in this ledger",
                    "builds",
                    b.name,
                )


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({r.id: r for r in rules})


#: Every lint rule, by id.
RULES: Final[Mapping[str, Rule]] = _rules(
    Rule("MP001", "rights-basis", "error", "every source needs a specific rights basis",
         "name the policy, contract or legal basis that allows this use "
         "(e.g. internal-use-policy-2026-04, contract-2024-17 §4)", _rights_basis),
    Rule("MP002", "unversioned-source", "error", "sources are versioned records, name@version",
         "name each source with its version, e.g. support-chat-export@2026-05-22",
         _unversioned_source),
    Rule("MP003", "unversioned-transform", "error", "every step names its version",
         "name the step with its version and parameters, e.g. dedupe-v2 threshold=0.84",
         _unversioned_transform),
    Rule("MP004", "vague-transform", "warning", "steps are named and parameterised to be reviewed",
         "name what the step does (pii-redaction-v3, dedupe-v2) and record its parameters",
         _vague_transform),
    Rule("MP005", "missing-exclusion-report", "error",
         "what a removal or an opt-out list removed is reported",
         "attach the exclusion report (exclusion_report: FILE), give the step's removed keys "
         "(removed_keys: FILE) to mlprov manifest record, or run the step under capture "
         "(p.exclude) so its changes file is recorded", _missing_exclusion_report),
    Rule("MP006", "exclusion-order", "error",
         "an exclusion runs after, and with, the opt-out list it needs",
         "run the exclusion again after loading the opt-out list, using it",
         _exclusion_order, needs_ledger=True),
    Rule("MP007", "stale-opt-out-list", "error", "the newest opt-out list is the one used",
         "run the exclusion again with the newest opt-out list, and use the new dataset",
         _stale_opt_out_list, needs_ledger=True),
    Rule("MP008", "no-reviewer-status", "error", "a dataset has a reviewer status",
         "record a review: mlprov review DATASET --status accepted (or of each source)",
         _no_reviewer_status),
    Rule("MP009", "limits-unstated", "error",
         "accepted_with_limits states its limits or unresolved risks",
         "list the limits and unresolved risks the model owner must carry", _limits_unstated),
    Rule("MP010", "byte-drift", "error", "the bytes match their recorded digest",
         "restore the file the manifest describes, or record the new bytes as a new version",
         _byte_drift),
    Rule("MP011", "unchecked-digest", "warning", "a digest that cannot be checked proves little",
         "give the full sha256:<64 hex> and name the file beside the manifest",
         _unchecked_digest),
    Rule("MP012", "quarantined-source", "error", "no quarantined or rejected source is used",
         "meet the quarantine's exit condition and release it, or drop the source",
         _quarantined_source),
    Rule("MP013", "build-manifest-missing", "error", "a build names a manifest that exists",
         "record the build against a recorded dataset (mlprov build NAME --dataset D)",
         _build_manifest_missing, needs_ledger=True),
)  # fmt: skip


def lint(
    manifest: Manifest,
    ledger: LedgerCore | None = None,
    *,
    base: Path | None = None,
    rules: Iterable[Rule | RuleSet] | None = None,
) -> list[Finding]:
    """Every finding of `rules` (default: all) on `manifest`; `base` is the folder its
    file names are relative to (the manifest file's folder), and the ledger rules run
    only when `ledger` is given."""
    chosen = all_of(*(RULES.values() if rules is None else rules))
    return chosen.run(manifest, ledger, base)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
