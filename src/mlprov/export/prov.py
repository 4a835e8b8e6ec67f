"""W3C PROV of a build, a dataset or the whole ledger (PROV-JSON, PROV-O Turtle or JSON-LD).

Built with the `prov` package (extra `mlprov[prov]`) from the events of a
:class:`~mlprov.export.scope.Scope`; the mapping (ADR 0016):

- **entities**: sources and datasets (one per event); each succeeded step's output
  (`output:`), each build's model artifact (`model:`), each exclusion report (`report:`)
  and the records a step removed (`removed:`: a count and a reason, never a record);
- **activities**: steps (transforms and exclusions), pipeline runs (the `run` event that
  opens one, with its closing event), builds, reviews, quarantines, releases, evaluations
  and predictions;
- **agents**: pipelines (`pipeline:`, software agents), reviewers (`reviewer:`, persons)
  and the actors that recorded builds, quarantines and releases (`actor:`);
- **relations**: `used` (with the role: `input`, `using`, ...), `wasGeneratedBy`,
  `wasDerivedFrom`, `wasAssociatedWith`, `wasStartedBy` (a step by its run),
  `wasInvalidatedBy` (the records a step removed), `wasInformedBy` (a release by its
  quarantine), and `wasInfluencedBy` for any other parent link of the ledger's DAG.

An event's element is named by its digest (`event:<hex>`, the IRI
`urn:mlprov:event:sha256:<hex>`) and carries `mlprov:event` (the digest), `mlprov:body`
(the event's canonical bytes, which hash to it), its log position, time, actor, and every
payload field as an `mlprov:` attribute (a value that is not a scalar as canonical JSON,
so that order survives RDF). Review status is read as of the export's log size with the
functions the read model (`mlprov.answers.view`) uses; a build's is the one at build time.
One entity of type `mlprov:LedgerExport` names the ledger's origin, the log size and root
the export covers and its target, so that `mlprov export prov --check` can regenerate it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from mlprov.answers.view import view
from mlprov.digest import Digest, canonical_json
from mlprov.errors import InputError
from mlprov.export.extras import require
from mlprov.export.scope import Scope, scope_of
from mlprov.governance.approval import approval_of
from mlprov.governance.review import status_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.names import label
from mlprov.ledger.payloads import trained_dataset

if TYPE_CHECKING:
    from prov.model import ProvDocument, QualifiedName

__all__ = ["FORMATS", "NAMESPACES", "Format", "build", "document", "serialize", "type_name"]

Format = Literal["json", "turtle", "jsonld"]
FORMATS: tuple[Format, ...] = ("json", "turtle", "jsonld")

#: mlprov's own namespaces: its terms, and one per kind of identifier.
NAMESPACES = {
    "mlprov": "urn:mlprov:terms#",
    "event": "urn:mlprov:event:sha256:",
    "output": "urn:mlprov:output:sha256:",
    "report": "urn:mlprov:report:sha256:",
    "removed": "urn:mlprov:removed:sha256:",
    "model": "urn:mlprov:model:sha256:",
    "pipeline": "urn:mlprov:pipeline:",
    "reviewer": "urn:mlprov:reviewer:",
    "actor": "urn:mlprov:actor:",
    "ledger": "urn:mlprov:ledger:",
}
_ENTITIES = {"source": "Source", "dataset": "Dataset"}
_ACTIVITIES = {
    "transform": "Transform",
    "run": "PipelineRun",
    "build": "Build",
    "review": "Review",
    "quarantine": "Quarantine",
    "release": "Release",
    "evaluation": "Evaluation",
    "prediction": "Prediction",
    "access": "AccessChange",  # a server token granted or revoked (no secret in it)
}


def type_name(kind: str) -> str:
    """The `mlprov:` type of an event type's element (`transform` -> `Transform`)."""
    return _ENTITIES.get(kind) or _ACTIVITIES[kind]


def _prov() -> Any:
    return require("prov.model", "prov")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _value(value: Any) -> Any:
    """A payload value as a PROV attribute value: scalars as they are, the rest as JSON."""
    if isinstance(value, bool | int | float | str):
        return value
    return canonical_json(value).decode()


def _local(text: str) -> str:
    """A name as the local part of an IRI: percent-encoded UTF-8, so any name is legal."""
    return quote(text, safe="-._~")


class _Builder:
    """Adds the elements and relations of one scope to one document."""

    def __init__(self, ledger: LedgerCore, scope: Scope) -> None:
        pm = _prov()
        self.pm = pm
        self.ledger = ledger
        self.scope = scope
        self.doc: ProvDocument = pm.ProvDocument()
        self.ns = {p: pm.Namespace(p, iri) for p, iri in NAMESPACES.items()}
        for namespace in self.ns.values():
            self.doc.add_namespace(namespace)
        self.m = self.ns["mlprov"]
        self.by_digest = {str(e.digest): e for e in scope.entries}
        self.closes: dict[str, Entry] = {}  # a run's opening event -> its closing one
        self.linked: set[tuple[str, str]] = set()  # (child, parent) links already related
        self.agents: set[str] = set()
        self.lists = {
            u["event"]
            for e in scope.entries
            if e.event.type.value == "transform"
            for u in e.event.payload.get("used", ())
            if u.get("role") == "using"
        }

    # -- identifiers ---------------------------------------------------------------------
    def ident(self, kind: str, digest: str) -> QualifiedName:
        q: QualifiedName = self.ns[kind][Digest(digest).hex]
        return q

    def element(self, digest: str) -> QualifiedName | None:
        """The element standing for an event in data flow: a step's output for a step."""
        entry = self.by_digest.get(digest)
        if entry is None:
            return None
        if entry.event.type.value == "transform":
            ok = entry.event.payload.get("status", "succeeded") == "succeeded"
            return self.ident("output", digest) if ok else None
        if entry.event.type.value == "run" and entry.event.payload.get("status") != "started":
            opener = next((p for p in entry.event.parents if self._opens(str(p), entry)), None)
            return self.ident("event", opener) if opener else self.ident("event", digest)
        return self.ident("event", digest)

    def _opens(self, digest: str, close: Entry) -> bool:
        e = self.by_digest.get(digest)
        return (
            e is not None
            and e.event.type.value == "run"
            and e.event.payload.get("run_id") == close.event.payload.get("run_id")
        )

    def agent(self, kind: str, name: str, prov_type: str) -> QualifiedName:
        q: QualifiedName = self.ns[kind][_local(name)]
        if str(q) not in self.agents:
            self.agents.add(str(q))
            attrs: dict[Any, Any] = {self.pm.PROV_LABEL: name}
            if prov_type != "Agent":  # prov:Agent is the element's own type: RDF drops it
                attrs[self.pm.PROV_TYPE] = self.pm.PROV[prov_type]
            self.doc.agent(q, attrs)
        return q

    # -- attributes ----------------------------------------------------------------------
    def event_attributes(self, entry: Entry, type_name: str) -> list[tuple[Any, Any]]:
        pm, m, ev = self.pm, self.m, entry.event
        attrs: list[tuple[Any, Any]] = [
            (pm.PROV_TYPE, m[type_name]),
            (pm.PROV_LABEL, label(entry)),
            (m["event"], str(entry.digest)),
            (m["body"], entry.body.decode()),
            (m["logIndex"], entry.seq),
            (m["recordedAt"], _time(ev.recorded_at)),
            (m["actor"], ev.actor),
        ]
        attrs += [(m[k], _value(v)) for k, v in sorted(ev.payload.items())]
        return attrs

    def review_attributes(self, entry: Entry) -> list[tuple[Any, Any]]:
        m, kind = self.m, entry.event.type.value
        if kind == "source":
            state = status_of(self.ledger, entry, as_of=self.scope.size - 1)
            return [(m["reviewStatus"], state.state.value)]
        if kind == "dataset":
            parts = [
                e
                for e in self.scope.entries
                if e.event.type.value == "source" and e.seq < entry.seq
            ]
            found = approval_of(self.ledger, entry, parts, as_of=self.scope.size - 1)
            return _approval(m, "", found.status, found.limits, found.risks)
        if kind == "build" and trained_dataset(entry.event.payload):
            at = view(self.ledger, entry).approval
            return _approval(m, "AtBuild", at.status, at.limits, at.risks)
        return []

    # -- the document --------------------------------------------------------------------
    def run(self) -> ProvDocument:
        for e in self.scope.entries:
            if e.event.type.value == "run" and e.event.payload.get("status") != "started":
                opener = next((str(p) for p in e.event.parents if self._opens(str(p), e)), None)
                if opener is not None:
                    self.closes[opener] = e
        closing = {str(c.digest) for c in self.closes.values()}
        for e in self.scope.entries:
            if str(e.digest) not in closing:
                self.add_event(e)
        for e in self.scope.entries:
            if str(e.digest) not in closing:
                self.relate(e)
        for e in self.scope.entries:
            self.influences(e)
        self.add_export()
        return self.doc

    def add_event(self, entry: Entry) -> None:
        kind = entry.event.type.value
        attrs = self.event_attributes(entry, type_name(kind))
        attrs += self.review_attributes(entry)
        q = self.ident("event", str(entry.digest))
        p = entry.event.payload
        if kind in _ENTITIES:
            self.doc.entity(q, attrs)
            return
        start = end = None
        if kind == "transform":
            start, end = _time(p.get("started_at")), _time(p.get("ended_at"))
            if p.get("kind") == "exclusion":
                attrs.append((self.pm.PROV_TYPE, self.m["Exclusion"]))
        elif kind == "run":
            start = _time(entry.event.recorded_at)
            close = self.closes.get(str(entry.digest))
            if close is not None:
                end = _time(close.event.recorded_at)
                attrs += [
                    (self.m["event"], str(close.digest)),
                    (self.m["body"], close.body.decode()),
                    (self.m["outcome"], close.event.payload.get("status")),
                ]
                if close.event.payload.get("error"):
                    attrs.append((self.m["error"], close.event.payload["error"]))
        else:
            end = _time(entry.event.recorded_at)
        self.doc.activity(q, start, end, attrs)

    def relate(self, entry: Entry) -> None:
        kind = entry.event.type.value
        handler = getattr(self, f"relate_{kind}", None)
        if handler is not None:
            handler(entry, self.ident("event", str(entry.digest)))

    def link(self, child: Entry, parent: str) -> None:
        self.linked.add((str(child.digest), parent))

    def run_of(self, entry: Entry) -> Entry | None:
        for p in entry.event.parents:
            e = self.by_digest.get(str(p))
            if e is not None and e.event.type.value == "run":
                return e
        return None

    def relate_run(self, entry: Entry, q: QualifiedName) -> None:
        pipeline = self.agent("pipeline", entry.event.payload["name"], "SoftwareAgent")
        self.doc.wasAssociatedWith(q, pipeline)
        close = self.closes.get(str(entry.digest))
        if close is not None:
            self.link(close, str(entry.digest))

    def relate_transform(self, entry: Entry, q: QualifiedName) -> None:
        pm, m, p = self.pm, self.m, entry.event.payload
        start, end = _time(p.get("started_at")), _time(p.get("ended_at"))
        out = self.element(str(entry.digest))
        if out is not None:
            self.doc.entity(
                out,
                [
                    (pm.PROV_TYPE, m["StepOutput"]),
                    (pm.PROV_LABEL, f"output of {label(entry)}"),
                    *_present(m, ("recordRoot", p.get("output_root")), ("step", p.get("step"))),
                    *_present(m, ("recordCount", p.get("counts", {}).get("out"))),
                ],
            )
            self.doc.wasGeneratedBy(out, q, end)
        for u in p.get("used", ()):
            source = self.element(u["event"])
            if source is None:
                continue
            self.link(entry, u["event"])
            role = pm.PROV_ROLE, m[_local(u["role"])]
            self.doc.used(q, source, start, other_attributes=[role])
            if out is not None and u["role"] == "input":
                self.doc.wasDerivedFrom(out, source, q)
        run = self.run_of(entry)
        if run is not None:
            self.link(entry, str(run.digest))
            pipeline = self.agent("pipeline", run.event.payload["name"], "SoftwareAgent")
            self.doc.wasAssociatedWith(q, pipeline)
            self.doc.wasStartedBy(q, starter=self.ident("event", str(run.digest)), time=start)
        removed = p.get("counts", {}).get("removed", 0)
        if removed and p.get("status", "succeeded") == "succeeded":
            self.exclusion(entry, q, removed, end)

    def exclusion(self, entry: Entry, q: QualifiedName, removed: int, end: Any) -> None:
        """The step's exclusion report, and the records it removed: counted, never listed."""
        pm, m, p = self.pm, self.m, entry.event.payload
        digest = str(entry.digest)
        changes = _present(m, ("changes", p.get("changes")))
        report = self.ident("report", digest)
        self.doc.entity(
            report,
            [
                (pm.PROV_TYPE, m["ExclusionReport"]),
                (pm.PROV_LABEL, f"exclusion report of {label(entry)}"),
                (m["removed"], removed),
                *changes,
            ],
        )
        self.doc.wasGeneratedBy(report, q, end)
        gone = self.ident("removed", digest)
        self.doc.entity(
            gone,
            [
                (pm.PROV_TYPE, pm.PROV["Collection"]),
                (pm.PROV_TYPE, m["RemovedRecords"]),
                (pm.PROV_LABEL, f"records removed by {label(entry)}"),
                (m["count"], removed),
                (m["reason"], p.get("reason") or p["name"]),
                *changes,
            ],
        )
        self.doc.wasInvalidatedBy(gone, q, end)

    def relate_dataset(self, entry: Entry, q: QualifiedName) -> None:
        when = _time(entry.event.recorded_at)
        for parent in entry.event.parents:
            e = self.by_digest.get(str(parent))
            if e is None:
                continue
            if e.event.type.value == "run":
                self.link(entry, str(parent))
                self.doc.wasGeneratedBy(q, self.ident("event", str(parent)), when)
                pipeline = self.agent("pipeline", e.event.payload["name"], "SoftwareAgent")
                self.doc.wasAttributedTo(q, pipeline)
            elif e.event.type.value == "transform" and (out := self.element(str(parent))):
                self.link(entry, str(parent))
                self.doc.wasDerivedFrom(q, out)
        for e in self.ledger.trace(entry.digest):
            if e.event.type.value == "source" and self.scope.holds(e.digest):
                self.link(entry, str(e.digest))
                role = "using" if str(e.digest) in self.lists else "input"
                attrs = [(self.pm.PROV_ROLE, self.m[role])]
                self.doc.wasDerivedFrom(
                    q, self.ident("event", str(e.digest)), other_attributes=attrs
                )

    def relate_build(self, entry: Entry, q: QualifiedName) -> None:
        pm, m, p = self.pm, self.m, entry.event.payload
        who = self.agent("actor", entry.event.actor, "Agent")
        self.doc.wasAssociatedWith(q, who)
        data = trained_dataset(p)
        data_q = self.element(str(data)) if data else None
        if data_q is not None:
            self.link(entry, str(data))
            self.doc.used(q, data_q, other_attributes=[(pm.PROV_ROLE, m["trainingData"])])
        if p.get("artifact_digest"):
            model = self.ident("model", str(entry.digest))
            attrs = [
                (pm.PROV_TYPE, m["Model"]),
                (pm.PROV_LABEL, f"model of {label(entry)}"),
                (m["artifactDigest"], p["artifact_digest"]),
                *_present(m, ("artifactKind", p.get("artifact_kind"))),
            ]
            self.doc.entity(model, attrs)
            self.doc.wasGeneratedBy(model, q, _time(entry.event.recorded_at))
            if data_q is not None:
                self.doc.wasDerivedFrom(model, data_q, q)

    def relate_review(self, entry: Entry, q: QualifiedName) -> None:
        p = entry.event.payload
        reviewer = self.agent("reviewer", p["reviewer"], "Person")
        self.doc.wasAssociatedWith(q, reviewer)
        self._uses(entry, q, p["target"], "reviewed")

    def relate_quarantine(self, entry: Entry, q: QualifiedName) -> None:
        self.doc.wasAssociatedWith(q, self.agent("actor", entry.event.actor, "Agent"))
        for parent in entry.event.parents:
            self._uses(entry, q, str(parent), "quarantined")

    def relate_release(self, entry: Entry, q: QualifiedName) -> None:
        p = entry.event.payload
        self.doc.wasAssociatedWith(q, self.agent("actor", entry.event.actor, "Agent"))
        if self.scope.holds(p["quarantine"]):
            self.link(entry, p["quarantine"])
            self.doc.wasInformedBy(q, self.ident("event", p["quarantine"]))
        for digest in p.get("evidence", ()):
            self._uses(entry, q, digest, "evidence")

    def relate_evaluation(self, entry: Entry, q: QualifiedName) -> None:
        self._of_build(entry, q)

    def relate_prediction(self, entry: Entry, q: QualifiedName) -> None:
        self._of_build(entry, q)

    def _of_build(self, entry: Entry, q: QualifiedName) -> None:
        build = self.by_digest.get(entry.event.payload["build"])
        if build is None:
            return
        self.link(entry, str(build.digest))
        if build.event.payload.get("artifact_digest"):
            model = self.ident("model", str(build.digest))
            self.doc.used(q, model, other_attributes=[(self.pm.PROV_ROLE, self.m["model"])])
        else:
            self.doc.wasInformedBy(q, self.ident("event", str(build.digest)))

    def _uses(self, entry: Entry, q: QualifiedName, digest: str, role: str) -> None:
        target = self.by_digest.get(digest)
        if target is None:
            return
        self.link(entry, digest)
        if target.event.type.value in _ENTITIES:
            attrs = [(self.pm.PROV_ROLE, self.m[role])]
            self.doc.used(q, self.ident("event", digest), other_attributes=attrs)
        elif target.event.type.value != "run":
            self.doc.wasInformedBy(q, self.ident("event", digest))
        else:
            self.linked.discard((str(entry.digest), digest))

    def influences(self, entry: Entry) -> None:
        """Every other parent link of the ledger's DAG, so that none is lost."""
        child = self.element(str(entry.digest)) if entry.event.type.value == "run" else None
        child = child or self.ident("event", str(entry.digest))
        for parent in entry.event.parents:
            key = (str(entry.digest), str(parent))
            if key in self.linked or not self.scope.holds(parent):
                continue
            target = self.ident("event", str(parent))
            if self.by_digest[str(parent)].event.type.value == "run":
                target = self.element(str(parent)) or target
            if target == child:
                continue
            self.doc.wasInfluencedBy(child, target)

    def add_export(self) -> None:
        pm, m, scope = self.pm, self.m, self.scope
        origin = getattr(self.ledger, "origin", "")
        attrs: list[tuple[Any, Any]] = [
            (pm.PROV_TYPE, m["LedgerExport"]),
            (pm.PROV_LABEL, f"mlprov ledger {origin}"),
            (m["origin"], origin),
            (m["scope"], scope.kind),
            (m["treeSize"], scope.size),
            (m["treeRoot"], self.ledger.root(scope.size).hex()),
        ]
        if scope.target is not None:
            attrs.append((m["target"], str(scope.target.digest)))
        self.doc.entity(self.ns["ledger"][_local(origin)], attrs)


def _approval(
    m: Any, suffix: str, status: str, limits: Iterable[str], risks: Iterable[str]
) -> list[tuple[Any, Any]]:
    return [
        (m[f"reviewerStatus{suffix}"], status),
        (m[f"reviewLimits{suffix}"], canonical_json(list(limits)).decode()),
        (m[f"reviewRisks{suffix}"], canonical_json(list(risks)).decode()),
    ]


def _present(m: Any, *pairs: tuple[str, Any]) -> list[tuple[Any, Any]]:
    return [(m[k], _value(v)) for k, v in pairs if v is not None]


def build(ledger: LedgerCore, scope: Scope) -> ProvDocument:
    """The PROV document of the events of `scope`."""
    return _Builder(ledger, scope).run()


def document(
    ledger: LedgerCore, ref: Entry | Digest | str | None = None, *, size: int | None = None
) -> ProvDocument:
    """The PROV document of a build or dataset (NAME, NAME@VERSION or a digest), or of the
    whole ledger (`ref` None), as the ledger stood at log size `size` (default: now)."""
    return build(ledger, scope_of(ledger, ref, size))


def serialize(doc: ProvDocument, format: str = "json") -> bytes:
    """The document as PROV-JSON (`json`), or PROV-O as Turtle (`turtle`) or JSON-LD
    (`jsonld`); the RDF forms need rdflib (extra `mlprov[prov]`)."""
    if format == "json":
        text = doc.serialize(format="json", indent=2, ensure_ascii=False)
    elif format in ("turtle", "jsonld"):
        require("rdflib", "prov")
        rdf_format = "turtle" if format == "turtle" else "json-ld"
        text = doc.serialize(format="rdf", rdf_format=rdf_format)
    else:
        raise InputError(f"unknown PROV format {format!r}", f"use one of {', '.join(FORMATS)}")
    out = text if isinstance(text, str) else str(text)
    return out.encode() if out.endswith("\n") else (out + "\n").encode()
