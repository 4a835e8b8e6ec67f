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

A step returns as soon as its data is ready: its records are followed, and its record set
and changes file written, by workers beside the pipeline (:mod:`mlprov.capture.recorder`);
its event is appended once they are on disk, and `dataset` and the end of the run wait for
them. An error found there (a step that repeats a key, a source that conflicts with its
earlier recording) is raised at the next call that waits, and the step recorded failed.
"""

from __future__ import annotations

import contextvars
import os
import secrets
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from mlprov.capture import arguments, frames, lineage
from mlprov.capture.environment import caller_directory, code_digest, git_state, packages, runtime
from mlprov.capture.recorder import Recorder
from mlprov.capture.tracked import Lineage, Step, Tracked, matches, pairs_root, saved_set
from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, MlprovError, NotFoundError
from mlprov.identity import default_actor
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, utc_now
from mlprov.records.subjects import SubjectHasher

__all__ = ["Pipeline", "active"]

T = TypeVar("T")
# Errors raised by a user's data inside a step (a column that will not convert, say).
_DATA_ERRORS = (pa.ArrowException, ValueError, TypeError)
_ACTIVE: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar(
    "mlprov_pipeline", default=None
)


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
        self._tracked: dict[int, Tracked] = {}
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        self._steps = 0
        self._outputs: list[Digest] = []
        self._last: Digest | None = None
        self._hasher: SubjectHasher | None = None
        self._token: contextvars.Token[Pipeline | None] | None = None
        self._recorder = Recorder()

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
        found: BaseException | None = None
        try:  # every step's files written and its event appended, or its failure recorded
            self._recorder.take(wait=True)
        except BaseException as failure:  # noqa: BLE001 - raised below, once the run is closed
            found = failure
        finally:
            self._recorder.close()
        self._tracked.clear()
        if self.run is None or self.closed is not None:
            return
        error = exc if exc is not None else found or self._recorder.failure
        payload = {
            "name": self.name,
            "run_id": self.run_id,
            "status": "failed" if error is not None else "succeeded",
            "steps": self._steps,
            "error": arguments.error_text(error) if error is not None else None,
        }
        ends = self._outputs or ([self._last] if self._last is not None else [])
        if error is None:
            self.closed = self._append("run", payload, [self.run.digest, *ends])
        else:  # the caller's error matters more than one from recording it
            with suppress(MlprovError):
                self.closed = self._append("run", payload, [self.run.digest, *ends])
        if self.checkpoint:
            with suppress(NotFoundError):  # a ledger without a signing key: nothing to sign
                self.ledger.checkpoint()
        if exc is None and found is not None:
            raise found

    def _append(self, kind: str, payload: Mapping[str, Any], parents: Sequence[Digest]) -> Entry:
        return self.ledger.record(kind, payload, actor=self.actor, parents=parents)

    def _require_open(self, what: str) -> Digest:
        if self.run is None or self.closed is not None or self._token is None:
            raise InputError(
                f"{what} outside a running pipeline",
                "call it inside `with ledger.pipeline(NAME) as p:`",
            )
        self._recorder.check()
        self._recorder.take(wait=False)  # append the events whose files are written
        return self.run.digest

    def wait(self) -> None:
        """Wait until every step so far is recorded: its files written and its event
        appended. An error found on the way (the step is then recorded failed) is raised.
        `dataset` and the end of the run wait by themselves."""
        self._require_open("wait")
        self._recorder.take(wait=True)

    # -- tracking data ---------------------------------------------------------------------
    def tracks(self, data: object) -> bool:
        """Whether `data` came from this pipeline's `source` or one of its steps."""
        return id(data) in self._tracked

    def _track(self, data: Any, tracked: Tracked) -> None:
        key = id(data)
        self._tracked[key] = tracked
        try:
            self._finalizers.append(weakref.finalize(data, self._tracked.pop, key, None))
        except TypeError:  # lists cannot be weakly referenced: hold them for the run
            tracked.hold = data

    def _lookup(self, data: object, step: str) -> Tracked:
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
        payload: dict[str, Any] = {
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
            "record_count": table.num_rows,
            "columns": frames.columns(table),
        }
        earlier = names.recorded_source(self.ledger, payload)
        tracked = Tracked(
            self._recorder.follow(
                lambda: Lineage(
                    lineage.first(table, key=key, subject=subject, hasher=hasher, where=ref)
                )
            ),
            table.num_rows,
            key,
            subject,
            ref,
            (ref,),
            (),
            columns=payload["columns"],
        )
        blobs = self.ledger.blobs_dir

        def save() -> tuple[Digest, Digest]:
            records = tracked.snapshot().record_set()
            if earlier is None:
                records.save(blobs)  # before the event: never a dangling root
            return Digest.from_raw(records.root), Digest.from_raw(records.pairs.root)

        def done(roots: tuple[Digest, Digest]) -> None:
            root, pairs = roots
            entry = earlier
            if entry is None:
                entry = self._append(
                    "source", {**payload, "record_root": root, "pairs_root": pairs}, ()
                )
            else:  # the same name and version, refused if the records differ
                names.recorded_source(self.ledger, {**payload, "record_root": root})
            tracked.event, tracked.root = entry.digest, root

        self._recorder.record(save, done, lambda exc: None)  # a failed source records nothing
        self._track(result, tracked)
        return result  # type: ignore[no-any-return]

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
        except MlprovError as exc:
            self._fail(step, exc)
            raise
        except _DATA_ERRORS as exc:
            error = arguments.data_error(name, exc, "what the step function returns")
            self._fail(step, error)
            raise error from None
        hasher, keep = self._hasher, result is data
        where = f"the output of {name}"

        def follow() -> Lineage:
            earlier = before.lineage.result()
            snap, changes = lineage.follow(earlier.snapshot, table, hasher, where, name)
            if not keep:  # a linear pipeline holds one content copy, not one per step
                earlier.snapshot = earlier.snapshot.released()
            return Lineage(snap, changes)

        self._finish(step, result, table.num_rows, follow, columns=frames.columns(table))
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
            matched_on = "subject_hash" if on == before.subject == other.subject else "value"
            options = {"on": on, "matched_on": matched_on, **options}
            used.append(("using", other))
        step = self._start(name, version, "exclusion", None, options, used, purpose)
        try:
            dupes = None
            if by_list:
                assert on is not None
                remove = matches(before, data, other, using, on, matched_on)
            else:
                remove = arguments.row_mask(where, before.rows, name)
                if duplicate_of is not None:
                    dupes = arguments.keys_text(duplicate_of, before.rows, name)
            result = frames.keep_rows(data, ~remove)
        except MlprovError as exc:
            self._fail(step, exc)
            raise
        except _DATA_ERRORS as exc:  # the user's data, not mlprov: said as an InputError
            error = arguments.data_error(name, exc, "where=, duplicate_of=, using= and on=")
            self._fail(step, error)
            raise error from None
        why = reason or name

        def follow() -> Lineage:
            earlier = before.lineage.result()
            snap, changes = lineage.exclude(earlier.snapshot, remove, why, dupes)
            if result is not data:
                earlier.snapshot = earlier.snapshot.released()
            return Lineage(snap, changes)

        self._finish(step, result, int((~remove).sum()), follow, why, before.columns)
        return result  # type: ignore[no-any-return]

    # -- recording a step ------------------------------------------------------------------
    def _start(
        self,
        name: str,
        version: str | None,
        kind: str,
        fn: Callable[..., Any] | None,
        params: dict[str, Any],
        used: list[tuple[str, Tracked]],
        purpose: str | None = None,
    ) -> Step:
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
        }
        return Step(payload, used)

    def _event(self, step: Step, payload: dict[str, Any]) -> Entry:
        """Append a step's event: its inputs' events are all appended by now."""
        assert self.run is not None
        used = [
            {"role": role, "event": t.event, "name": t.label, "record_root": t.root}
            for role, t in step.used
        ]
        parents = [self.run.digest, *(t.event for _, t in step.used if t.event is not None)]
        entry = self._append("transform", {**step.payload, "used": used, **payload}, parents)
        self._last = entry.digest
        return entry

    def _failed(self, step: Step, exc: BaseException, ended: str | None = None) -> None:
        payload = {
            "status": "failed",
            "error": arguments.error_text(exc),
            "ended_at": ended or utc_now(),
        }
        with suppress(MlprovError):  # the step's own error is the one to raise
            self._event(step, payload)

    def _fail(self, step: Step, exc: BaseException) -> None:
        """Record a step that raised, once the steps before it are recorded."""
        try:
            self._recorder.take(wait=True)
        except BaseException:  # noqa: BLE001 - an earlier step failed and is recorded so;
            return  # this one's inputs may not be, and the caller's error is raised
        self._failed(step, exc)

    def _finish(
        self,
        step: Step,
        result: Any,
        rows: int,
        follow: Callable[[], Lineage],
        reason: str | None = None,
        columns: list[dict[str, str]] | None = None,
    ) -> None:
        """Queue the step's following and recording, and track its output."""
        before = step.used[0][1]
        label = step.payload["name"]
        ended = utc_now()
        sources = tuple(dict.fromkeys(s for _, t in step.used for s in t.sources))
        out = Tracked(
            self._recorder.follow(follow),
            rows,
            before.key,
            before.subject,
            label,
            sources,
            (*before.steps, label),
            columns=columns,
        )
        blobs, step_sets = self.ledger.blobs_dir, self.step_sets

        def save() -> dict[str, Any]:
            found = out.lineage.result()
            assert found.changes is not None
            root = saved_set(found.snapshot, blobs) if step_sets else None
            return {
                "counts": found.changes.counts(before.rows, found.snapshot.rows),
                "matched_by": found.changes.matched_by,
                "output_root": root,
                **found.changes.saved(blobs),
                "reason": reason,
                "ended_at": ended,
                "columns": columns,
            }

        def done(recorded: dict[str, Any]) -> None:
            out.event, out.root = self._event(step, recorded).digest, recorded["output_root"]

        self._recorder.record(save, done, lambda exc: self._failed(step, exc, ended))
        self._track(result, out)

    # -- datasets --------------------------------------------------------------------------
    def dataset(self, data: Any, name: str, *, version: str | None = None) -> Entry:
        """Record `data` as the dataset `name@version`: its record set, sources and steps in
        order. Without a version it is counted (`v1`, `v2`, ...); the same content as a
        recorded version is that version, and nothing new is recorded (ADR 0018). Waits
        for the steps before it to be recorded."""
        run = self._require_open(f"dataset {name}")
        tracked = self._lookup(data, f"dataset {name}")
        self._recorder.take(wait=True)
        assert tracked.event is not None  # appended, or take() raised
        root = tracked.root or saved_set(tracked.snapshot(), self.ledger.blobs_dir)
        payload = {
            "name": name,
            "version": version,
            "record_count": tracked.rows,
            "record_root": root,
            "pairs_root": pairs_root(tracked.snapshot(), self.ledger.blobs_dir, root),
            "sources": list(tracked.sources),
            "steps": list(tracked.steps),
            "columns": tracked.columns,
        }
        parents = [run, tracked.event]
        entry = names.recorded_dataset(self.ledger, payload, parents)
        if entry is None:
            payload["version"] = version or names.next_version(self.ledger, name)
            entry = self._append("dataset", payload, parents)
        self._outputs.append(entry.digest)
        return entry
