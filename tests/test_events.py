"""Events: typed payload validation, canonical encoding, and the digest covering every field."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.digest import Digest, canonical_json
from mlprov.errors import InputError
from mlprov.ledger.events import SCHEMA_VERSION, Event
from mlprov.ledger.payloads import EventType

A = Digest.of_bytes(b"a")
B = Digest.of_bytes(b"b")
C = Digest.of_bytes(b"c")
WHEN = "2026-05-22T09:30:00.123456Z"

VALID: dict[EventType, dict[str, Any]] = {
    EventType.SOURCE: {"name": "chats", "version": "2026-05-22", "personal_data": True},
    EventType.TRANSFORM: {"name": "pii-redaction-v3", "params": {"patterns": ["email"]}},
    EventType.DATASET: {"name": "train", "record_count": 10},
    EventType.REVIEW: {"target": A, "status": "accepted", "reviewer": "carol"},
    EventType.QUARANTINE: {
        "source": "chats@2026-05-22",
        "trigger": "complaint",
        "exit_condition": "legal sign-off",
    },
    EventType.RELEASE: {"source": "chats@2026-05-22", "quarantine": A, "evidence": [B]},
    EventType.BUILD: {"name": "support-bot-7b"},
    EventType.EVALUATION: {"name": "helpfulness", "build": A, "metrics": {"acc": 0.5}},
    EventType.PREDICTION: {"build": A, "input_digest": B, "output_digest": C},
    EventType.RUN: {"name": "train-pipeline", "run_id": "0123456789abcdef", "status": "started"},
    EventType.ACCESS: {"token": "carol@example.com", "action": "granted", "role": "reviewer"},
}

NAMES: dict[EventType, str | None] = {
    EventType.SOURCE: "chats@2026-05-22",
    EventType.TRANSFORM: "pii-redaction-v3",
    EventType.DATASET: "train",
    EventType.REVIEW: None,
    EventType.QUARANTINE: "chats@2026-05-22",
    EventType.RELEASE: "chats@2026-05-22",
    EventType.BUILD: "support-bot-7b",
    EventType.EVALUATION: "helpfulness",
    EventType.PREDICTION: None,
    EventType.RUN: "train-pipeline",
    EventType.ACCESS: "carol@example.com",
}

# For each type, one required field: leaving it out must be an error naming it.
REQUIRED: dict[EventType, str] = {
    EventType.SOURCE: "version",
    EventType.TRANSFORM: "name",
    EventType.DATASET: "name",
    EventType.REVIEW: "reviewer",
    EventType.QUARANTINE: "exit_condition",
    EventType.RELEASE: "evidence",
    EventType.BUILD: "name",
    EventType.EVALUATION: "build",
    EventType.PREDICTION: "output_digest",
    EventType.RUN: "status",
    EventType.ACCESS: "action",
}


def make(
    kind: EventType | str = "source", payload: dict[str, Any] | None = None, **kw: Any
) -> Event:
    kind = EventType(kind)
    kw.setdefault("actor", "alice@example.com")
    kw.setdefault("recorded_at", WHEN)
    return Event.create(kind, VALID[kind] if payload is None else payload, **kw)


def digest(ev: Event) -> Digest:
    return Digest.of_bytes(ev.encode())


def body(**changes: Any) -> bytes:
    """The canonical body of a valid event, with fields changed (or removed with ...)."""
    data = make("transform", parents=[A]).to_json()
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


# -- creation and payload validation ------------------------------------------------------


def test_every_event_type_has_a_valid_example() -> None:
    assert set(VALID) == set(EventType) == set(NAMES) == set(REQUIRED)


@pytest.mark.parametrize("kind", list(EventType))
def test_create_accepts_a_valid_payload_and_names_it(kind: EventType) -> None:
    ev = make(kind)
    assert ev.type is kind and ev.schema_version == SCHEMA_VERSION
    assert ev.name == NAMES[kind]
    assert Event.decode(ev.encode()).name == NAMES[kind]


@pytest.mark.parametrize("kind", list(EventType))
def test_missing_required_field_names_the_field(kind: EventType) -> None:
    payload = {k: v for k, v in VALID[kind].items() if k != REQUIRED[kind]}
    with pytest.raises(InputError, match=REQUIRED[kind]) as caught:
        make(kind, payload)
    assert kind.value in caught.value.message
    hint = caught.value.hint or ""  # the fields by name, not the model class behind them
    assert REQUIRED[kind] in hint and "Payload" not in hint


@pytest.mark.parametrize("kind", list(EventType))
def test_unknown_field_is_refused_and_named(kind: EventType) -> None:
    with pytest.raises(InputError, match="colour"):
        make(kind, {**VALID[kind], "colour": "red"})


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("source", "record_count", "many"),
        ("source", "record_count", -1),
        ("source", "personal_data", "perhaps"),
        ("source", "byte_digest", "md5:abc"),
        ("transform", "params", ["not", "a", "dict"]),
        ("transform", "status", "maybe"),
        ("transform", "counts", {"rows": "ten"}),
        ("review", "status", "fine"),
        ("review", "target", "sha256:" + "A" * 64),
        ("release", "evidence", []),
        ("evaluation", "metrics", {"acc": "high"}),
        ("prediction", "retrieved", "sha256:" + "0" * 64),
    ],
)
def test_wrong_type_or_value_is_refused_and_named(kind: str, field: str, value: object) -> None:
    payload = {**VALID[EventType(kind)], field: value}
    with pytest.raises(InputError, match=field):
        make(kind, payload)


@pytest.mark.parametrize(
    "name", ["chats@2026", "support chats", " chats", "chats\n", "", "-leading-dash", "x" * 201]
)
@pytest.mark.parametrize("kind", ["source", "transform", "dataset", "build", "evaluation"])
def test_bad_names_are_refused_and_named(kind: str, name: str) -> None:
    with pytest.raises(InputError, match="name"):
        make(kind, {**VALID[EventType(kind)], "name": name})


@pytest.mark.parametrize("name", ["a", "pii-redaction-v3", "org/data.set_v2:final+1", "A0"])
def test_plain_names_are_accepted(name: str) -> None:
    assert make("transform", {"name": name}).name == name


def test_unknown_type_is_refused() -> None:
    with pytest.raises(InputError, match="unknown event type 'sauce'") as caught:
        Event.create("sauce", {}, actor="a")
    assert caught.value.hint and "source" in caught.value.hint


def test_payload_is_stored_as_json_with_defaults_and_without_none() -> None:
    ev = make("transform", {"name": "t", "code_digest": None})
    assert dict(ev.payload) == {
        "name": "t",
        "kind": "transform",
        "params": {},
        "counts": {},
        "status": "succeeded",
        "used": (),
    }
    src = make("source", {"name": "s", "version": "1", "collected": ("2024-01", "2026-05")})
    assert src.payload["collected"] == ("2024-01", "2026-05")  # frozen: arrays are tuples


def test_parents_are_sorted_and_deduplicated() -> None:
    ev = make("transform", parents=[C, A, C, B, A])
    assert ev.parents == tuple(sorted({A, B, C}))
    assert all(isinstance(p, Digest) for p in ev.parents)
    assert ev.encode() == make("transform", parents=[A, B, C]).encode()


def test_parents_given_as_text_are_parsed() -> None:
    ev = make("transform", parents=[f"  {B}\n", str(A)])
    assert ev.parents == tuple(sorted([A, B]))


@pytest.mark.parametrize("bad", ["sha256:abc", A.hex, "SHA256:" + A.hex, "md5:" + A.hex])
def test_malformed_parent_is_refused(bad: str) -> None:
    with pytest.raises(InputError, match="digest"):
        make("transform", parents=[bad])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parents", (B, A) if A < B else (A, B)),  # unsorted
        ("parents", (A, A)),  # repeated
        ("actor", ""),
        ("actor", "x" * 257),
        ("actor", "tab\there"),
        ("recorded_at", "2026-05-22T09:30:00Z"),
        ("recorded_at", "2026-05-22 09:30:00.000000Z"),
        ("recorded_at", "2026-05-22T09:30:00.000000+00:00"),
    ],
)
def test_the_envelope_is_checked_on_construction(field: str, value: object) -> None:
    with pytest.raises(InputError):
        dataclasses.replace(make("transform"), **{field: value})


def test_actor_and_time_are_taken_as_given() -> None:
    ev = make("source", actor="x" * 256)
    assert ev.actor == "x" * 256 and ev.recorded_at == WHEN


def test_recorded_at_defaults_to_now_in_the_ledger_format() -> None:
    ev = Event.create("source", VALID[EventType.SOURCE], actor="a")
    Event.decode(ev.encode())  # the default time passes the strict format check
    assert ev.recorded_at.endswith("Z") and len(ev.recorded_at) == len(WHEN)


# -- encoding -----------------------------------------------------------------------------


def test_encode_is_the_canonical_json_of_all_six_fields() -> None:
    ev = make("transform", parents=[B, A])
    data = orjson.loads(ev.encode())
    assert set(data) == {"type", "schema_version", "payload", "parents", "actor", "recorded_at"}
    assert data["schema_version"] == SCHEMA_VERSION
    assert ev.encode() == canonical_json(ev.to_json()) == rfc8785.dumps(ev.to_json())
    assert b" " not in ev.encode().replace(b"alice@example.com", b"")


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
params_dicts = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def reordered(value: Any) -> Any:
    """The same JSON value with every object's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(params=params_dicts)
def test_decode_inverts_encode(params: dict[str, Any]) -> None:
    ev = make("transform", {"name": "step", "params": params}, parents=[B, A])
    raw = ev.encode()
    back = Event.decode(raw)
    assert back == ev
    assert back.encode() == raw  # canonical: re-encoding the decoded event is byte-identical
    assert raw == rfc8785.dumps(ev.to_json())  # an independent RFC 8785 implementation agrees


@pytest.mark.parametrize("value", [2.0**53, 1e16, 2.067792727066943e16, -1e18])
def test_decode_inverts_encode_for_large_integral_floats(value: float) -> None:
    ev = make("transform", {"name": "step", "params": {"x": value}})
    back = Event.decode(ev.encode())
    assert back == ev
    assert back.encode() == ev.encode()


@settings(max_examples=100, deadline=None)
@given(params=params_dicts)
def test_encoding_does_not_depend_on_key_order(params: dict[str, Any]) -> None:
    one = make("transform", {"name": "step", "params": params})
    two = make("transform", {"params": reordered(params), "name": "step"})
    assert one.encode() == two.encode()


def test_an_event_cannot_be_changed_behind_its_digest() -> None:
    ev = make("transform", {"name": "dedupe", "params": {"threshold": 0.84}})
    first = digest(ev)
    try:
        ev.payload["params"]["threshold"] = 0.5
    except TypeError:
        return  # a frozen payload: fine
    assert ev.encode() == canonical_json(ev.to_json())
    assert digest(ev) != first


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", EventType.DATASET),
        ("schema_version", SCHEMA_VERSION + 1),
        ("payload", {**VALID[EventType.TRANSFORM], "params": {"patterns": ["phone"]}}),
        ("parents", (A,)),
        ("parents", ()),
        ("actor", "mallory@example.com"),
        ("recorded_at", "2026-05-22T09:30:00.123457Z"),
    ],
)
def test_every_field_is_inside_the_digest(field: str, value: object) -> None:
    base = make("transform", parents=[A, B])
    changed = dataclasses.replace(base, **{field: value})
    assert getattr(changed, field) != getattr(base, field)
    assert digest(changed) != digest(base)


def test_params_value_change_changes_the_digest() -> None:
    one = make("transform", {"name": "dedupe", "params": {"threshold": 0.84}})
    two = make("transform", {"name": "dedupe", "params": {"threshold": 0.85}})
    same = make("transform", {"name": "dedupe", "params": {"threshold": 0.840}})
    assert digest(one) != digest(two)
    assert digest(one) == digest(same)


# -- decoding -----------------------------------------------------------------------------


def test_decode_of_a_valid_body() -> None:
    ev = make("transform", parents=[A])
    assert Event.decode(body()) == ev


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(body(actor=...), id="missing-actor"),
        pytest.param(body(parents=...), id="missing-parents"),
        pytest.param(body(extra=1), id="extra-field"),
        pytest.param(body(schema_version=SCHEMA_VERSION + 1), id="newer-schema"),
        pytest.param(body(schema_version=0), id="schema-zero"),
        pytest.param(body(schema_version="1"), id="schema-as-text"),
        pytest.param(body(type="sauce"), id="unknown-type"),
        pytest.param(body(type=None), id="null-type"),
        pytest.param(body(type=["source"]), id="type-as-array"),
        pytest.param(body(type={"source": 1}), id="type-as-object"),
        pytest.param(body(recorded_at="2026-05-22T09:30:00Z"), id="time-without-micros"),
        pytest.param(body(recorded_at="22/05/2026"), id="time-not-rfc3339"),
        pytest.param(body(recorded_at=1779442200), id="time-as-number"),
        pytest.param(body(actor=""), id="empty-actor"),
        pytest.param(body(actor=None), id="null-actor"),
        pytest.param(body(actor="bell\a"), id="unprintable-actor"),
        pytest.param(body(parents=str(A)), id="parents-not-a-list"),
        pytest.param(body(parents=["sha256:xyz"]), id="parent-not-a-digest"),
        pytest.param(body(parents=sorted([A, B], reverse=True)), id="parents-unsorted"),
        pytest.param(body(payload=["name", "t"]), id="payload-not-object"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"type": "source"', id="not-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_decode_rejects_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(InputError):
        Event.decode(raw)


@pytest.mark.parametrize("kind", list(EventType))
def test_event_name_for_each_type_survives_the_round_trip(kind: EventType) -> None:
    ev = make(kind)
    assert ev.name == NAMES[kind]
    assert Event.decode(ev.encode()).typed_payload() == ev.typed_payload()
