"""Typed payloads, one model per event type.

They start small; later capabilities add fields. A payload is validated when an event is
created and stored as its JSON form (`None` fields left out), so the digest never depends
on which optional fields a model happens to declare.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mlprov.digest import Digest

__all__ = [
    "PAYLOADS",
    "BuildPayload",
    "DatasetPayload",
    "EvaluationPayload",
    "EventType",
    "Payload",
    "PredictionPayload",
    "QuarantinePayload",
    "ReleasePayload",
    "ReviewPayload",
    "ReviewStatus",
    "SourcePayload",
    "TransformPayload",
]


class EventType(StrEnum):
    SOURCE = "source"
    TRANSFORM = "transform"
    DATASET = "dataset"
    REVIEW = "review"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    BUILD = "build"
    EVALUATION = "evaluation"
    PREDICTION = "prediction"


class ReviewStatus(StrEnum):
    ACCEPTED = "accepted"
    ACCEPTED_WITH_LIMITS = "accepted_with_limits"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=4000)]
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:+-]*")


class Payload(BaseModel):
    """Base of every payload: frozen, and unknown fields are an error rather than lost."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label_field: ClassVar[str | None] = "name"

    @classmethod
    def label_of(cls, data: Mapping[str, Any]) -> str | None:
        """The name an event of this type is listed under (`mlprov log --name`)."""
        if cls.label_field is None:
            return None
        value = data.get(cls.label_field)
        return value if isinstance(value, str) else None


class _Named(Payload):
    name: Name

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v) or "@" in v:
            raise ValueError(
                "a name is letters, digits and . _ / : + - (no spaces, no '@'); "
                "put the version in `version`"
            )
        return v


class SourcePayload(_Named):
    """A versioned input, listed as `name@version`."""

    version: Name
    rights_basis: Text | None = None
    license: Text | None = None
    owner: Text | None = None
    collected: tuple[str, str] | None = None
    personal_data: bool | None = None
    uri: Text | None = None
    byte_digest: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    record_root: Digest | None = None

    @classmethod
    def label_of(cls, data: Mapping[str, Any]) -> str | None:
        return f"{data.get('name')}@{data.get('version')}"


class TransformPayload(_Named):
    """One run of a versioned step (`pii-redaction-v3`), with its parameters."""

    params: dict[str, Any] = Field(default_factory=dict)
    code_digest: Digest | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    status: Annotated[str, StringConstraints(pattern="^(succeeded|failed)$")] = "succeeded"


class DatasetPayload(_Named):
    """The receipt of a training set."""

    byte_digest: Digest | None = None
    record_count: int | None = Field(default=None, ge=0)
    record_root: Digest | None = None


class ReviewPayload(Payload):
    """A reviewer's judgement of a source or dataset (the target event)."""

    label_field: ClassVar[str | None] = None
    target: Digest
    status: ReviewStatus
    reviewer: Name
    limits: tuple[Text, ...] = ()
    risks: tuple[Text, ...] = ()
    note: Text | None = None


class QuarantinePayload(Payload):
    """Blocks a source from the blocked uses until the exit condition is met."""

    label_field: ClassVar[str | None] = "source"
    source: Name
    trigger: Text
    blocked_use: tuple[Name, ...] = ("training",)
    allowed_use: tuple[Name, ...] = ()
    exit_condition: Text


class ReleasePayload(Payload):
    """Lifts a quarantine, citing the events that meet its exit condition."""

    label_field: ClassVar[str | None] = "source"
    source: Name
    quarantine: Digest
    evidence: tuple[Digest, ...] = Field(min_length=1)
    note: Text | None = None


class BuildPayload(_Named):
    """A training run that produced a model artifact."""

    artifact_digest: Digest | None = None
    manifest: Digest | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    code_version: Text | None = None
    eval_set: Text | None = None


class EvaluationPayload(_Named):
    """Metrics of a build on a named evaluation set."""

    build: Digest
    metrics: dict[str, float] = Field(default_factory=dict)


class PredictionPayload(Payload):
    """One inference: input and output digests and, for RAG, the retrieved chunks."""

    label_field: ClassVar[str | None] = None
    build: Digest
    input_digest: Digest
    output_digest: Digest
    retrieved: tuple[Digest, ...] = ()


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
}
