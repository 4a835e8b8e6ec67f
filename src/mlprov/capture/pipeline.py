"""Pipelines: sources, versioned steps, exclusions and datasets recorded as the data moves.

::

    with ledger.pipeline("support-classifier-training") as p:
        chats = p.source(df, "support-chat-export@2026-05-22", key="ticket_id",
                         subject="customer_id", rights_basis="...", personal_data=True)
        optout = p.source(optout_df, "opt-out-list@2026-05-22", subject="customer_id")
        chats = p.transform("pii-redaction-v3", redact, chats)
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        dataset = p.dataset(chats, "support-classifier-training")

Each call hands back data of the type it was given. A run opens with a `run` event that
records the code version (git commit and dirty state of the caller's repository), the
interpreter and the loaded packages' versions; every step is a `transform` event
parented by the run and by the events of the data it used, with its parameters, its
code digest, its times, its counts, the record set it produced and the record-level
changes it made; the run closes with a `succeeded` or `failed` event, and a signed
checkpoint. A step that raises is recorded as failed before the error reaches the caller.
"""

from __future__ import annotations

import contextvars
import functools
import os
import secrets
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.capture import arguments, frames, lineage
from mlprov.capture.environment import caller_directory, code_digest, git_state, packages, runtime
from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, MlprovError, NotFoundError
from mlprov.identity import default_actor
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, utc_now
from mlprov.records.subjects import SubjectHasher

__all__ = ["Pipeline", "active", "transform"]

T = TypeVar("T")
# Errors raised by a user's data inside a step (a column that will not convert, say).
_DATA_ERRORS = (pa.ArrowException, ValueError, TypeError)
_ACTIVE: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar(
    "mlprov_pipeline", default=None
)


@dataclass
class _Tracked:
    snapshot: lineage.Snapshot
    event: Digest
    label: str
    root: Digest | None  # None: a step's set not built (step_sets=False)
    sources: tuple[str, ...]
    steps: tuple[str, ...]
    hold: Any = None  # the data itself, when it cannot be weakly referenced


@dataclass
class _Step:
    payload: dict[str, Any]
    parents: list[Digest]


def active() -> Pipeline | None:
    """The pipeline whose `with` block is running in this context, if any."""
    return _ACTIVE.get()


class Pipeline:
    """One recorded run of a pipeline; use it as a context manager (see the module doc).

    With `step_sets=False` a step's output record set is not built or saved (its event
    has no `output_root`): it is still fixed by its input's set and its changes file, both
    committed, and sources and datasets keep theirs. That saves a sort and a Merkle tree
    per step on large data.
    """

    def __init__(
        self,
        ledger: LedgerCore,
        name: str,
        *,
        actor: str | None = None,
        allow_unversioned: bool = False,
        repo: Path | None = None,
        checkpoint: bool = True,
        step_sets: bool = True,
    ) -> None:
        self.ledger = ledger
        self.name = name
        self.actor = actor or default_actor()
        self.allow_unversioned = allow_unversioned
        self.repo = repo if repo is not None else caller_directory(1)
        self.run_id = secrets.token_hex(8)
        self.run: Entry | None = None
        self.closed: Entry | None = None
        self.checkpoint = checkpoint
        self.step_sets = step_sets
        self._tracked: dict[int, _Tracked] = {}
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        self._steps = 0
        self._outputs: list[Digest] = []
        self._last: Digest | None = None
        self._hasher: SubjectHasher | None = None
        self._token: contextvars.Token[Pipeline | None] | None = None

    # -- the run ---------------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        if self.run is not None:
            raise InputError(f"pipeline {self.name!r} has already run", "open a new one")
        git = git_state(self.repo)
        python, system = runtime()
        self.run = self._append(
            "run",
            {
                "name": self.name,
                "run_id": self.run_id,
                "status": "started",
                "git_commit": git.commit if git else None,
                "git_dirty": git.dirty if git else None,
                "python": python,
                "platform": system,
                "packages": packages(),
            },
            (),
        )
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        for fin in self._finalizers:
            fin.detach()
        self._tracked.clear()
        if self.run is None or self.closed is not None:
            return
        payload = {
            "name": self.name,
            "run_id": self.run_id,
            "status": "failed" if exc is not None else "succeeded",
            "steps": self._steps,
            "error": arguments.error_text(exc) if exc is not None else None,
        }
        ends = self._outputs or ([self._last] if self._last is not None else [])
        if exc is None:
            self.closed = self._append("run", payload, [self.run.digest, *ends])
        else:  # the caller's error matters more than one from recording it
            with suppress(MlprovError):
                self.closed = self._append("run", payload, [self.run.digest, *ends])
        if self.checkpoint:
            with suppress(NotFoundError):  # a ledger without a signing key: nothing to sign
                self.ledger.checkpoint()

    def _append(self, kind: str, payload: Mapping[str, Any], parents: Sequence[Digest]) -> Entry:
        return self.ledger.record(kind, payload, actor=self.actor, parents=parents)

    def _require_open(self, what: str) -> Digest:
        if self.run is None or self.closed is not None or self._token is None:
            raise InputError(
                f"{what} outside a running pipeline",
                "call it inside `with ledger.pipeline(NAME) as p:`",
            )
        return self.run.digest

    # -- tracking data ---------------------------------------------------------------------
    def tracks(self, data: object) -> bool:
        """Whether `data` came from this pipeline's `source` or one of its steps."""
        return id(data) in self._tracked

    def _track(self, data: Any, tracked: _Tracked) -> None:
        key = id(data)
        self._tracked[key] = tracked
        try:
            self._finalizers.append(weakref.finalize(data, self._tracked.pop, key, None))
        except TypeError:  # lists cannot be weakly referenced: hold them for the run
            tracked.hold = data

    def _lookup(self, data: object, step: str) -> _Tracked:
        found = self._tracked.get(id(data))
        if found is None:
            raise InputError(
                f"{step} got data this pipeline has not seen",
                "pass data from p.source(...) or from an earlier step of the same pipeline",
            )
        return found

    def _subject_hasher(self) -> SubjectHasher:
        if self._hasher is None:
            self._hasher = self.ledger.subject_hasher()
        return self._hasher

    # -- sources ---------------------------------------------------------------------------
    def source(
        self,
        data: T,
        ref: str,
        *,
        key: str | None = None,
        subject: str | None = None,
        rights_basis: str | None = None,
        license: str | None = None,
        owner: str | None = None,
        collected: tuple[str, str] | None = None,
        personal_data: bool | None = None,
        uri: str | None = None,
        acquisition: str | None = None,
        purpose: str | None = None,
        modality: str | None = None,
        languages: Sequence[str] = (),
        description: str | None = None,
        copyright: str | None = None,
        aggregate_consumer_info: bool | None = None,
    ) -> T:
        """Record `data` as the source `name@version` and return it (a path is read into a
        pyarrow Table, and its bytes digested). The facts after `uri` are those the
        disclosures ask for (see `mlprov.ledger.payloads.SourcePayload`).

        A version names one content: recording the same `name@version` again reuses the
        earlier event when the records and facts match, and is refused when they differ.
        """
        self._require_open(f"source {ref}")
        name, version = arguments.split_ref(ref)
        byte_digest = None
        result: Any = data
        table = frames.to_table(data)
        if isinstance(data, str | os.PathLike):  # a file: its bytes too, and the table back
            byte_digest, result = digest_file(Path(data)), table
            uri = uri if uri is not None else self.ledger.project_path(Path(data))
        hasher = self._subject_hasher() if subject else None
        snap = lineage.first(table, key=key, subject=subject, hasher=hasher, where=ref)
        records = snap.record_set()
        root = Digest.from_raw(records.root)
        payload = {
            "name": name,
            "version": version,
            "rights_basis": rights_basis,
            "license": license,
            "owner": owner,
            "collected": list(collected) if collected is not None else None,
            "personal_data": personal_data,
            "uri": uri,
            "acquisition": acquisition,
            "purpose": purpose,
            "modality": modality,
            "languages": list(languages) or None,
            "description": description,
            "copyright": copyright,
            "aggregate_consumer_info": aggregate_consumer_info,
            "byte_digest": byte_digest,
            "record_count": snap.rows,
            "record_root": root,
        }
        entry = self._recorded_source(ref, payload)
        if entry is None:
            records.save(self.ledger.blobs_dir)  # before the event: never a dangling root
            entry = self._append("source", payload, ())
        self._track(result, _Tracked(snap, entry.digest, ref, root, (ref,), ()))
        return result  # type: ignore[no-any-return]

    def _recorded_source(self, ref: str, payload: Mapping[str, Any]) -> Entry | None:
        return names.recorded_source(self.ledger, payload)

    # -- steps -----------------------------------------------------------------------------
    def transform(
        self,
        name: str,
        fn: Callable[..., T],
        data: Any,
        *args: Any,
        params: Mapping[str, Any] | None = None,
        purpose: str | None = None,
        allow_unversioned: bool | None = None,
        **kwargs: Any,
    ) -> T:
        """Run `fn(data, *args, **kwargs)` as the versioned step `name` and record it.

        Other tracked data among `args` is recorded as used too; rows the step adds that
        did not come from `data` count as added.
        """
        self._require_open(f"step {name}")
        allow = self.allow_unversioned if allow_unversioned is None else allow_unversioned
        version = arguments.versioned(name, allow)
        arguments.callable_step(fn, name)
        before = self._lookup(data, f"step {name}")
        used = [("input", before)] + [
            ("input", self._tracked[id(a)]) for a in args if id(a) in self._tracked
        ]
        step = self._start(
            name, version, "transform", fn, arguments.step_params(params, name), used, purpose
        )
        try:
            result = fn(data, *args, **kwargs)
        except BaseException as exc:
            self._fail(step, exc)
            raise
        try:
            table = frames.to_table(result)
            snap, changes = lineage.follow(
                before.snapshot, table, self._hasher, f"the output of {name}", name
            )
        except MlprovError as exc:
            self._fail(step, exc)
            raise
        except _DATA_ERRORS as exc:
            error = arguments.data_error(name, exc, "what the step function returns")
            self._fail(step, error)
            raise error from None
        self._release(before, result)
        self._finish(step, result, snap, changes, before, used)
        return result

    def exclude(
        self,
        name: str,
        data: T,
        *,
        using: Any = None,
        on: str | None = None,
        where: Any = None,
        duplicate_of: Any = None,
        reason: str | None = None,
        params: Mapping[str, Any] | None = None,
        purpose: str | None = None,
        allow_unversioned: bool | None = None,
    ) -> T:
        """Remove rows of `data` and record each removal with `reason` (default: the step's
        name). Either by a list: the rows whose `on` value appears in `using` (such as an
        opt-out list); or by a mask: the rows where `where` is true (one boolean per row),
        such as the duplicates a dedupe step found — then `duplicate_of` may give one value
        per input row: for a removed row the key of the record kept in its place, for any
        other row None (or NaN, as pandas writes it: `first_key.where(mask, None)`).

        When `on` is the subject column of both, rows are matched by subject hash, so the
        documented normalisation applies (`A@Example.com ` matches `a@example.com`).
        """
        self._require_open(f"step {name}")
        allow = self.allow_unversioned if allow_unversioned is None else allow_unversioned
        version = arguments.versioned(name, allow)
        before = self._lookup(data, f"step {name}")
        by_list = using is not None or on is not None
        if by_list == (where is not None) or (by_list and (using is None or on is None)):
            raise InputError(
                f"step {name}: give either using= and on= (remove what a list names) or "
                "where= (remove the rows a mask marks)",
                "e.g. p.exclude(name, data, using=optout, on='customer_id')",
            )
        if duplicate_of is not None and by_list:
            raise InputError(f"step {name}: duplicate_of= goes with where=, not with a list")
        options: dict[str, Any] = arguments.step_params(params, name)
        used = [("input", before)]
        if by_list:
            assert on is not None  # checked above
            other = self._lookup(using, f"step {name} (its `using` list)")
            matched_on = (
                "subject_hash"
                if on == before.snapshot.subject_column == other.snapshot.subject_column
                else "value"
            )
            options = {"on": on, "matched_on": matched_on, **options}
            used.append(("using", other))
        step = self._start(name, version, "exclusion", None, options, used, purpose)
        try:
            dupes = None
            if by_list:
                assert on is not None
                remove = self._matches(before, data, other, using, on, matched_on)
            else:
                remove = arguments.row_mask(where, before.snapshot.rows, name)
                if duplicate_of is not None:
                    dupes = arguments.keys_text(duplicate_of, before.snapshot.rows, name)
            snap, changes = lineage.exclude(before.snapshot, remove, reason or name, dupes)
            result = frames.keep_rows(data, ~remove)
        except MlprovError as exc:
            self._fail(step, exc)
            raise
        except _DATA_ERRORS as exc:  # the user's data, not mlprov: said as an InputError
            error = arguments.data_error(name, exc, "where=, duplicate_of=, using= and on=")
            self._fail(step, error)
            raise error from None
        self._release(before, result)
        self._finish(step, result, snap, changes, before, used, reason=reason or name)
        return result  # type: ignore[no-any-return]

    @staticmethod
    def _matches(
        before: _Tracked, data: Any, other: _Tracked, using: Any, on: str, matched_on: str
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        if matched_on == "subject_hash":
            wanted = other.snapshot.subjects.drop_null()
            found = pc.is_in(before.snapshot.subjects, value_set=wanted)
        else:
            mine = before.snapshot.table or frames.to_table(data)
            theirs = other.snapshot.table or frames.to_table(using)
            for table, what in ((mine, "the data"), (theirs, "the `using` list")):
                if on not in table.column_names:
                    raise InputError(
                        f"{what} has no column {on!r} to match on",
                        "its columns are: " + ", ".join(table.column_names),
                    )
            left, right = mine.column(on), theirs.column(on)
            if left.type != right.type:
                left, right = pc.cast(left, pa.string()), pc.cast(right, pa.string())
            found = pc.is_in(left, value_set=right.combine_chunks())
        return np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool)

    def _release(self, before: _Tracked, result: object) -> None:
        """Drop the consumed input's content copy: a linear pipeline keeps one, not all."""
        if self._tracked.get(id(result)) is not before:
            before.snapshot = before.snapshot.released()

    # -- recording a step ------------------------------------------------------------------
    def _start(
        self,
        name: str,
        version: str | None,
        kind: str,
        fn: Callable[..., Any] | None,
        params: dict[str, Any],
        used: list[tuple[str, _Tracked]],
        purpose: str | None = None,
    ) -> _Step:
        assert self.run is not None
        self._steps += 1
        code = code_digest(fn) if fn is not None else None
        payload: dict[str, Any] = {
            "name": name,
            "version": version,
            "kind": kind,
            "step": self._steps,
            "params": params,
            "purpose": purpose,
            "code_digest": code.digest if code else None,
            "code_basis": code.basis if code else None,
            "function": code.function if code else None,
            "started_at": utc_now(),
            "used": [
                {"role": role, "event": t.event, "name": t.label, "record_root": t.root}
                for role, t in used
            ],
        }
        parents = [self.run.digest, *(t.event for _, t in used)]
        return _Step(payload, parents)

    def _fail(self, step: _Step, exc: BaseException) -> None:
        payload = {
            **step.payload,
            "status": "failed",
            "error": arguments.error_text(exc),
            "ended_at": utc_now(),
        }
        with suppress(MlprovError):  # the step's own error is the one to raise
            self._last = self._append("transform", payload, step.parents).digest

    def _finish(
        self,
        step: _Step,
        result: Any,
        snap: lineage.Snapshot,
        changes: lineage.Changes,
        before: _Tracked,
        used: list[tuple[str, _Tracked]],
        reason: str | None = None,
    ) -> None:
        blobs = self.ledger.blobs_dir
        root = self._save_set(snap) if self.step_sets else None
        payload = {
            **step.payload,
            "counts": changes.counts(before.snapshot.rows, snap.rows),
            "matched_by": changes.matched_by,
            "output_root": root,
            "changes": changes.save(blobs),
            "reason": reason,
            "ended_at": utc_now(),
        }
        entry = self._append("transform", payload, step.parents)
        self._last = entry.digest
        sources = tuple(dict.fromkeys(s for _, t in used for s in t.sources))
        label = step.payload["name"]
        self._track(
            result, _Tracked(snap, entry.digest, label, root, sources, (*before.steps, label))
        )

    def _save_set(self, snap: lineage.Snapshot) -> Digest:
        records = snap.record_set()
        records.save(self.ledger.blobs_dir)  # before the event: never a dangling root
        return Digest.from_raw(records.root)

    # -- datasets --------------------------------------------------------------------------
    def dataset(self, data: Any, name: str, *, version: str | None = None) -> Entry:
        """Record `data` as the dataset `name`: its record set, sources and steps in order."""
        run = self._require_open(f"dataset {name}")
        tracked = self._lookup(data, f"dataset {name}")
        payload = {
            "name": name,
            "version": version,
            "record_count": tracked.snapshot.rows,
            "record_root": tracked.root or self._save_set(tracked.snapshot),
            "sources": list(tracked.sources),
            "steps": list(tracked.steps),
        }
        entry = self._append("dataset", payload, [run, tracked.event])
        self._outputs.append(entry.digest)
        return entry


def transform(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    purpose: str | None = None,
    allow_unversioned: bool = False,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a step function: called on tracked data inside a running pipeline, it is
    recorded as the step `name`; anywhere else it just runs.

    ::

        @mlprov.transform("dedupe-v2", params={"threshold": 0.84})
        def dedupe(df): ...
    """
    arguments.versioned(name, allow_unversioned)

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def call(data: Any, *args: Any, **kwargs: Any) -> T:
            pipeline = _ACTIVE.get()
            if pipeline is None or not pipeline.tracks(data):
                return fn(data, *args, **kwargs)
            return pipeline.transform(
                name,
                fn,
                data,
                *args,
                params=params,
                purpose=purpose,
                allow_unversioned=allow_unversioned,
                **kwargs,
            )

        return call

    return wrap
