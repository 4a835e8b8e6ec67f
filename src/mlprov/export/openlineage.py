"""Pipeline runs as OpenLineage run events, built with `openlineage-python`'s classes.

Each recorded pipeline run gives a START (at its `run` event) and a COMPLETE or FAIL (at
its closing event; a run without one was interrupted, and gets none) with the sources its
steps read as inputs and the datasets it recorded as outputs. Each step gives a START at its
`started_at` and a COMPLETE or FAIL at its `ended_at`, as the job `<pipeline>.<step>`,
with a `parent` facet naming the run, its inputs (sources, or the output of an earlier
step, named `<pipeline>.<step>`) and its output. A dataset's `schema` facet lists the
columns (name and Arrow type) the pipeline recorded for it. Every time comes from the ledger, and a
run id is a UUIDv7 made of the event's time and digest, so the same ledger always gives
the same events.

mlprov's own facets (ADR 0017), each with a `_schemaURL` to a JSON Schema shipped in
`mlprov/export/schemas/`:

- `mlprov_recordSet` (dataset): the record-set root, the record count and the event;
- `mlprov_review` (dataset): the review status when the event was recorded, its limits
  and risks;
- `mlprov_changes` (run, on a step): the counts kept, changed, removed and added, the
  reason, and the changes file's digest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mlprov.capture.build import recorded
from mlprov.digest import Digest
from mlprov.errors import InputError, MissingExtraError
from mlprov.governance.review import status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.payloads import trained_dataset

try:
    import attr
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import (
        DatasetFacet,
        RunFacet,
        dataset_version_dataset,
        error_message_run,
        job_type_job,
        output_statistics_output_dataset,
        parent_run,
        schema_dataset,
    )
    from openlineage.client.serde import Serde
except ImportError as exc:  # pragma: no cover - the extra's absence is tested by the CLI
    raise MissingExtraError("openlineage-python", "openlineage") from exc

__all__ = [
    "SCHEMAS",
    "SCHEMA_BASE",
    "Events",
    "MlprovChangesRunFacet",
    "MlprovRecordSetDatasetFacet",
    "MlprovReviewDatasetFacet",
    "emit_events",
    "ndjson",
    "run_events",
]

#: Where mlprov's facet schemas are published; each file's `$id` (immutable, versioned).
SCHEMA_BASE = "urn:mlprov:openlineage:facet:1-0-0:"
#: The folder of the facet schemas shipped with mlprov (their `$id`s are under SCHEMA_BASE).
SCHEMAS = Path(__file__).with_name("schemas")


def _version() -> str:
    try:
        return metadata.version("mlprov")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


PRODUCER = f"urn:mlprov:producer:{_version()}"


def _schema(name: str) -> str:
    return f"{SCHEMA_BASE}{name}.json#/$defs/{name}"


@attr.define
class MlprovRecordSetDatasetFacet(DatasetFacet):
    """The record set a dataset or source had: its root, count and recording event."""

    recordSetRoot: str
    event: str
    recordCount: int | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlprovRecordSetDatasetFacet")


@attr.define
class MlprovReviewDatasetFacet(DatasetFacet):
    """A source's or dataset's review status when the event was recorded."""

    reviewStatus: str
    reviewer: str | None = attr.field(default=None)
    limits: list[str] = attr.field(factory=list)
    risks: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlprovReviewDatasetFacet")


@attr.define
class MlprovChangesRunFacet(RunFacet):
    """What a step did to its records: counts, reason, and its changes file's digest."""

    step: int | None = attr.field(default=None)
    kind: str = attr.field(default="transform")
    removed: int | None = attr.field(default=None)
    counts: dict[str, int] = attr.field(factory=dict)
    reason: str | None = attr.field(default=None)
    changes: str | None = attr.field(default=None)
    event: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("MlprovChangesRunFacet")


def namespace(ledger: LedgerCore) -> str:
    """`mlprov://<origin>`: the namespace of every job and dataset of a ledger."""
    return "mlprov://" + quote(ledger.origin, safe="/:@")


def run_id(when: str, digest: Digest) -> str:
    """A UUIDv7 for an event: its time (milliseconds) and 74 bits of its digest."""
    stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    ms = int(stamp.timestamp() * 1000) & ((1 << 48) - 1)
    bits = int.from_bytes(digest.raw[:10], "big")
    value = (ms << 80) | (0x7 << 76) | ((bits >> 68) & 0xFFF) << 64 | (0b10 << 62)
    return str(uuid.UUID(int=value | (bits & ((1 << 62) - 1))))


class Events:
    """The OpenLineage events of one ledger's runs, with the lookups they share: a whole
    run (`run`), or one part of it as it is recorded (`opened`, `step`, `closed`)."""

    def __init__(self, ledger: LedgerCore) -> None:
        self.ledger = ledger
        self.ns = namespace(ledger)
        self._entries: dict[str, Entry] = {}

    def entry(self, digest: str) -> Entry:
        if digest not in self._entries:
            self._entries[digest] = self.ledger.get(digest)
        return self._entries[digest]

    # -- datasets -----------------------------------------------------------------------
    def dataset_name(self, entry: Entry, pipeline: str) -> str:
        kind = entry.event.type.value
        if kind == "transform":  # an intermediate: the output of a step of its run
            return f"{pipeline}.{entry.event.name}"
        if kind == "dataset":
            version = entry.event.payload.get("version")
            return f"{entry.event.name}@{version}" if version else str(entry.event.name)
        return str(entry.event.name)

    def facets(self, entry: Entry, as_of: int) -> dict[str, Any]:
        p = entry.event.payload
        root = p.get("record_root") or p.get("output_root")
        found: dict[str, Any] = {}
        if root or p.get("version"):
            found["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(root or p.get("version")), producer=PRODUCER
            )
        if p.get("columns"):
            fields = [
                schema_dataset.SchemaDatasetFacetFields(name=c["name"], type=c["type"])
                for c in p["columns"]
            ]
            found["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)
        if root:
            found["mlprov_recordSet"] = MlprovRecordSetDatasetFacet(
                recordSetRoot=str(root),
                event=str(entry.digest),
                recordCount=p.get("record_count"),
                producer=PRODUCER,
            )
        if entry.event.type.value in ("source", "dataset"):
            state = status_of(self.ledger, entry, as_of=as_of)
            reviewer = state.review.event.payload.get("reviewer") if state.review else None
            found["mlprov_review"] = MlprovReviewDatasetFacet(
                reviewStatus=state.state.value,
                reviewer=reviewer,
                limits=list(state.limits),
                risks=list(state.risks),
                producer=PRODUCER,
            )
        return found

    def input(self, entry: Entry, pipeline: str, as_of: int) -> InputDataset:
        return InputDataset(
            namespace=self.ns,
            name=self.dataset_name(entry, pipeline),
            facets=self.facets(entry, as_of),
        )

    def output(self, entry: Entry, pipeline: str, rows: int | None) -> OutputDataset:
        statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet
        stats: dict[str, Any] = (
            {"outputStatistics": statistics(rowCount=rows, producer=PRODUCER)}
            if rows is not None
            else {}
        )
        return OutputDataset(
            namespace=self.ns,
            name=self.dataset_name(entry, pipeline),
            facets=self.facets(entry, entry.seq),
            outputFacets=stats,
        )

    # -- runs ---------------------------------------------------------------------------
    def job(self, name: str, kind: str) -> Job:
        facet = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="MLPROV", jobType=kind, producer=PRODUCER
        )
        return Job(namespace=self.ns, name=name, facets={"jobType": facet})

    def event(
        self,
        state: RunState,
        when: str,
        run: Run,
        job: Job,
        inputs: list[InputDataset],
        outputs: list[OutputDataset],
    ) -> RunEvent:
        return RunEvent(
            eventType=state,
            eventTime=when,
            run=run,
            job=job,
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )

    def run(self, start: Entry) -> list[RunEvent]:
        """The events of one pipeline run: START, each step's pair, then its close."""
        children = self.ledger.children(start.digest)
        steps = sorted(
            (c for c in children if c.event.type.value == "transform"),
            key=lambda e: (e.event.payload.get("step") or 0, e.seq),
        )
        mlprov_run = start.event.payload.get("run_id")
        close = next(
            (
                c
                for c in children
                if c.event.type.value == "run"
                and c.event.payload.get("run_id") == mlprov_run
                and c.event.payload.get("status") != "started"
            ),
            None,
        )
        events = [self.opened(start)]
        for step in steps:
            events += self.step(step, str(start.event.name), self.run_id(start))
        return events + ([self.closed(start, close)] if close is not None else [])

    def run_id(self, start: Entry) -> str:
        return run_id(start.event.recorded_at, start.digest)

    def opened(self, start: Entry) -> RunEvent:
        """A run's START: what it will read is known only when it closes."""
        job = self.job(str(start.event.name), "JOB")
        run = Run(runId=self.run_id(start))
        return self.event(RunState.START, start.event.recorded_at, run, job, [], [])

    def closed(self, start: Entry, close: Entry) -> RunEvent:
        """A run's COMPLETE or FAIL: the sources its steps read, the datasets it made."""
        pipeline = str(start.event.name)
        children = self.ledger.children(start.digest)
        sources: dict[str, Entry] = {}
        for step in children:
            for used in (
                step.event.payload.get("used", ()) if step.event.type.value == "transform" else ()
            ):
                found = self.entry(used["event"])
                if found.event.type.value == "source":
                    sources.setdefault(str(found.digest), found)
        datasets = [c for c in children if c.event.type.value == "dataset"]
        failed = close.event.payload.get("status") == "failed"
        return self.event(
            RunState.FAIL if failed else RunState.COMPLETE,
            close.event.recorded_at,
            Run(runId=self.run_id(start), facets=self.error(close) if failed else {}),
            self.job(pipeline, "JOB"),
            [self.input(s, pipeline, close.seq) for s in sources.values()],
            [self.output(d, pipeline, d.event.payload.get("record_count")) for d in datasets],
        )

    def error(self, entry: Entry) -> dict[str, Any]:
        message = entry.event.payload.get("error") or "failed (no error was recorded)"
        return {
            "errorMessage": error_message_run.ErrorMessageRunFacet(
                message=str(message), programmingLanguage="python", producer=PRODUCER
            )
        }

    def step(self, step: Entry, pipeline: str, parent: str) -> list[RunEvent]:
        p = step.event.payload
        started = p.get("started_at") or step.event.recorded_at
        ended = p.get("ended_at") or step.event.recorded_at
        this = run_id(started, step.digest)
        job = self.job(f"{pipeline}.{step.event.name}", "TASK")
        link = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent),
            job=parent_run.Job(namespace=self.ns, name=pipeline),
            producer=PRODUCER,
        )
        inputs = [self.input(self.entry(u["event"]), pipeline, step.seq) for u in p.get("used", ())]
        start = self.event(
            RunState.START, started, Run(runId=this, facets={"parent": link}), job, inputs, []
        )
        failed = p.get("status") == "failed"
        counts = {k: int(v) for k, v in (p.get("counts") or {}).items()}
        facets: dict[str, Any] = {"parent": link}
        facets["mlprov_changes"] = MlprovChangesRunFacet(
            step=p.get("step"),
            kind=p.get("kind", "transform"),
            removed=counts.get("removed"),
            counts=counts,
            reason=p.get("reason"),
            changes=p.get("changes"),
            event=str(step.digest),
            producer=PRODUCER,
        )
        if failed:
            facets.update(self.error(step))
        outputs = [] if failed else [self.output(step, pipeline, counts.get("out"))]
        end = self.event(
            RunState.FAIL if failed else RunState.COMPLETE,
            ended,
            Run(runId=this, facets=facets),
            job,
            inputs,
            outputs,
        )
        return [start, end]


def _runs(ledger: LedgerCore, target: str | Entry | None) -> list[Entry]:
    """The run events (status `started`) of the whole ledger, or of a dataset's or
    build's ancestry, in log order."""
    if target is None:
        found: Iterable[Entry] = ledger.entries(type="run")
    else:
        entry = recorded(ledger, target, ("dataset", "build"))
        if entry.event.type.value == "build":
            link = trained_dataset(entry.event.payload)
            if link is None:
                raise InputError(
                    f"build {entry.event.name} names no dataset, so no pipeline run made it",
                    "export a dataset, or every run (no target)",
                )
            entry = ledger.get(link)
        found = ledger.trace(entry.digest)
    return [
        e
        for e in found
        if e.event.type.value == "run" and e.event.payload.get("status") == "started"
    ]


def run_events(ledger: LedgerCore, target: str | Entry | None = None) -> list[RunEvent]:
    """The OpenLineage events of every pipeline run in the ledger, or of the runs that
    made a dataset (or a build's dataset), run by run in log order."""
    made = Events(ledger)
    return [event for start in _runs(ledger, target) for event in made.run(start)]


def ndjson(events: Iterable[RunEvent]) -> bytes:
    """The events as newline-delimited JSON, one event a line."""
    return b"".join(Serde.to_json(e).encode("utf-8") + b"\n" for e in events)


def emit_events(events: Iterable[RunEvent], url: str, *, timeout: float = 10.0) -> int:
    """Send the events, in order, to an OpenLineage HTTP endpoint (a URL with a path is
    where they are posted; a bare `http://host:port` means its `/api/v1/lineage`) with
    openlineage-python's HTTP transport; the count sent. InputError naming how many were
    sent when the server cannot be reached or refuses one."""
    import requests
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    if not url.startswith(("http://", "https://")):
        raise InputError(f"{url!r} is not an http:// or https:// URL", "e.g. http://host:5000")
    # a bare host is an OpenLineage server's own endpoint; a URL with a path is used as is
    endpoint = "api/v1/lineage" if urlsplit(url).path in ("", "/") else ""
    retry = {"total": 2, "backoff_factor": 0.1}
    transport = HttpTransport(HttpConfig(url=url, endpoint=endpoint, timeout=timeout, retry=retry))
    sent = 0
    for event in events:
        try:
            transport.emit(event)
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise InputError(
                f"could not send OpenLineage events to {url} ({reason}); {sent} were sent",
                "check that the endpoint is running and accepts POSTed events",
            ) from None
        sent += 1
    return sent
