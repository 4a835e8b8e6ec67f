"""Typed payloads, one model per event type.

They start small; later capabilities add fields. A payload is validated when an event is
created and stored as its JSON form (`None` fields left out), so the digest never depends
on which optional fields a model happens to declare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mlprov import validation
from mlprov.digest import Digest
from mlprov.ledger.kinds import (
    EventType,
    ReviewStatus,
    step_base,
    step_version,
)

__all__ = [
    "PAYLOADS",
    "AccessPayload",
    "Acquisition",
    "BuildPayload",
    "Column",
    "DatasetPayload",
    "EvaluationPayload",
    "EventType",
    "Payload",
    "PredictionPayload",
    "QuarantinePayload",
    "ReleasePayload",
    "ReviewPayload",
    "ReviewStatus",
    "RunPayload",
    "SourcePayload",
    "TransformPayload",
    "Used",
    "step_base",
    "step_version",
    "trained_dataset",
]


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=4000)]


def _version(v: str) -> str:
    problem = validation.version_problem(v)
    if problem:
        raise ValueError(f"{problem}: {validation.VERSION_FORM}")
    return v


Version = Annotated[str, AfterValidator(_version)]
# base64 of a 4-byte key hash and a 64-byte Ed25519 signature: 92 characters.
Signature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{91}=$")]


class Payload(BaseModel):
    """Base of every payload: frozen, and unknown fields are an error rather than lost.
    (The name an event is listed under is `mlprov.ledger.kinds.label_of`.)"""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(Payload):
    name: Name

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if validation.name_problem(v):
            raise ValueError(validation.NAME_FORM + "; put the version in `version`")
        return v


class Column(BaseModel):
    """One column of the data a source, step or dataset held: its name and Arrow type."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Text
    type: Text


Acquisition = Literal["public", "licensed", "purchased", "crawled", "user", "synthetic", "other"]


class SourcePayload(_Named):
    """A versioned input, listed as `name@version`.

    Beside rights and ownership it may carry the facts the disclosures ask for (see
    `mlprov.answers.reports`): how it was obtained (`acquisition`: a public dataset, licensed or
    purchased from a rightsholder, crawled, user data, synthetic, other), the original
    purpose of collection, its modality and languages, a description of its data points,
    its copyright status, and whether it holds aggregate consumer information. `collected`
    is the collection period (start, end); an end of `ongoing` says collection continues.
    """

    version: Version
    rights_basis: Text | None = None
    license: Text | None = None
    owner: Text | None = None
    collected: tuple[str, str] | None = None
    personal_data: bool | None = None
    acquisition: Acquisition | None = None
    purpose: Text | None = None
    modality: Name | None = None
    languages: tuple[Name, ...] | None = None
    description: Text | None = None
    copyright: Literal["protected", "public_domain", "mixed"] | None = None
    aggregate_consumer_info: bool | None = None
    uri: Text | None = None
    byte_digest: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    record_root: Digest | None = None
    # Commits each record's key and subject beside the record root (ADR 0020); absent in
    # ledgers written before it, whose answers cannot prove those links.
    pairs_root: Digest | None = None
    columns: tuple[Column, ...] | None = None

    @field_validator("collected")
    @classmethod
    def _period(cls, v: tuple[str, str] | None) -> tuple[str, str] | None:
        problem = None if v is None else validation.period_problem(*v)
        if problem:
            raise ValueError(f"{problem}: {validation.PERIOD_FORM}")
        return v


Time = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")]
Status = Literal["succeeded", "failed"]


class Used(BaseModel):
    """An input a step used, by role: the data it changed (`input`) or a list it consulted
    (`using`, such as an opt-out list), with the event that recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Name
    event: Digest
    name: Name | None = None
    record_root: Digest | None = None


class TransformPayload(_Named):
    """One run of a versioned step (`pii-redaction-v3`), with its parameters.

    Pipeline capture fills the rest: the step's place in its run, the code that ran, what
    it used, the record set it produced, and the record-level changes file (removed,
    changed and added records by key and digest, never contents).
    """

    version: Version | None = None
    kind: Literal["transform", "exclusion"] = "transform"
    step: int | None = Field(default=None, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)
    purpose: Text | None = None
    code_digest: Digest | None = None
    code_basis: Literal["source", "bytecode"] | None = None
    function: Text | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    status: Status = "succeeded"
    error: Text | None = None
    reason: Name | None = None
    started_at: Time | None = None
    ended_at: Time | None = None
    used: tuple[Used, ...] = ()
    matched_by: Literal["key", "digest"] | None = None
    output_root: Digest | None = None
    changes: Digest | None = None
    # The root over the changes file's parts, when it is indexed (ADR 0021).
    changes_root: Digest | None = None
    columns: tuple[Column, ...] | None = None  # of its output
    # A step described by a hand-written manifest (`mlprov manifest record`), not captured.
    recorded_from: Literal["manifest"] | None = None


class DatasetPayload(_Named):
    """The receipt of a training set: what it holds, and where that came from.

    A pipeline fills the first fields. A dataset recorded from a hand-written manifest
    (`mlprov manifest record`) also carries that manifest, normalised to the JSON form of
    `mlprov.governance.manifest.Manifest` (checked by that model when it is read back), and the
    SHA-256 of the file as given.
    """

    version: Version | None = None
    byte_digest: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    record_root: Digest | None = None
    pairs_root: Digest | None = None  # as for a source (ADR 0020)
    sources: tuple[Name, ...] = ()
    steps: tuple[Name, ...] = ()
    manifest: dict[str, Any] | None = None
    manifest_digest: Digest | None = None
    columns: tuple[Column, ...] | None = None


class RunPayload(_Named):
    """A pipeline run: opened with `started`, closed with `succeeded` or `failed`.

    A run whose closing event is missing was interrupted; one that `failed` names the
    error. The environment (code version, interpreter, packages) is recorded at the start.
    """

    run_id: Annotated[str, StringConstraints(pattern="^[0-9a-f]{16}$")]
    status: Literal["started", "succeeded", "failed"]
    git_commit: Annotated[str, StringConstraints(pattern="^[0-9a-f]{40,64}$")] | None = None
    git_dirty: bool | None = None
    python: Text | None = None
    platform: Text | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    steps: int | None = Field(default=None, ge=0)
    error: Text | None = None


class ReviewPayload(Payload):
    """A reviewer's judgement of a source or dataset (the target event).

    A signed review carries the reviewer's Ed25519 signature over the rest of the payload
    (see `mlprov.governance.signoff`): `key_name` names the key, and `signature` is base64
    of the key's 4-byte hash and the signature, as in a C2SP signed-note signature line.
    """

    target: Digest
    status: ReviewStatus
    reviewer: Name
    limits: tuple[Text, ...] = ()
    risks: tuple[Text, ...] = ()
    note: Text | None = None
    key_name: Name | None = None
    signature: Signature | None = None

    @model_validator(mode="after")
    def _signed_by_a_key(self) -> ReviewPayload:
        if (self.key_name is None) != (self.signature is None):
            raise ValueError("a signed review needs both key_name and signature")
        return self


class QuarantinePayload(Payload):
    """Blocks a source from the blocked uses until the exit condition is met."""

    source: Name
    trigger: Text
    blocked_use: tuple[Name, ...] = ("training",)
    allowed_use: tuple[Name, ...] = ()
    exit_condition: Text


class ReleasePayload(Payload):
    """Lifts a quarantine, citing the events that meet its exit condition."""

    source: Name
    quarantine: Digest
    evidence: tuple[Digest, ...] = Field(min_length=1)
    note: Text | None = None


class BuildPayload(_Named):
    """A training run that produced a model artifact, and what it was allowed on."""

    artifact_digest: Digest | None = None
    artifact_kind: Literal["file", "directory"] | None = None
    artifact_files: int | None = Field(default=None, ge=0)
    artifact_semantics: Text | None = None
    dataset: Digest | None = None
    manifest: Digest | None = None  # a dataset event recorded from a hand-written manifest
    manifest_digest: Digest | None = None  # the frozen manifest (mlprov.governance.manifest_files)
    config: dict[str, Any] = Field(default_factory=dict)
    config_digest: Digest | None = None
    code_version: Text | None = None
    code_dirty: bool | None = None
    eval_set: Text | None = None  # NAME@VERSION, as shown
    eval_event: Digest | None = None  # the exact eval set event
    eval_root: Digest | None = None
    gate: Literal["passed", "blocked", "not_run"] | None = None
    forced: bool | None = None
    findings: tuple[Text, ...] = ()


def trained_dataset(build: Mapping[str, Any]) -> Digest | None:
    """The dataset event a build payload names: `dataset`, else the `manifest` (a dataset
    recorded from a hand-written manifest); None if it names neither."""
    link = build.get("dataset") or build.get("manifest")
    return Digest(link) if link else None


class EvaluationPayload(_Named):
    """Metrics of a build on a named evaluation set."""

    build: Digest
    metrics: dict[str, float] = Field(default_factory=dict)
    eval_set: Text | None = None  # NAME@VERSION, as shown
    eval_event: Digest | None = None  # the exact eval set event
    eval_root: Digest | None = None


class PredictionPayload(Payload):
    """One inference: input and output digests and, for RAG, the retrieved chunks."""

    build: Digest
    input_digest: Digest
    output_digest: Digest
    retrieved: tuple[Digest, ...] = ()
    # Which logger session and which call of it: two identical inferences stay two events.
    session: Annotated[str, StringConstraints(pattern="^[0-9a-f]{16,64}$")] | None = None
    index: int | None = Field(default=None, ge=0)


class AccessPayload(Payload):
    """A token of `mlprov serve` granted or revoked (ADR 0015): who may record as `token`.
    Never the token, never its hash: those stay in the server's token table."""

    token: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    action: Literal["granted", "revoked"]
    role: Literal["reader", "recorder", "reviewer", "admin"]
    expires_at: Time | None = None

    @field_validator("token")
    @classmethod
    def _token_name(cls, v: str) -> str:
        if validation.token_name_problem(v):
            raise ValueError(validation.TOKEN_NAME_FORM)
        return v


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.SOURCE: SourcePayload,
    EventType.TRANSFORM: TransformPayload,
    EventType.DATASET: DatasetPayload,
    EventType.REVIEW: ReviewPayload,
    EventType.QUARANTINE: QuarantinePayload,
    EventType.RELEASE: ReleasePayload,
    EventType.BUILD: BuildPayload,
    EventType.EVALUATION: EvaluationPayload,
    EventType.PREDICTION: PredictionPayload,
    EventType.RUN: RunPayload,
    EventType.ACCESS: AccessPayload,
}
