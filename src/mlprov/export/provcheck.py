"""Check a PROV document mlprov wrote against the ledger (`mlprov export prov --check`).

The document is read with `prov`'s own reader (PROV-JSON, or PROV-O as Turtle or JSON-LD).
Its `mlprov:LedgerExport` entity names the ledger, the log size and root it covers and its
target. The check then asks, in order:

1. the ledger is the one it was written from (its origin), and its log at that size has
   that root (else its history differs);
2. every event digest the document names is in the ledger, its `mlprov:body` hashes to it,
   and its element has the event's type, name and version;
3. the document is the one the ledger gives for that target at that size: the same
   elements with the same attributes and the same relations, none added and none missing.

A document that cannot be read, or that no mlprov export wrote, is an InputError (exit 3);
one that contradicts the ledger an IntegrityError (exit 10) naming what differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlprov.digest import Digest
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.export import prov
from mlprov.export.extras import require
from mlprov.export.scope import scope_of
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.names import label

if TYPE_CHECKING:
    from prov.model import ProvDocument, ProvRecord

__all__ = ["Checked", "check", "detect", "read"]

_SHOWN = 5  # problems named in the error; the count says how many more


@dataclass(frozen=True)
class Checked:
    """What a check of a PROV document found to agree with the ledger."""

    format: prov.Format
    scope: str
    target: str | None
    tree_size: int
    events: int
    records: int


def detect(data: bytes) -> prov.Format:
    """Which PROV serialisation `data` is: PROV-JSON, PROV-O JSON-LD, else Turtle."""
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "turtle"
    if isinstance(parsed, list) or (isinstance(parsed, dict) and ("@context" in parsed)):
        return "jsonld"
    return "json"


def read(data: bytes, format: prov.Format | None = None) -> ProvDocument:
    """A PROV document from its bytes, with `prov`'s reader; InputError when it is not one."""
    pm = require("prov.model", "prov")
    fmt = format or detect(data)
    options: dict[str, Any] = {"format": "json"}
    if fmt != "json":
        require("rdflib", "prov")
        options = {"format": "rdf", "rdf_format": "turtle" if fmt == "turtle" else "json-ld"}
    try:
        doc: ProvDocument = pm.ProvDocument.deserialize(content=data.decode(), **options)
    except Exception as exc:  # noqa: BLE001 - prov and rdflib raise anything on bad input
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(
            f"not a readable PROV document ({fmt}): {reason}",
            "give a file written by `mlprov export prov`",
        ) from None
    return doc


def _values(record: ProvRecord, attr: Any) -> list[Any]:
    return [v for k, v in record.attributes if k == attr]


def _one(record: ProvRecord, attr: Any, what: str) -> Any:
    found = _values(record, attr)
    if len(found) != 1:
        raise InputError(
            f"the document's ledger export entity has no single {what}",
            "give a file written by `mlprov export prov`",
        )
    return found[0]


def _key(record: ProvRecord) -> tuple[str, str, frozenset[tuple[str, str]]]:
    ident = record.identifier
    name = str(ident.uri) if record.is_element() and ident is not None else ""
    attrs = frozenset((str(k.uri), _plain(v)) for k, v in record.attributes)
    return record.get_type().uri, name, attrs


def _plain(value: Any) -> str:
    """A value as comparable text: a qualified name by its IRI (prefixes differ between
    readings of one JSON-LD document), anything else by its type and value."""
    uri = getattr(value, "uri", None)
    return f"<{uri}>" if isinstance(uri, str) else repr(value)


def _name(record: ProvRecord) -> str:
    kind = str(record.get_type()).removeprefix("prov:")
    if record.is_element():
        return f"{kind} {record.identifier}"
    ends = [str(v) for _, v in record.formal_attributes if v is not None]
    return f"{kind}({', '.join(ends)})"


def check(
    ledger: LedgerCore, data: bytes, ref: str | None = None, format: prov.Format | None = None
) -> Checked:
    """Check a PROV document (its bytes) against the ledger; see the module doc.

    `ref` (a build or dataset) must be the document's target when given. Raises InputError
    for a document that is not an mlprov export, IntegrityError when it contradicts the
    ledger; returns what was checked otherwise.
    """
    pm = require("prov.model", "prov")
    fmt = format or detect(data)
    doc = read(data, fmt)
    m = pm.Namespace("mlprov", prov.NAMESPACES["mlprov"])
    exports = [
        r for r in doc.get_records(pm.ProvEntity) if m["LedgerExport"] in _values(r, pm.PROV_TYPE)
    ]
    if len(exports) != 1:
        raise InputError(
            "the document has no mlprov ledger export entity: mlprov did not write it",
            "give a file written by `mlprov export prov`",
        )
    export = exports[0]
    origin = str(_one(export, m["origin"], "origin"))
    size = _one(export, m["treeSize"], "tree size")
    root = str(_one(export, m["treeRoot"], "tree root"))
    targets = _values(export, m["target"])
    target = str(targets[0]) if targets else None
    if not isinstance(size, int) or size < 0:
        raise InputError("the document's tree size is not a count", "give an mlprov export")
    here = getattr(ledger, "origin", "")
    if origin != here:
        raise InputError(
            f"the document was written from the ledger {origin}; this one is {here}",
            "check it against the ledger it was written from (--store)",
        )
    problems: list[str] = []
    if size > ledger.size:
        raise IntegrityError(
            f"the document covers {size} events but the ledger holds {ledger.size}",
            "the ledger lost events, or the document was altered; run `mlprov verify`",
        )
    if ledger.root(size).hex() != root:
        raise IntegrityError(
            f"the ledger's first {size} events do not have the root the document names",
            "the ledger's history differs from what was exported; run `mlprov verify`",
        )
    if ref is not None:
        named = str(ledger.find(ref, ("build", "dataset")).entry.digest)
        if named != target:
            raise InputError(
                f"the document is the export of {target or 'the whole ledger'}, not of {ref}",
                "give the target it was written for, or none",
            )
    events = _check_events(ledger, doc, pm, m, problems)
    expected = prov.build(ledger, scope_of(ledger, Digest(target) if target else None, size))
    expected = read(prov.serialize(expected, fmt), fmt)  # as the same format keeps it
    _compare(doc, expected, problems)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise IntegrityError(
            "the PROV document contradicts the ledger: " + "; ".join(problems[:_SHOWN]) + more,
            "regenerate it with `mlprov export prov`, or find who changed it",
        )
    scope = "ledger" if target is None else "target"
    return Checked(fmt, scope, target, size, events, len(list(doc.get_records())))


def _check_events(
    ledger: LedgerCore, doc: ProvDocument, pm: Any, m: Any, problems: list[str]
) -> int:
    """Each event the document names: in the ledger, hashing to its digest, same kind."""
    seen = 0
    for record in doc.get_records():
        if not record.is_element():
            continue
        for digest in _values(record, m["event"]):
            seen += 1
            try:
                entry = ledger.get(Digest.parse(str(digest)))
            except (InputError, NotFoundError):
                problems.append(f"{record.identifier} names event {digest}, not in the ledger")
                continue
            bodies = [str(b) for b in _values(record, m["body"])]
            if not any(Digest.of_bytes(b.encode()) == entry.digest for b in bodies):
                problems.append(f"{record.identifier}: no body hashes to {entry.digest}")
            types = {str(getattr(t, "uri", t)) for t in _values(record, pm.PROV_TYPE)}
            kind = prov.type_name(entry.event.type.value)
            if m[kind].uri not in types:
                problems.append(f"{record.identifier}: event {entry.digest} is a {kind}")
            labels = [str(v) for v in _values(record, pm.PROV_LABEL)]
            if entry.event.type.value != "run" and labels != [label(entry)]:
                problems.append(f"{record.identifier}: event {entry.digest} is {label(entry)}")
    return seen


def _compare(doc: ProvDocument, expected: ProvDocument, problems: list[str]) -> None:
    """Elements and relations the document adds, changes or leaves out."""
    have = {_key(r): r for r in doc.get_records()}
    want = {_key(r): r for r in expected.get_records()}
    ids_want = {k[1]: r for k, r in want.items() if k[1]}
    ids_have = {k[1]: r for k, r in have.items() if k[1]}
    for key, record in have.items():
        if key in want:
            continue
        if key[1] and key[1] in ids_want:
            problems.append(f"{_name(record)} has attributes the ledger does not give")
        elif key[1]:
            problems.append(f"{_name(record)} is not in the ledger")
        else:
            problems.append(f"{_name(record)} is not a relation the ledger holds")
    for key, record in want.items():
        if key in have or (key[1] and key[1] in ids_have):
            continue
        problems.append(f"it leaves out {_name(record)}")
