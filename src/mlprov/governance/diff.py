"""Diff: process drift between two manifests, datasets or builds.

A digest catches byte drift; a manifest diff catches process drift. :func:`diff` compares
two manifests field by field and names each change:

- sources added, removed or re-versioned (same name, another version), and rights-basis
  changes of a source present in both;
- transforms added, removed, re-versioned (same base name, another `-vN`),
  re-parameterised, and reordered (the common steps ran in another order);
- exclusion reports added or removed;
- reviewer status, limits and unresolved risks;
- the SHA-256 of the bytes and the record-set root;
- where both record sets are stored, how many records and subjects were added and removed.

:func:`yaml_diff` renders the same two manifests as a unified YAML diff (`-`/`+` lines).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from mlprov.digest import Digest
from mlprov.errors import IntegrityError, NotFoundError
from mlprov.governance.manifest import ExclusionReport, Manifest, Step, dump
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.payloads import step_base

__all__ = ["Change", "ManifestDiff", "diff", "yaml_diff"]


@dataclass(frozen=True)
class Change:
    """One difference: what kind, of what, before and after."""

    kind: str  # e.g. source-added, transform-reparameterised, reviewer-status
    item: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.item == "added, removed":  # `records: 0 added, 8 removed`
            return f"{self.kind}: {self.before:,} added, {self.after:,} removed"
        if self.before is None:
            return f"{self.kind}: {self.item} {_show(self.after)}".rstrip()
        if self.after is None:
            return f"{self.kind}: {self.item} {_show(self.before)}".rstrip()
        return f"{self.kind}: {self.item}: {_show(self.before)} -> {_show(self.after)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": self.item, "before": self.before, "after": self.after}


def _show(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class ManifestDiff:
    a: Manifest
    b: Manifest
    changes: tuple[Change, ...]

    @property
    def same(self) -> bool:
        return not self.changes

    def kinds(self) -> list[str]:
        return [c.kind for c in self.changes]

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.dataset,
            "b": self.b.dataset,
            "same": self.same,
            "changes": [c.to_json() for c in self.changes],
        }


def _base(step: Step) -> str:
    return step_base(step.name)


def _sources(a: Manifest, b: Manifest) -> list[Change]:
    old = {s.name: s for s in a.source_records}
    new = {s.name: s for s in b.source_records}
    out: list[Change] = []
    for name, s in new.items():
        if name not in old:
            out.append(Change("source-added", s.ref))
        elif old[name].version != s.version:
            out.append(Change("source-reversioned", name, old[name].ref, s.ref))
    out += [Change("source-removed", s.ref) for n, s in old.items() if n not in new]
    for name, s in new.items():
        was = old.get(name)
        if was is not None and was.rights_basis != s.rights_basis:
            out.append(Change("rights-changed", s.ref, was.rights_basis, s.rights_basis))
    return out


def _transforms(a: Manifest, b: Manifest) -> list[Change]:
    old = {_base(t): t for t in a.transforms}
    new = {_base(t): t for t in b.transforms}
    out: list[Change] = []
    for base, t in new.items():
        was = old.get(base)
        if was is None:
            out.append(Change("transform-added", t.name, None, t.params or None))
            continue
        if was.name != t.name or was.version != t.version:
            out.append(Change("transform-reversioned", base, was.name, t.name))
        if was.params != t.params:
            out.append(Change("transform-reparameterised", t.name, was.params, t.params))
    out += [Change("transform-removed", t.name) for base, t in old.items() if base not in new]
    common_old = [base for base in old if base in new]
    common_new = [base for base in new if base in old]
    if common_old != common_new:
        out.append(Change("transforms-reordered", "order", common_old, common_new))
    return out


def _review(a: Manifest, b: Manifest) -> list[Change]:
    out: list[Change] = []
    if a.reviewer_status != b.reviewer_status:
        out.append(Change("reviewer-status", "dataset", a.reviewer_status, b.reviewer_status))
    for field, kind in (("limits", "limits"), ("unresolved_risks", "unresolved-risks")):
        before, after = getattr(a, field), getattr(b, field)
        out += [Change(f"{kind}-added", r) for r in after if r not in before]
        out += [Change(f"{kind}-removed", r) for r in before if r not in after]
    return out


def _reports(a: Manifest, b: Manifest) -> list[Change]:
    """Reports of a step in both are one report that changed (the step removed other
    records); a step's report in one only was added or removed."""

    def label(r: ExclusionReport) -> str:
        return r.file or (f"{r.step} changes {r.digest}" if r.step else str(r.digest))

    def of_step(reports: tuple[ExclusionReport, ...]) -> dict[str, ExclusionReport]:
        return {r.step: r for r in reports if r.step and not r.file}

    old_steps, new_steps = of_step(a.exclusion_reports), of_step(b.exclusion_reports)
    out = [
        Change("exclusion-report-changed", step, r.digest, new_steps[step].digest)
        for step, r in old_steps.items()
        if step in new_steps and r.digest != new_steps[step].digest
    ]
    both = old_steps.keys() & new_steps.keys()
    old = [label(r) for r in a.exclusion_reports if r.step not in both or r.file]
    new = [label(r) for r in b.exclusion_reports if r.step not in both or r.file]
    return (
        [Change("exclusion-report-added", r) for r in new if r not in old]
        + [Change("exclusion-report-removed", r) for r in old if r not in new]
        + out
    )


def _digests(a: Manifest, b: Manifest) -> list[Change]:
    out: list[Change] = []
    if a.sha256 != b.sha256:
        out.append(Change("sha256", "bytes", a.sha256, b.sha256))
    if a.record_root != b.record_root:
        out.append(Change("record-root", "records", a.record_root, b.record_root))
    if a.record_count != b.record_count:
        out.append(Change("record-count", "records", a.record_count, b.record_count))
    return out


def _records(a: Manifest, b: Manifest, ledger: LedgerCore | None) -> list[Change]:
    if ledger is None or a.record_root is None or b.record_root is None:
        return []
    if a.record_root == b.record_root:
        return []
    from mlprov.records.sets import diff as set_diff

    try:
        found = set_diff(
            ledger.record_set(Digest(a.record_root).hex),
            ledger.record_set(Digest(b.record_root).hex),
        )
    except (NotFoundError, IntegrityError):
        return [Change("records", "record sets", None, "not both stored here: not compared")]
    return [
        Change("records", "added, removed", found.added_count, found.removed_count),
        Change("subjects", "added, removed", found.subjects_added, found.subjects_removed),
    ]


def diff(a: Manifest, b: Manifest, ledger: LedgerCore | None = None) -> ManifestDiff:
    """What changed from manifest `a` to manifest `b` (record counts when `ledger` holds
    both record sets)."""
    changes = _sources(a, b) + _transforms(a, b) + _reports(a, b) + _review(a, b) + _digests(a, b)
    return ManifestDiff(a, b, tuple(changes + _records(a, b, ledger)))


def yaml_diff(a: Manifest, b: Manifest, names: tuple[str, str] = ("a", "b")) -> str:
    """The two manifests as a unified diff of their YAML."""
    lines = difflib.unified_diff(
        dump(a, "yaml").splitlines(keepends=True),
        dump(b, "yaml").splitlines(keepends=True),
        fromfile=names[0],
        tofile=names[1],
        n=3,
    )
    return "".join(lines)
