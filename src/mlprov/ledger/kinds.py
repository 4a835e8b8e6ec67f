"""The kinds of event, and the name each kind is listed under.

Apart from the payload models (`mlprov.ledger.payloads`), which check a payload when an
event is created: reading a recorded event (`mlprov log`, `show`, `verify`) needs its kind
and its name, never a model, so a read does not load the validation library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

__all__ = ["EventType", "ReviewStatus", "label_of", "step_base", "step_version"]


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
    RUN = "run"
    ACCESS = "access"


class ReviewStatus(StrEnum):
    ACCEPTED = "accepted"
    ACCEPTED_WITH_LIMITS = "accepted_with_limits"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


#: The payload field an event of each kind is listed under (`mlprov log --name`); a
#: source is listed as `name@version`, a review and a prediction under no name.
LABEL_FIELDS: dict[EventType, str | None] = {
    EventType.SOURCE: "name",
    EventType.TRANSFORM: "name",
    EventType.DATASET: "name",
    EventType.REVIEW: None,
    EventType.QUARANTINE: "source",
    EventType.RELEASE: "source",
    EventType.BUILD: "name",
    EventType.EVALUATION: "name",
    EventType.PREDICTION: None,
    EventType.RUN: "name",
    EventType.ACCESS: "token",
}


def label_of(kind: EventType | str, data: Mapping[str, Any]) -> str | None:
    """The name an event of `kind` with payload `data` is listed under."""
    if kind == EventType.SOURCE:
        return f"{data.get('name')}@{data.get('version')}"
    key = LABEL_FIELDS[EventType(kind)]
    value = data.get(key) if key is not None else None
    return value if isinstance(value, str) else None


_STEP_VERSION = re.compile(r"-v(\d+(?:\.\d+)*)$")


def step_version(name: str) -> str | None:
    """The version a step's name ends with (`pii-redaction-v3` -> `v3`), or None."""
    found = _STEP_VERSION.search(name)
    return "v" + found.group(1) if found else None


def step_base(name: str) -> str:
    """A step's name without its version (`dedupe-v2` -> `dedupe`)."""
    return _STEP_VERSION.sub("", name)
