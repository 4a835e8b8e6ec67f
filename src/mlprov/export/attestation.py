"""Checking an in-toto attestation with a public key alone, without a ledger.

`check` verifies the DSSE signature over the exact payload bytes (any changed byte is a
SignatureError, exit 10), then the payload type and the shape of the Statement v1 and its
SLSA Provenance v1 predicate (a validly signed payload that is not one is an InputError).
It needs no ledger, store or record set: only the envelope and the verifier key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mlprov.errors import InputError
from mlprov.export.dsse import Envelope
from mlprov.ledger.keys import VerifierKey

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "Attestation", "check"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class Attestation:
    """A checked attestation: who signed it and what it states."""

    keyid: str
    statement: dict[str, Any]

    @property
    def subjects(self) -> list[tuple[str, dict[str, str]]]:
        return [(s.get("name", ""), dict(s["digest"])) for s in self.statement["subject"]]

    @property
    def dependencies(self) -> list[tuple[str, dict[str, str]]]:
        build = self.statement["predicate"].get("buildDefinition", {})
        return [
            (d.get("name") or d.get("uri") or "", dict(d.get("digest") or {}))
            for d in build.get("resolvedDependencies") or ()
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": True,
            "keyid": self.keyid,
            "predicateType": self.statement["predicateType"],
            "subject": [{"name": n, "digest": d} for n, d in self.subjects],
            "dependencies": [{"name": n, "digest": d} for n, d in self.dependencies],
        }


def check(data: bytes, key: VerifierKey, where: str = "the file") -> Attestation:
    """Verify a DSSE envelope of an in-toto statement with `key`: the signature over the
    exact payload bytes (SignatureError, exit 10, on any changed byte), then the payload
    type and the statement's shape (InputError: signed, but not what mlprov writes)."""
    envelope = Envelope.parse(data, where)
    signature = envelope.verify(key)
    if envelope.payload_type != PAYLOAD_TYPE:
        raise InputError(
            f"{where} is signed, but its payload type is {envelope.payload_type!r}, "
            f"not {PAYLOAD_TYPE}",
            "give an in-toto attestation",
        )
    try:
        doc = orjson.loads(envelope.payload)
    except orjson.JSONDecodeError:
        raise InputError(f"the signed payload of {where} is not JSON") from None
    problem = _shape_problem(doc)
    if problem:
        raise InputError(
            f"the signed payload of {where} is not an in-toto Statement v1 with SLSA "
            f"provenance: {problem}",
            "give the file `mlprov export intoto` wrote",
        )
    return Attestation(signature.keyid, doc)


def _shape_problem(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return "it is not an object"
    if doc.get("_type") != STATEMENT_TYPE:
        return f"its _type is not {STATEMENT_TYPE}"
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "it has no subject"
    for s in subjects:
        digest = s.get("digest") if isinstance(s, dict) else None
        if not isinstance(digest, dict) or not digest:
            return "a subject has no digest"
        if not all(isinstance(v, str) for v in digest.values()):
            return "a subject's digest is not text"
    if doc.get("predicateType") != PREDICATE_TYPE:
        return f"its predicateType is not {PREDICATE_TYPE}"
    predicate = doc.get("predicate")
    build = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    run = predicate.get("runDetails") if isinstance(predicate, dict) else None
    if not isinstance(build, dict) or not isinstance(build.get("buildType"), str):
        return "its predicate has no buildDefinition.buildType"
    if not isinstance(build.get("externalParameters"), dict):
        return "its predicate has no buildDefinition.externalParameters"
    deps = build.get("resolvedDependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, dict) for d in deps):
        return "its resolvedDependencies are not a list of resource descriptors"
    builder = run.get("builder") if isinstance(run, dict) else None
    if not isinstance(builder, dict) or not isinstance(builder.get("id"), str):
        return "its predicate has no runDetails.builder.id"
    return None
