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
from typing import TYPE_CHECKING, Any

import orjson

from mlprov.digest import Digest, canonical_json
from mlprov.errors import InputError, IntegrityError
from mlprov.ledger.kinds import EventType, label_of

if TYPE_CHECKING:
    from pydantic import ValidationError

    from mlprov.ledger.payloads import Payload
    from mlprov.store.interface import EventRow

__all__ = [
    "SCHEMA_VERSION",
    "Entry",
    "Event",
    "FrozenDict",
    "envelope_problem",
    "freeze",
    "parse_time",
    "utc_now",
    "validation_message",
]

#: The version of the event envelope; payload models evolve within it.
SCHEMA_VERSION = 1

_FIELDS = frozenset({"type", "schema_version", "payload", "parents", "actor", "recorded_at"})
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_TYPES = frozenset(t.value for t in EventType)
_ACTOR_MAX = 256


def utc_now() -> str:
    """The current time as the ledger writes it: RFC 3339, UTC, microseconds, `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> str:
    """A user's time (`2026-05-22`, `2026-05-22T09:30:00+02:00`, ...) in the ledger's form.

    A time without a zone is taken as UTC. Raises InputError for anything else.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{text!r} is not a time", "use ISO 8601, e.g. 2026-05-22 or 2026-05-22T09:30:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FrozenDict(dict[str, Any]):
    """A dict that refuses change: an event's payload is part of its digest."""

    __slots__ = ()

    def _refuse(self, *_args: object, **_kwargs: object) -> None:
        raise TypeError("an event's payload cannot be changed; create a new event")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))


_SAFE = 2**53 - 1


def freeze(value: Any, *, parsed: bool = False) -> Any:
    """Deep-freeze a JSON value: objects to FrozenDict, arrays to tuples.

    With `parsed` (a value read back from canonical JSON), integers beyond ±(2**53 - 1)
    become floats again: canonical JSON writes an integral float such as 1e16 as plain
    digits, which a JSON reader takes for an integer. A caller's own big integer is left
    alone, for canonical_json to refuse rather than round.
    """
    t = type(value)
    if t is dict or t is FrozenDict:
        return FrozenDict({k: freeze(v, parsed=parsed) for k, v in value.items()})
    if t is list or t is tuple:
        return tuple(freeze(v, parsed=parsed) for v in value)
    if parsed and t is int and not -_SAFE <= value <= _SAFE:
        return float(value)
    return value


def envelope_problem(data: object) -> str | None:
    """Why a decoded event body is not a well-formed event envelope, or None if it is one.

    Checks the six fields and their forms, not the payload's model: payload models evolve,
    while the envelope is what the digest and the DAG rest on. (On verify's hot path:
    plain loops and exact type checks, no generator expressions.)
    """
    if type(data) is not dict or len(data) != len(_FIELDS) or data.keys() != _FIELDS:
        return "it does not have exactly the six event fields"
    version = data["schema_version"]
    if type(version) is not int or version != SCHEMA_VERSION:
        return f"schema_version {version!r} is not supported"
    kind = data["type"]
    if type(kind) is not str or kind not in _TYPES:
        return f"unknown event type {kind!r}"
    actor = data["actor"]
    if type(actor) is not str or not 0 < len(actor) <= _ACTOR_MAX or not actor.isprintable():
        return "its actor is not a printable identity of 1 to 256 characters"
    stamp = data["recorded_at"]
    if type(stamp) is not str or len(stamp) != 27 or not _TIME_RE.fullmatch(stamp):
        return "its recorded_at is not RFC 3339 UTC with microseconds"
    parents = data["parents"]
    if type(parents) is not list:
        return "its parents are not a list"
    for p in parents:
        if type(p) is not str or len(p) != 71 or not _DIGEST_RE.fullmatch(p):
            return "its parents are not all sha256:<hex> digests"
    if len(parents) > 1 and parents != sorted(set(parents)):
        return "its parents are not sorted and unique"
    if type(data["payload"]) is not dict:
        return "its payload is not an object"
    return None


def validation_message(exc: ValidationError, whole: str = "payload") -> str:
    """The first few problems pydantic found, each as `field.path: message`."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or whole
        message = str(err["msg"])
        if err["type"] in ("value_error", "assertion_error"):  # our own validator's words
            message = message.partition(", ")[2] or message
        parts.append(f"{where}: {message}")
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
    # The canonical bytes, computed once: they are needed for the digest, the store and
    # every child's parent link.
    _body: bytes | None = field(default=None, init=False, repr=False, compare=False)

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
        if type(self.payload) is not FrozenDict:
            object.__setattr__(self, "payload", freeze(dict(self.payload)))

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
        from pydantic import BaseModel, ValidationError

        from mlprov.ledger.payloads import PAYLOADS

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
                f"invalid {kind.value} payload: {validation_message(exc)}",
                f"a {kind.value} payload has the fields " + ", ".join(model.model_fields),
            ) from None
        data = freeze(typed.model_dump(mode="json", exclude_none=True))
        digests = sorted({p if isinstance(p, Digest) else Digest.parse(p) for p in parents})
        return cls(kind, data, tuple(digests), actor, recorded_at or utc_now())

    @property
    def name(self) -> str | None:
        """The name this event is listed under (a source's `name@version`, a step's name)."""
        return label_of(self.type, self.payload)

    def typed_payload(self) -> Payload:
        """The payload as its typed model."""
        from mlprov.ledger.payloads import PAYLOADS

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
        body = self._body
        if body is None:
            body = canonical_json(self.to_json())
            object.__setattr__(self, "_body", body)
        return body

    @property
    def digest(self) -> Digest:
        """The event's digest: SHA-256 of its canonical bytes."""
        return Digest.of_bytes(self.encode())

    @classmethod
    def decode(cls, body: bytes) -> Event:
        """Read an event back from its canonical bytes (the envelope is checked strictly)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"event body is not JSON: {exc}") from None
        problem = envelope_problem(data)
        if problem is not None:
            raise InputError(f"event body is malformed: {problem}")
        return cls(
            EventType(data["type"]),
            freeze(data["payload"], parsed=True),
            tuple(Digest(p) for p in data["parents"]),
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

    @classmethod
    def of_row(cls, row: EventRow) -> Entry:
        """The entry a store's row holds; IntegrityError if its bytes are damaged."""
        try:
            event = Event.decode(row.body)
        except InputError as exc:  # what the store holds is damaged, not what the user typed
            raise IntegrityError(
                f"event {row.seq} in the store is damaged: {exc.message}",
                "run `mlprov verify` to see what was changed",
            ) from None
        return cls(row.seq, Digest.from_raw(row.digest), event, row.body)
