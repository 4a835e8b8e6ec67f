"""A build as a signed in-toto attestation: a Statement v1 with an SLSA Provenance v1
predicate, in a DSSE envelope signed with the ledger's Ed25519 key (ADR 0017).

- **subject**: the model artifact, named after the build, with the SHA-256 the build
  recorded (a file's bytes, or a directory's `mlprov-artifact/1` digest: ADR 0007).
- **buildDefinition**: `buildType` :data:`BUILD_TYPE`; `externalParameters` the recorded
  config and code version; `internalParameters` what mlprov decided (the gates' result,
  the override, who recorded the build); `resolvedDependencies` the manifest frozen at
  build time (with the reviewer status and risks), the dataset (its record-set root), every
  source (bytes and record-set root, rights basis, review at build time), the eval set, the
  config file and the code commit.
- **runDetails**: the builder is the ledger (`mlprov://<origin>`); `invocationId` the build
  event's digest and `finishedOn` its time; the build event itself is the one byproduct.

A record-set root is a Merkle root, not a hash of bytes, so it is given under the digest
algorithm name :data:`SET_ROOT` (in-toto lets consumers ignore names they do not know).
The statement is serialised once as RFC 8785 JSON and those exact bytes are signed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import quote

from mlprov.answers.view import LedgerView, view
from mlprov.capture.build import recorded
from mlprov.digest import Digest, canonical_json
from mlprov.errors import InputError
from mlprov.export.attestation import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
from mlprov.export.dsse import Envelope
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.keys import SignerKey

__all__ = ["BUILD_TYPE", "SET_ROOT", "attest", "ledger_uri", "statement"]

BUILD_TYPE = "urn:mlprov:slsa:build-type:v1"
SET_ROOT = "mlprovSetRoot"
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def ledger_uri(ledger: LedgerCore) -> str:
    """`mlprov://<origin>`: the ledger as a URI (the builder id, the namespace of events)."""
    return "mlprov://" + quote(ledger.origin, safe="/:@")


def _event_uri(ledger: LedgerCore, digest: Digest | str) -> str:
    return f"{ledger_uri(ledger)}/events/{Digest(str(digest)).hex}"


def _digests(**found: Any) -> dict[str, str]:
    """A DigestSet from `sha256=`, `mlprovSetRoot=` …, leaving out what is not recorded."""
    return {k: Digest(str(v)).hex for k, v in found.items() if v}


def _clean(value: Mapping[str, Any]) -> dict[str, Any]:
    """Without the keys whose value is None or empty: unset and empty mean the same."""
    return {k: v for k, v in value.items() if v is not None and v != [] and v != {}}


def statement(ledger: LedgerCore, build: Entry | Digest | str) -> dict[str, Any]:
    """The in-toto Statement of a recorded build (see the module doc). InputError when the
    build recorded no artifact: there is nothing to attest then."""
    entry = recorded(ledger, build, ("build",))
    p = entry.event.payload
    if not p.get("artifact_digest"):
        raise InputError(
            f"build {entry.event.name} recorded no artifact, so there is no subject to attest",
            "record the build with its model: ledger.build(..., artifact=PATH)",
            cli_hint="record the build with its model: `mlprov build ... --artifact PATH`",
        )
    seen = view(ledger, entry)
    subject = {
        "name": entry.event.name,
        "digest": _digests(sha256=p["artifact_digest"]),
        "annotations": _clean(
            {
                "artifactKind": p.get("artifact_kind"),
                "digestSemantics": p.get("artifact_semantics"),
                "files": p.get("artifact_files"),
            }
        ),
    }
    external = _clean({"config": dict(p.get("config") or {}), "codeVersion": p.get("code_version")})
    internal = _clean(
        {
            "gate": p.get("gate"),
            "forced": p.get("forced"),
            "findings": list(p.get("findings") or ()),
            "codeDirty": p.get("code_dirty"),
            "recordedBy": entry.event.actor,
        }
    )
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": internal,
            "resolvedDependencies": _dependencies(ledger, entry, seen),
        },
        "runDetails": {
            "builder": {"id": ledger_uri(ledger), "version": {"mlprov": _version()}},
            "metadata": {
                "invocationId": str(entry.digest),
                "finishedOn": entry.event.recorded_at,
            },
            "byproducts": [
                {
                    "name": "build_event",
                    "uri": _event_uri(ledger, entry.digest),
                    "digest": _digests(sha256=entry.digest),
                    "mediaType": "application/json",
                    "annotations": {"logIndex": entry.seq, "origin": ledger.origin},
                }
            ],
        },
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def _dependencies(ledger: LedgerCore, build: Entry, seen: LedgerView) -> list[dict[str, Any]]:
    p = build.event.payload
    found: list[dict[str, Any]] = []
    approval = seen.approval
    if p.get("manifest_digest"):
        found.append(
            {
                "name": "training_manifest",
                "digest": _digests(sha256=p["manifest_digest"]),
                "mediaType": "application/json",
                "annotations": _clean(
                    {
                        "reviewerStatus": approval.status,
                        "limits": list(approval.limits),
                        "unresolvedRisks": list(approval.risks),
                    }
                ),
            }
        )
    data = seen.dataset
    d = data.event.payload
    found.append(
        {
            "name": "dataset:" + _label(data),
            "uri": _event_uri(ledger, data.digest),
            "digest": _digests(sha256=d.get("byte_digest"), **{SET_ROOT: d.get("record_root")}),
            "annotations": _clean(
                {"event": str(data.digest), "recordCount": d.get("record_count")}
            ),
        }
    )
    for s in seen.sources:
        if s.entry is None:  # named by the dataset, never recorded here: said, not hidden
            found.append({"name": "source:" + s.ref, "annotations": {"recorded": False}})
            continue
        sp = s.entry.event.payload
        found.append(
            {
                "name": "source:" + s.ref,
                "uri": _event_uri(ledger, s.entry.digest),
                "digest": _digests(
                    sha256=sp.get("byte_digest"), **{SET_ROOT: sp.get("record_root")}
                ),
                "annotations": _clean(
                    {
                        "event": str(s.entry.digest),
                        "role": "opt_out_list" if s.opt_out else "training_data",
                        "rightsBasis": s.rights_basis or None,
                        "license": sp.get("license"),
                        "recordCount": sp.get("record_count"),
                        "reviewStatusAtBuild": s.at_build.state if s.at_build else None,
                    }
                ),
            }
        )
    found += _eval_set(ledger, build, data)
    if p.get("config_digest"):
        found.append(
            {
                "name": "config",
                "digest": _digests(sha256=p["config_digest"]),
                "mediaType": "application/json",
            }
        )
    code = p.get("code_version")
    if isinstance(code, str) and _COMMIT.fullmatch(code):
        found.append({"name": "code", "digest": {"gitCommit": code}})
    return found


def _eval_set(ledger: LedgerCore, build: Entry, dataset: Entry) -> list[dict[str, Any]]:
    p = build.event.payload
    if not p.get("eval_set"):
        return []
    parents = [e for e in ledger.parents(build.digest) if e.digest != dataset.digest]
    event = next((e for e in parents if e.event.name == p["eval_set"]), None)
    return [
        {
            "name": "eval_set:" + p["eval_set"],
            **({"uri": _event_uri(ledger, event.digest)} if event else {}),
            "digest": _digests(**{SET_ROOT: p.get("eval_root")}),
            "annotations": _clean({"event": str(event.digest) if event else None}),
        }
    ]


def _label(entry: Entry) -> str:
    version = entry.event.payload.get("version")
    name = entry.event.name or str(entry.digest)
    return f"{name}@{version}" if version and entry.event.type.value == "dataset" else name


def _version() -> str:
    try:
        return metadata.version("mlprov")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def attest(
    ledger: LedgerCore, build: Entry | Digest | str, key: SignerKey | None = None
) -> Envelope:
    """The build's statement as a DSSE envelope signed with `key` (default: the ledger's
    own signing key, the one its checkpoints are signed with)."""
    body = canonical_json(statement(ledger, build))
    return Envelope.sign(PAYLOAD_TYPE, body, key or ledger.signer())
