"""Builds and evaluations: a model artifact linked to the exact data, config and code.

`record_build` records a `build` event parented by its dataset (and eval set): the
artifact's digest (see :mod:`mlprov.capture.artifact` for the file and directory
semantics), the digest of the dataset's manifest frozen at build time (see
:mod:`mlprov.governance.manifest_files`), the training config and its digest, the code version (the
caller's git commit and whether the work tree was dirty), and the result of the gates. A gate is a
callable that looks at the dataset and returns what blocks it; by default the training
gates of the ledger's policy run (see :mod:`mlprov.governance.policy`). A blocked build is refused
with GateBlocked unless forced, and a forced one records the override and its findings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec

from mlprov.capture.environment import git_state
from mlprov.digest import Digest, canonical_json, digest_file
from mlprov.errors import GateBlocked, InputError, NotFoundError
from mlprov.governance.manifest_files import freeze
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.names import label
from mlprov.ledger.payloads import trained_dataset

__all__ = ["Gate", "evaluates", "record_build", "record_evaluation", "recorded", "trained_on"]

P = ParamSpec("P")

#: A gate: given the ledger and the dataset's event, the reasons it blocks (none: passes).
Gate = Callable[[LedgerCore, Entry], Sequence[str]]
_CONFIG_MAX = 64 * 1024  # larger configs are recorded by digest only


def recorded(ledger: LedgerCore, ref: Entry | Digest | str, types: tuple[str, ...]) -> Entry:
    """The event `ref` names — an Entry, NAME (the newest), NAME@VERSION, or a digest or
    prefix — checked to be of one of `types` (the one resolver: `mlprov.ledger.names`)."""
    return ledger.find(ref, types).entry


def trained_on(ledger: LedgerCore, ref: Entry | Digest | str) -> tuple[Entry | None, Entry]:
    """A build and the dataset it names, or (None, the dataset) when `ref` is a dataset."""
    target = recorded(ledger, ref, ("build", "dataset"))
    if target.event.type.value == "dataset":
        return None, target
    link = trained_dataset(target.event.payload)
    if link is None:
        raise InputError(
            f"build {target.event.name} names no dataset: it has no recorded training set",
            "record builds with `ledger.build(..., dataset=...)`",
        )
    return target, ledger.get(link)


def _config(config: Mapping[str, Any] | Path | str | None) -> tuple[dict[str, Any], Digest | None]:
    if config is None:
        return {}, None
    if isinstance(config, str | Path):
        path = Path(config)
        if not path.is_file():
            raise NotFoundError(f"no config file at {path}", "give a path or a dict")
        return {}, digest_file(path)
    if not isinstance(config, Mapping):
        raise InputError(f"config must be a dict or a file, not {type(config).__name__}")
    try:
        body = canonical_json(dict(config))
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"the config is not JSON: {exc}", "give JSON values only") from None
    return (dict(config) if len(body) <= _CONFIG_MAX else {}), Digest.of_bytes(body)


def record_build(
    ledger: LedgerCore,
    name: str,
    *,
    dataset: Entry | Digest | str,
    config: Mapping[str, Any] | Path | str | None = None,
    eval_set: Entry | Digest | str | None = None,
    artifact: Path | str | None = None,
    code_version: str | None = None,
    repo: Path | None = None,
    gates: Sequence[Gate] | None = None,
    force: bool = False,
    actor: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Entry:
    """Record a training run: see the module doc. `gates=None` runs the training gates of
    the ledger's policy; `gates=()` runs none (recorded as `not_run`). Raises GateBlocked
    for a blocked build unless `force`; nothing is recorded then."""
    data = recorded(ledger, dataset, ("dataset",))
    if gates is None:
        from mlprov.governance.policy import build_gates

        gates = build_gates(ledger, "training")
    evaluation = recorded(ledger, eval_set, ("dataset", "source")) if eval_set else None
    findings = tuple(f for gate in gates for f in gate(ledger, data))
    if findings and not force:
        raise GateBlocked(
            f"build {name} is blocked: " + "; ".join(findings),
            "resolve the findings, or pass force=True to record an override",
            findings,
            cli_hint="resolve the findings, or pass --force to record an override",
        )
    body, config_digest = _config(config)
    found = None
    if artifact is not None:
        from mlprov.capture.artifact import artifact_digest

        found = artifact_digest(Path(artifact), progress=progress)
    git = git_state(repo or Path.cwd()) if code_version is None else None
    payload = {
        "name": name,
        "dataset": data.digest,
        "manifest_digest": _freeze(ledger, data),
        "artifact_digest": found.digest if found else None,
        "artifact_kind": found.kind if found else None,
        "artifact_files": len(found.files) if found else None,
        "artifact_semantics": found.semantics if found else None,
        "config": body,
        "config_digest": config_digest,
        "code_version": code_version or (git.commit if git else None),
        "code_dirty": git.dirty if git else None,
        "gate": ("blocked" if findings else "passed") if gates else "not_run",
        "forced": True if findings else None,
        "findings": list(findings),
    }
    return _append(ledger, "build", payload, data, evaluation, actor)


def _freeze(ledger: LedgerCore, dataset: Entry) -> Digest | None:
    """The frozen manifest's digest; None for a ledger without a folder for files."""
    try:
        return freeze(ledger, dataset)
    except NotFoundError:
        return None


def _append(
    ledger: LedgerCore,
    kind: str,
    payload: dict[str, Any],
    parent: Entry,
    evaluation: Entry | None,
    actor: str | None,
) -> Entry:
    """Record the event, parented by `parent` and the evaluation set, if any."""
    if evaluation is not None:  # by its exact event, named NAME@VERSION
        payload["eval_set"] = label(evaluation)
        payload["eval_event"] = evaluation.digest
        payload["eval_root"] = evaluation.event.payload.get("record_root")
    parents = [parent.digest] + ([evaluation.digest] if evaluation else [])
    return ledger.record(kind, payload, actor=actor, parents=parents)


def record_evaluation(
    ledger: LedgerCore,
    build: Entry | Digest | str,
    name: str,
    metrics: Mapping[str, float],
    *,
    eval_set: Entry | Digest | str | None = None,
    actor: str | None = None,
) -> Entry:
    """Record the metrics of a build on an evaluation set (a recorded dataset or source)."""
    made = recorded(ledger, build, ("build",))
    evaluation = recorded(ledger, eval_set, ("dataset", "source")) if eval_set else None
    payload = {
        "name": name,
        "build": made.digest,
        "metrics": dict(metrics),
    }
    return _append(ledger, "evaluation", payload, made, evaluation, actor)


def evaluates(
    ledger: LedgerCore,
    build: Entry | Digest | str,
    name: str,
    *,
    eval_set: Entry | Digest | str | None = None,
    actor: str | None = None,
) -> Callable[[Callable[P, Mapping[str, float]]], Callable[P, Mapping[str, float]]]:
    """Decorate a function that returns metrics: each call records them as an evaluation.

    ::

        @ledger.evaluates(build, "accuracy-v1", eval_set="heldout")
        def evaluate(model, rows) -> dict[str, float]: ...
    """
    made = recorded(ledger, build, ("build",))

    def wrap(fn: Callable[P, Mapping[str, float]]) -> Callable[P, Mapping[str, float]]:
        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> Mapping[str, float]:
            metrics = fn(*args, **kwargs)
            if not isinstance(metrics, Mapping):
                raise InputError(
                    f"{getattr(fn, '__name__', 'the evaluation')} returned a "
                    f"{type(metrics).__name__}, not a dict of metrics",
                    "return {metric name: number}",
                )
            record_evaluation(ledger, made, name, metrics, eval_set=eval_set, actor=actor)
            return metrics

        return call

    return wrap
