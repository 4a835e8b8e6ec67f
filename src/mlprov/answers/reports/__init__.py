"""Disclosure reports filled from the ledger: a datasheet, the EU public summary of
training content, and the California AB 2013 documentation.

::

    from mlprov.answers.reports import report, to_markdown

    made = report(ledger, "ab2013", "support-classifier-v7")
    text = to_markdown(made)                        # or to_json(made)
    [(i.id, i.fields, i.note) for i in made.missing]

Every item maps to named ledger fields (`source.acquisition`, `source.collected`,
`transform.counts.removed`, `dataset.record_count`, `build.config.tokens`, ...) or is
*missing*, with the fields that would fill it; nothing is inferred. The facts a source
can record are those of :class:`mlprov.ledger.payloads.SourcePayload`. The facts the
ledger's events do not hold come only from optional build config keys, listed with what
they fill in :data:`CONFIG_KEYS`: `provider`, `base_model`, `placed_on_market`,
`continuous_training`, `intended_purpose`, `tokens`, `images`, `audio_hours`,
`video_hours`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from mlprov.answers.reports.ab2013 import ab2013
from mlprov.answers.reports.datasheet import datasheet
from mlprov.answers.reports.eu import eu_training_summary
from mlprov.answers.reports.facts import CONFIG_KEYS
from mlprov.answers.reports.items import (
    Item,
    Kind,
    Report,
    Section,
    from_json,
    to_json,
    to_markdown,
)
from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = [
    "CONFIG_KEYS",
    "KINDS",
    "Item",
    "Kind",
    "Report",
    "Section",
    "ab2013",
    "datasheet",
    "eu_training_summary",
    "from_json",
    "report",
    "to_json",
    "to_markdown",
]

#: Each kind of report, and what it is filled for.
KINDS: Final[Mapping[str, Callable[[LedgerCore, Any], Report]]] = MappingProxyType(
    {
        "datasheet": datasheet,
        "eu-training-summary": eu_training_summary,
        "ab2013": ab2013,
    }
)


def report(ledger: LedgerCore, kind: str, ref: Entry | Digest | str) -> Report:
    """The report `kind` (datasheet, eu-training-summary, ab2013) of a build or dataset."""
    make = KINDS.get(kind)
    if make is None:
        raise InputError(f"unknown report {kind!r}", "choose one of " + ", ".join(KINDS))
    return make(ledger, ref)
