"""Events: the immutable unit of the ledger.

An event is `{type, schema_version, payload, parents, actor, recorded_at}`. Its digest is
the SHA-256 of the RFC 8785 canonical JSON of all six fields, so nothing about an event
lives outside its digest. Parents are a set of earlier event digests, kept sorted so
that the same set always encodes the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from mlprov.digest import Digest, canonical_json
from mlprov.errors import InputError
from mlprov.ledger.payloads import PAYLOADS, EventType, Payload

__all__ = ["SCHEMA_VERSION", "Entry", "Event", "utc_now"]

#: The version of the event envelope; payload models evolve within it.
SCHEMA_VERSION = 1

_FIELDS = frozenset({"type", "schema_version", "payload", "parents", "actor", "recorded_at"})
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ACTOR_MAX = 256


def utc_now() -> str:
    """The current time as the ledger writes it: RFC 3339, UTC, microseconds, `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Event:
    """One provenance event, not yet (or already) in a ledger. Build it with `Event.create`."""

    type: EventType
    payload: Mapping[str, Any]
    parents: tuple[Digest, ...]
    actor: str
    recorded_at: str
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.type, EventType):
            raise InputError(f"unknown event type {self.type!r}", f"use one of {_types()}")
        if not self.actor or len(self.actor) > _ACTOR_MAX or not self.actor.isprintable():
            raise InputError(
                f"invalid actor {self.actor!r}",
                f"give a printable identity of 1 to {_ACTOR_MAX} characters",
            )
        if not _TIME_RE.fullmatch(self.recorded_at):
            raise InputError(
                f"invalid recorded_at {self.recorded_at!r}",
                "use RFC 3339 UTC with microseconds, e.g. 2026-05-22T09:30:00.000000Z",
            )
        if list(self.parents) != sorted(set(self.parents)):
            raise InputError("event parents must be sorted and unique", "use Event.create")

    @classmethod
    def create(
        cls,
        type: EventType | str,
        payload: Payload | Mapping[str, Any],
        *,
        actor: str,
        parents: Iterable[Digest | str] = (),
        recorded_at: str | None = None,
    ) -> Event:
        """Validate the payload against its type's model and build the event."""
        try:
            kind = EventType(type)
        except ValueError:
            raise InputError(f"unknown event type {type!r}", f"use one of {_types()}") from None
        model = PAYLOADS[kind]
        try:
            typed = (
                payload
                if isinstance(payload, model)
                else model.model_validate(
                    payload.model_dump() if isinstance(payload, BaseModel) else payload
                )
            )
        except ValidationError as exc:
            raise InputError(
                f"invalid {kind.value} payload: {_validation_message(exc)}",
                f"see the fields of {model.__name__}",
            ) from None
        data = typed.model_dump(mode="json", exclude_none=True)
        digests = sorted({p if isinstance(p, Digest) else Digest.parse(p) for p in parents})
        return cls(kind, data, tuple(digests), actor, recorded_at or utc_now())

    @property
    def name(self) -> str | None:
        """The name this event is listed under (a source's `name@version`, a step's name)."""
        return PAYLOADS[self.type].label_of(dict(self.payload))

    def typed_payload(self) -> Payload:
        """The payload as its typed model."""
        return PAYLOADS[self.type].model_validate(self.payload)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "schema_version": self.schema_version,
            "payload": self.payload,
            "parents": list(self.parents),
            "actor": self.actor,
            "recorded_at": self.recorded_at,
        }

    def encode(self) -> bytes:
        """The canonical bytes: what is hashed, stored and signed."""
        return canonical_json(self.to_json())

    @classmethod
    def decode(cls, body: bytes) -> Event:
        """Read an event back from its canonical bytes (the envelope is checked strictly)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"event body is not JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise InputError("event body does not have exactly the six event fields")
        parents = data["parents"]
        if not isinstance(parents, list) or not isinstance(data["payload"], dict):
            raise InputError("event body has malformed parents or payload")
        if data["schema_version"] != SCHEMA_VERSION:
            raise InputError(
                f"event schema_version {data['schema_version']!r} is not supported",
                "upgrade mlprov",
            )
        try:
            kind = EventType(data["type"])
        except ValueError:
            raise InputError(f"unknown event type {data['type']!r}") from None
        return cls(
            kind,
            data["payload"],
            tuple(Digest(p) for p in parents),
            data["actor"],
            data["recorded_at"],
        )


def _types() -> str:
    return ", ".join(t.value for t in EventType)


@dataclass(frozen=True, slots=True)
class Entry:
    """An event as recorded: its position in the log, its digest and its exact bytes."""

    seq: int
    digest: Digest
    event: Event
    body: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "digest": str(self.digest), **self.event.to_json()}
