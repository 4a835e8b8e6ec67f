"""The shapes of request bodies and of the server's own answers (the library's answers
keep the JSON of their `to_json()`, the same the command line's `--json` prints)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EventBody",
    "Health",
    "QuarantineBody",
    "ReleaseBody",
    "ReviewBody",
    "TokenBody",
    "TokenCreated",
    "TokenFacts",
    "WhyBody",
]

Text = Field(min_length=1, max_length=2000)
Ref = Field(min_length=1, max_length=500, description="NAME, NAME@VERSION, or a digest or prefix")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: Literal["ok"]


class TokenFacts(BaseModel):
    """A token's facts: never the token, never its hash."""

    name: str
    role: str
    permissions: list[str]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    state: str


class TokenCreated(TokenFacts):
    token: str = Field(description="The token itself: shown this once, never stored.")


class TokenBody(_Body):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["reader", "recorder", "reviewer", "admin"]
    expires: str | None = Field(
        None, max_length=40, description="A duration (90m, 12h, 30d) or a time (2026-12-31)."
    )


class WhyBody(_Body):
    """`mlprov why --model MODEL` with exactly one of subject, key, record and digest."""

    model: str = Ref
    subject: str | None = Field(None, min_length=1, max_length=500)
    key: str | None = Field(None, min_length=1, max_length=500)
    record: dict[str, Any] | None = None
    digest: str | None = Field(None, min_length=1, max_length=80)


class EventBody(_Body):
    """`mlprov record TYPE --payload JSON --parent D...`, for the types a recorder records."""

    type: Literal["source", "transform", "dataset", "build", "evaluation", "prediction", "run"]
    payload: dict[str, Any]
    parents: list[str] = Field(default_factory=list, max_length=1000)


class ReviewBody(_Body):
    """`mlprov review TARGET --status S ...`; the reviewer is the token's name."""

    target: str = Ref
    status: Literal["accepted", "accepted_with_limits", "quarantined", "rejected"]
    limits: list[str] = Field(default_factory=list, max_length=100)
    risks: list[str] = Field(default_factory=list, max_length=100)
    note: str | None = Field(None, max_length=2000)
    separate_duties: bool = False


class QuarantineBody(_Body):
    """`mlprov quarantine SOURCE --trigger T --exit-condition C ...`."""

    source: str = Ref
    trigger: str = Text
    exit_condition: str = Text
    blocked_use: list[str] = Field(default_factory=lambda: ["training"], max_length=100)
    allowed_use: list[str] = Field(default_factory=list, max_length=100)


class ReleaseBody(_Body):
    """`mlprov release SOURCE --evidence EVENT... [--note N]`."""

    source: str = Ref
    evidence: list[str] = Field(min_length=1, max_length=1000)
    note: str | None = Field(None, max_length=2000)
