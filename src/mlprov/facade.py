"""The ledger as users hold it: what `mlprov.open()` returns.

:class:`Ledger` is the core ledger (:class:`mlprov.ledger.LedgerCore`: events, the log,
checkpoints, keys, record sets) with the domain's conveniences on top — the pipeline,
builds, evaluations, predictions and `why` — each delegating to the package that holds
it. It holds no logic of its own, and nothing below it imports it. The domain packages
are imported on first use, so opening a ledger needs neither pyarrow nor the answers.

`Ledger.open("https://host:port", token=...)` (or `MLPROV_STORE` and `MLPROV_TOKEN`) gives
a :class:`RemoteLedger`: the same object over a ledger that `mlprov serve` keeps on
another machine, recording under the token's name (ADR 0019).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.remote import RemoteCore
from mlprov.store import Location, SqlStore, find
from mlprov.store.location import KEYS_ENV
from mlprov.store.remote import ServedStore, is_served, unsupported

if TYPE_CHECKING:
    from mlprov.answers.why.answer import Answer
    from mlprov.capture.pipeline import Pipeline
    from mlprov.capture.predictions import PredictionLogger
    from mlprov.export.bundle import Bundle
    from mlprov.ledger.keys import SignerKey

__all__ = ["Ledger", "RemoteLedger"]


class Ledger(LedgerCore):
    """A provenance ledger: open one with `mlprov.open()`, or create one with
    `Ledger.init(directory)`."""

    @classmethod
    def open(
        cls, store: str | None = None, *, cwd: Path | None = None, token: str | None = None
    ) -> Self:
        """Open the ledger named by `store`, `MLPROV_STORE`, or the nearest `.mlprov/`; an
        `http(s)://` URL opens the ledger that `mlprov serve` keeps there, with `token`
        (default `MLPROV_TOKEN`)."""
        location = find(store, cwd=cwd)
        if is_served(location.url):
            if not issubclass(RemoteLedger, cls):
                unsupported(f"be opened as a {cls.__name__}", "open it with mlprov.open(URL)")
            # No local folder: a nearby .mlprov/ is another ledger, whose secret, keys and
            # policy are not this one's. Only MLPROV_KEYS names keys for a served ledger.
            keys = location.keys_dir if os.environ.get(KEYS_ENV) else None
            served = Location(location.url, None, keys)
            return cast(Self, RemoteLedger(ServedStore(location.url, token), served))
        return cls(SqlStore.open(location.url), location)

    # -- capture (see mlprov.capture) -----------------------------------------------------
    def pipeline(self, name: str, **options: Any) -> Pipeline:
        """A recorded pipeline run named `name`: use it as `with ledger.pipeline(...) as p:`.

        Options: `actor`, `allow_unversioned`, `repo` (whose git state is recorded; default:
        the caller's folder), `checkpoint` (sign a checkpoint when the run ends; default on),
        `openlineage` (an OpenLineage HTTP endpoint to send the run's events to as it runs:
        see `mlprov.export.feed`; needs mlprov[openlineage]).
        """
        from mlprov.capture.environment import caller_directory
        from mlprov.capture.pipeline import Pipeline

        options.setdefault("repo", caller_directory(1))
        url = options.pop("openlineage", None)
        if url is not None:
            from mlprov.export.feed import FeedPipeline

            return FeedPipeline(self, name, url=url, **options)
        return Pipeline(self, name, **options)

    def build(self, name: str, **options: Any) -> Entry:
        """Record a training run; see `mlprov.capture.build.record_build` for the options
        (`dataset`, `config`, `eval_set`, `artifact`, `code_version`, `gates`, `force`)."""
        from mlprov.capture.build import record_build
        from mlprov.capture.environment import caller_directory

        options.setdefault("repo", caller_directory(1))
        return record_build(self, name, **options)

    def evaluation(
        self, build: Entry | Digest | str, name: str, metrics: Mapping[str, float], **options: Any
    ) -> Entry:
        """Record a build's metrics on an evaluation set (`eval_set=`, a dataset or source)."""
        from mlprov.capture.build import record_evaluation

        return record_evaluation(self, build, name, metrics, **options)

    def evaluates(
        self, build: Entry | Digest | str, name: str, **options: Any
    ) -> Callable[[Callable[..., Mapping[str, float]]], Callable[..., Mapping[str, float]]]:
        """Decorate a metrics function: each call records its result as an evaluation."""
        from mlprov.capture.build import evaluates

        return evaluates(self, build, name, **options)

    def predictions(self, build: Entry | Digest | str, **options: Any) -> PredictionLogger:
        """A batched, thread-safe logger of a build's predictions; close it (or use `with`)."""
        from mlprov.capture.build import recorded
        from mlprov.capture.predictions import PredictionLogger

        return PredictionLogger(self, recorded(self, build, ("build",)).digest, **options)

    # -- answers (see mlprov.answers) -----------------------------------------------------
    def why(
        self,
        build: Entry | Digest | str,
        *,
        subject: str | None = None,
        key: str | None = None,
        record: Any = None,
        digest: str | None = None,
    ) -> Answer:
        """Is the record (or any record of the subject) in the build's training set, how did
        it get there, and why was it not removed: see :mod:`mlprov.answers.why`."""
        from mlprov.answers.why import why

        return why(self, build, subject=subject, key=key, record=record, digest=digest)

    # -- export (see mlprov.export) -------------------------------------------------------
    def export(
        self,
        format: str,
        target: Entry | Digest | str | None = None,
        *,
        syntax: str = "json",
        data: Sequence[Path] = (),
        base: Path | None = None,
        key: SignerKey | None = None,
    ) -> bytes:
        """A build, dataset or the ledger in an open format, as `mlprov export FORMAT
        TARGET` writes it: `prov` (`syntax` json, turtle or jsonld), `croissant` (a
        dataset; `data` its record files, `base` the folder of the metadata), `intoto` (a
        build, signed with `key` or the ledger's key) or `openlineage` (see
        :func:`mlprov.export.bundle.export`)."""
        from mlprov.export.bundle import export

        return export(self, format, target, syntax=syntax, data=data, base=base, key=key)

    def export_bundle(
        self,
        build: Entry | Digest | str,
        directory: Path | str,
        *,
        data: Sequence[Path] = (),
        key: SignerKey | None = None,
    ) -> Bundle:
        """Write the auditor's bundle of a build into a new or empty `directory`: its
        events, their inclusion proofs at the newest signed checkpoint, the checkpoint and
        public keys, record-set roots, PROV, the signed attestation, the training set's
        Croissant when `data` (its record files) is given, and a README saying how to
        check each file without mlprov (:mod:`mlprov.export.bundle`)."""
        from mlprov.export.bundle import write_bundle

        return write_bundle(self, build, Path(directory), data=data, key=key)


class RemoteLedger(RemoteCore, Ledger):
    """The ledger kept by `mlprov serve` on another machine (see
    :mod:`mlprov.ledger.remote`): the same pipeline, builds and evaluations, recorded under
    the token's name."""

    def pipeline(self, name: str, **options: Any) -> Pipeline:
        from mlprov.capture.environment import caller_directory

        options.setdefault("repo", caller_directory(1))
        options.setdefault("actor", self.actor)
        return super().pipeline(name, **options)

    def build(self, name: str, **options: Any) -> Entry:
        from mlprov.capture.environment import caller_directory

        options.setdefault("repo", caller_directory(1))
        options.setdefault("actor", self.actor)
        return super().build(name, **options)

    def evaluation(
        self, build: Entry | Digest | str, name: str, metrics: Mapping[str, float], **options: Any
    ) -> Entry:
        options.setdefault("actor", self.actor)
        return super().evaluation(build, name, metrics, **options)

    def predictions(self, build: Entry | Digest | str, **options: Any) -> PredictionLogger:
        """As `Ledger.predictions`, written by another client of the server; under the
        token's name, as the server records nothing else (another actor is refused here,
        not by a writer that would retry it)."""
        actor = options.setdefault("actor", self.actor)
        if actor != self.actor:
            raise InputError(
                f"the actor is {actor}, but the server records everything under its "
                f"token's name, {self.actor}",
                "leave actor= out, or use a token of that name",
            )
        return super().predictions(build, **options)
