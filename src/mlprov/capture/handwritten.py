"""A hand-written manifest recorded as a pipeline would have been: the route for a team
whose pipeline is not yet instrumented.

:func:`record` reads a manifest (checked by :mod:`mlprov.governance.manifest_files`), then:

- fingerprints each source file it names (with its `key` and `subject` columns, else the
  defaults given) and records it as the source `NAME@VERSION`, or finds the one already
  recorded with that content (another content under that name is refused, ADR 0013); a
  source named without a file is linked to the one recorded under its name, if any;
- records each step it describes as a `transform` event marked `recorded_from: manifest`,
  with what it used: its `used` and `using`, else the previous step (or the sources that
  are not opt-out lists) as its input and, for an exclusion, the opt-out lists as `using`;
- records which records an exclusion removed where files show it: the keys in its
  `removed_keys` file, looked up in its input's record set; or, for the only step of the
  manifest, the records of its input that are not in the data file. Otherwise the step has
  no changes file, and answers say what it removed is unknown;
- fingerprints `data_file` as the dataset's record set, and records the dataset (its
  version counted or given, the same content being the same version: ADR 0018).

A Croissant file is read as such a manifest by :mod:`mlprov.capture.croissant_in` (its
files checked against their SHA-256 first), and recorded the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mlprov.capture import croissant_in
from mlprov.capture.lineage import CHANGES_SCHEMA, Changes
from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.governance.manifest import Manifest, SourceRecord, Step, is_opt_out
from mlprov.governance.manifest_files import checked, dataset_payload, resolve_inside
from mlprov.identity import default_actor
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, Event
from mlprov.records.fingerprint import Fingerprint, fingerprint
from mlprov.records.sets import RecordSet

__all__ = ["Recorded", "record"]

#: How each source of the manifest was found.
Via = Literal["fingerprinted", "already recorded", "linked by name", "not recorded"]


@dataclass(frozen=True)
class Recorded:
    """What `record` did: the dataset, and each source and step with how it was had."""

    dataset: Entry
    fresh: bool  # False: the same content was already recorded, nothing new
    sources: tuple[tuple[str, Via], ...]
    steps: tuple[tuple[str, str], ...]  # (step, what is known of what it removed)


@dataclass
class _Node:
    """A source or step as a later step uses it: recorded already, or about to be."""

    ref: str
    event: Event
    records: RecordSet | None
    new: bool = False

    @property
    def digest(self) -> Digest:
        return self.event.digest


def _print(found: Fingerprint) -> tuple[Digest, RecordSet]:
    return Digest.from_raw(found.records.root), found.records


def _columns(s: SourceRecord | Manifest, key: str | None, subject: str | None) -> tuple[Any, Any]:
    return s.key or key, s.subject or subject


def _source(
    ledger: LedgerCore,
    s: SourceRecord,
    base: Path,
    defaults: tuple[str | None, str | None],
    actor: str,
    facts: Mapping[str, Any],
) -> tuple[_Node | None, Via]:
    if not s.version:
        return None, "not recorded"
    path = resolve_inside(base, s.file, f"source {s.ref} file") if s.file else None
    if path is None or not path.is_file():
        found = next(ledger.entries(type="source", name=s.ref, newest_first=True), None)
        if found is None:
            return None, "not recorded"
        try:  # its stored record set, if the ledger has it, shows what a step removed
            stored: RecordSet | None = ledger.record_set(found)
        except (InputError, NotFoundError, IntegrityError):
            stored = None
        return _Node(s.ref, found.event, stored), "linked by name"
    key, subject = _columns(s, *defaults)
    hasher = ledger.subject_hasher() if subject else None
    taken = fingerprint(path, key=key, subject=subject, hasher=hasher)
    root, records = _print(taken)
    payload = {
        "name": s.name,
        "version": s.version,
        "rights_basis": s.rights_basis,
        "license": s.license,
        "owner": s.owner,
        "personal_data": s.personal_data,
        **facts,
        "uri": ledger.project_path(path),
        "byte_digest": taken.byte_digest,
        "record_count": taken.rows,
        "record_root": root,
        "pairs_root": Digest.from_raw(taken.records.pairs.root),
    }
    earlier = names.recorded_source(ledger, payload)
    if earlier is not None:
        return _Node(s.ref, earlier.event, records), "already recorded"
    event = Event.create("source", payload, actor=actor)
    return _Node(s.ref, event, records, new=True), "fingerprinted"


def _is_list(s: SourceRecord) -> bool:
    return bool(s.opt_out) or is_opt_out(s.name)


def _used(
    step: Step, manifest: Manifest, nodes: dict[str, _Node], previous: str | None
) -> list[tuple[str, _Node]] | str:
    """What a step used, by role: as the manifest says, else as the module doc says; or
    why it cannot be recorded (something it used is in neither the ledger nor a file)."""
    given = [(u.role, u.ref) for u in step.used]
    if not any(role == "input" for role, _ in given):
        if previous is not None:
            given.insert(0, ("input", previous))
        else:
            given[:0] = [("input", s.ref) for s in manifest.source_records if not _is_list(s)]
    if step.kind == "exclusion" and not any(role == "using" for role, _ in given):
        given += [("using", s.ref) for s in manifest.source_records if _is_list(s)]
    found = []
    for role, ref in given:
        node = nodes.get(ref)
        if node is None:
            return (
                f"not recorded: it uses {ref}, which neither the ledger nor a file named "
                "holds (give its file in source_records, or fingerprint it first)"
            )
        found.append((role, node))
    return found


def _removed_keys(base: Path, step: Step, records: RecordSet) -> pa.Table:
    assert step.removed_keys is not None
    path = resolve_inside(base, step.removed_keys, f"step {step.name} removed_keys")
    try:
        keys = [k.strip() for k in path.read_text(encoding="utf-8").splitlines() if k.strip()]
    except FileNotFoundError:
        raise NotFoundError(
            f"step {step.name}: no removed_keys file {step.removed_keys}", "check the path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"step {step.name}: cannot read {step.removed_keys}: {exc}", "give a text file"
        ) from None
    hits = records.where_any("key", keys)
    missing = sorted(set(keys) - set(hits.column("key").to_pylist()))
    if missing:
        raise InputError(
            f"step {step.name}: removed key {missing[0]!r} is not a key of its input "
            f"({len(missing)} such)",
            "list the keys of the records the step removed, one a line",
        )
    return hits


def _changes(rows: pa.Table) -> pa.Table:
    n = rows.num_rows
    return pa.table(
        {
            "change": pa.array(["removed"] * n, pa.string()),
            "key": rows.column("key"),
            "before": rows.column("digest"),
            "after": pa.nulls(n, pa.binary(32)),
            "reason": pa.nulls(n, pa.string()),
            "columns": pa.nulls(n, pa.list_(pa.string())),
            "duplicate_of": pa.nulls(n, pa.string()),
        },
        schema=CHANGES_SCHEMA,
    )


UNKNOWN = (
    "which records it removed is not known from the files: give its removed_keys file, or "
    "its input's file and the data_file with it as the manifest's only step"
)


@dataclass
class _Batch:
    """What `record` will write: files first, then every new event in one append."""

    ledger: LedgerCore
    actor: str
    events: list[Event]

    def step(
        self, number: int, step: Step, used: list[tuple[str, _Node]], removed: pa.Table | None
    ) -> tuple[_Node, str]:
        inputs = [n for role, n in used if role == "input"]
        sets = [n.records for n in inputs if n.records is not None]
        rows_in = sum(r.rows for r in sets) if len(sets) == len(inputs) and sets else None
        payload: dict[str, Any] = {
            "name": step.name,
            "version": step.version,
            "kind": step.kind,
            "step": number,
            "params": {**step.params, **({"on": step.on} if step.on else {})},
            "recorded_from": "manifest",
            "used": [
                {
                    "role": role,
                    "event": n.digest,
                    "name": n.ref,
                    "record_root": n.event.payload.get("record_root"),
                }
                for role, n in used
            ],
        }
        known = UNKNOWN if step.kind == "exclusion" else "its changes are not recorded"
        if removed is not None and rows_in is not None:
            kept = rows_in - removed.num_rows
            changes = Changes(_changes(removed), kept, "digest")
            payload.update(changes.saved(self.ledger.blobs_dir))  # content-addressed
            payload["matched_by"] = "digest"
            payload["counts"] = changes.counts(rows_in, kept)
            known = f"removed {removed.num_rows:,}, shown by the files the manifest names"
        parents = [n.digest for _, n in used]
        event = Event.create("transform", payload, actor=self.actor, parents=parents)
        self.events.append(event)
        return _Node(step.name, event, None, new=True), known


def record(
    ledger: LedgerCore,
    path: Path | str,
    *,
    key: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
) -> Recorded:
    """Record a hand-written manifest (or a Croissant file), its files and its steps: see
    the module doc. `key` and `subject` are the columns of every named file that gives
    none of its own. Nothing is recorded unless all of it is (one append)."""
    path = Path(path)
    croissant = croissant_in.read(path, key=key, subject=subject)
    facts: Mapping[str, Mapping[str, Any]] = {}
    if croissant is None:
        raw, manifest = checked(path)
    else:  # its files are checked, and their columns chosen
        raw, manifest, facts = croissant.raw, croissant.manifest, croissant.facts
        key = subject = None
    base, who = path.parent, actor or default_actor()
    data: tuple[Digest, RecordSet, int] | None = None
    file = resolve_inside(base, manifest.data_file, "data file") if manifest.data_file else None
    if file is not None and file.is_file():
        dkey, dsubject = _columns(manifest, key, subject)
        hasher = ledger.subject_hasher() if dsubject else None
        taken = fingerprint(file, key=dkey, subject=dsubject, hasher=hasher)
        data = (*_print(taken), taken.rows)
    nodes: dict[str, _Node] = {}
    vias: list[tuple[str, Via]] = []
    for s in manifest.source_records:
        node, via = _source(ledger, s, base, (key, subject), who, facts.get(s.ref, {}))
        vias.append((s.ref, via))
        if node is not None:
            nodes[s.ref] = node
    batch = _Batch(ledger, who, [n.event for n in nodes.values() if n.new])
    previous: _Node | None = None
    known: list[tuple[str, str]] = []
    for number, step in enumerate(manifest.transforms, 1):
        before = manifest.transforms[number - 2].name if number > 1 else None
        used = _used(step, manifest, nodes, before)
        if isinstance(used, str):  # its history stops here: the dataset names its sources
            known.append((step.name, used))
            continue
        inputs = [n.records for role, n in used if role == "input"]
        one = inputs[0] if len(inputs) == 1 else None
        removed = None
        if step.removed_keys is not None:
            if one is None:
                raise InputError(
                    f"step {step.name}: removed_keys needs one input whose file is named",
                    "give its input source's file in source_records",
                )
            removed = _removed_keys(base, step, one)
        elif (
            len(manifest.transforms) == 1
            and one is not None
            and data is not None
            and data[1].difference(one).rows == 0  # the data is its input's records, unchanged
        ):
            removed = one.difference(data[1]).table
        node, said = batch.step(number, step, used, removed)
        known.append((step.name, said))
        nodes[step.name] = previous = node
    parents = [previous.digest] if previous else [n.digest for n in nodes.values()]
    payload = dataset_payload(
        raw, manifest, record_root=data[0] if data else None, record_count=data[2] if data else None
    )
    if data is not None:  # the keys and subjects of its records, proven beside the root
        payload["pairs_root"] = Digest.from_raw(data[1].pairs.root)
    made = [_history(e) for e in batch.events if e.type.value == "transform"]
    earlier = names.recorded_dataset(ledger, payload, parents, made=made)
    if earlier is not None:  # the same content again: that version, nothing new recorded
        return Recorded(earlier, False, tuple(vias), tuple(known))
    payload["version"] = manifest.version or names.next_version(ledger, manifest.dataset)
    batch.events.append(Event.create("dataset", payload, actor=who, parents=parents))
    for n in nodes.values():
        if n.new and n.records is not None:
            n.records.save(ledger.blobs_dir)  # files before events: never a dangling root
    if data is not None:
        data[1].save(ledger.blobs_dir)
    entries = ledger.append_many(batch.events)
    return Recorded(entries[-1], True, tuple(vias), tuple(known))


def _history(event: Event) -> tuple[Any, ...]:
    return names.step_signature(event.payload)
