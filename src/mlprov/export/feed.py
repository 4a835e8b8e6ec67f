"""A pipeline that sends its OpenLineage events as it runs.

`ledger.pipeline(name, openlineage=URL)` gives a :class:`FeedPipeline`: each event the run
appends is turned into the OpenLineage events the export would write for it
(:class:`mlprov.export.openlineage.Events`) and posted to URL at once — the run's START
when it opens, each step's START and COMPLETE (or FAIL) when the step is recorded, the
run's COMPLETE (or FAIL) when it closes. So the stream received is the one
`mlprov export openlineage --emit URL` sends afterwards.

Recording comes first: an endpoint that cannot be reached never stops the pipeline. The
first failure stops the feed, and is raised when the run ends (the run is recorded; send
its events again with `mlprov export openlineage --emit URL`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlprov.capture.pipeline import Pipeline
from mlprov.digest import Digest
from mlprov.errors import InputError
from mlprov.export.openlineage import Events, emit_events
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

__all__ = ["FeedPipeline"]


class FeedPipeline(Pipeline):
    """A recorded pipeline run that also posts its OpenLineage events to `url`."""

    def __init__(self, ledger: LedgerCore, name: str, *, url: str, **options: Any) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"{url!r} is not an http:// or https:// URL", "e.g. http://host:5000")
        super().__init__(ledger, name, **options)
        self.url = url
        self.sent = 0
        self.failure: InputError | None = None
        self._events = Events(ledger)

    def _append(self, kind: str, payload: Mapping[str, Any], parents: Sequence[Digest]) -> Entry:
        entry = super()._append(kind, payload, parents)
        if self.failure is None:
            try:
                self.sent += emit_events(self._lineage(entry), self.url)
            except InputError as exc:
                self.failure = exc
        return entry

    def _lineage(self, entry: Entry) -> list[RunEvent]:
        kind, start = entry.event.type.value, self.run
        if kind == "run" and entry.event.payload.get("status") == "started":
            return [self._events.opened(entry)]
        if start is None:
            return []
        if kind == "transform":
            return self._events.step(entry, self.name, self._events.run_id(start))
        if kind == "run":
            return [self._events.closed(start, entry)]
        return []  # sources and datasets are named by the events of their steps and run

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        super().__exit__(kind, exc, tb)
        if kind is None and self.failure is not None:
            raise InputError(
                f"the run is recorded, but its OpenLineage events stopped after {self.sent}: "
                f"{self.failure.message}",
                "send them again with `mlprov export openlineage DATASET --emit URL`",
            )
