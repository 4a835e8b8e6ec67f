"""The auditor's bundle: one folder from which an outsider checks a build without mlprov.

For one build, as the ledger stood at its newest signed checkpoint: every file is made
from the ledger cut at the checkpoint's size (:meth:`~mlprov.ledger.core.LedgerCore.at_size`),
so a review, quarantine or build recorded since appears in none of them. The build's events
are those the PROV export covers (:func:`mlprov.export.scope.scope_of`)::

    README.md                how to check each file with public tools
    bundle.json              this index: every file with its SHA-256 and what it is
    SHA256SUMS               the same digests, for `sha256sum -c`
    checkpoint.txt           the signed checkpoint (a C2SP signed note)
    keys/NAME-HASH.pub|.pem  the public keys that signed it and the attestation
    events/HEX.json          each event's canonical bytes: their SHA-256 is HEX
    proofs/HEX.json          each event's RFC 9162 inclusion proof at the checkpoint
    record-sets.json         the record-set roots of the sources and datasets
    prov.json                the W3C PROV document of the same events (PROV-JSON)
    attestation.intoto.json  the signed in-toto / SLSA attestation (a DSSE envelope)
    croissant/               the training set's Croissant metadata and data files, when
                             its data files are given

The folder is written beside its destination under a temporary name and renamed into
place at the end, so a failure leaves nothing behind and no half-made bundle. The same
module gives each format's bytes to the Python face (:func:`export`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlprov.digest import Digest, digest_file
from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.export.bundlereadme import readme
from mlprov.export.scope import scope_of
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.ledger.keys import SignerKey, VerifierKey

__all__ = ["FORMAT", "FORMATS", "Bundle", "export", "write_bundle"]

FORMAT = "mlprov.bundle/v1"
#: What `export` writes: each the bytes of one open format.
FORMATS = ("prov", "croissant", "intoto", "openlineage")


@dataclass(frozen=True)
class Bundle:
    """A bundle as written: where, of which build, at which checkpoint, and its files
    (each path, relative to the folder, with its SHA-256 hex)."""

    directory: Path
    build: Entry
    checkpoint: SignedCheckpoint
    files: tuple[tuple[str, str], ...]
    events: int
    croissant: bool


def export(
    ledger: LedgerCore,
    format: str,
    target: Entry | Digest | str | None = None,
    *,
    syntax: str = "json",
    data: Sequence[Path] = (),
    base: Path | None = None,
    key: SignerKey | None = None,
) -> bytes:
    """One open format's bytes, as `mlprov export FORMAT TARGET` writes them.

    - `prov`: a build, a dataset or (`target` None) the whole ledger as W3C PROV;
      `syntax` is `json`, `turtle` or `jsonld`.
    - `croissant`: a dataset's Croissant 1.1 metadata.json; `data` are the files of its
      records, `base` the folder the metadata will sit in (default: the current one).
    - `intoto`: a build's signed in-toto attestation (`key`: default, the ledger's).
    - `openlineage`: the runs that made a dataset or build (None: every run), as NDJSON.
    """
    if format == "prov":
        from mlprov.export import prov

        if syntax not in prov.FORMATS:
            raise InputError(f"unknown PROV syntax {syntax!r}", "use json, turtle or jsonld")
        return prov.serialize(prov.document(ledger, target), syntax)
    if format == "croissant":
        from mlprov.export import croissant

        if target is None:
            raise InputError("Croissant describes one dataset", "name the dataset to export")
        folder = (base if base is not None else Path.cwd()).absolute()
        return croissant.dumps(croissant.metadata(ledger, target, list(data), folder))
    if format == "intoto":
        from mlprov.export.intoto import attest

        if target is None:
            raise InputError("an attestation is of one build", "name the build to attest")
        return attest(ledger, target, key).dumps()
    if format == "openlineage":
        from mlprov.export.openlineage import ndjson, run_events

        ref = target if target is None or isinstance(target, Entry) else str(target)
        return ndjson(run_events(ledger, ref))
    raise InputError(
        f"unknown export format {format!r}",
        f"use one of {', '.join(FORMATS)}, or write a bundle with export_bundle",
    )


# -- the bundle -------------------------------------------------------------------------------


def write_bundle(
    ledger: LedgerCore,
    build: Entry | Digest | str,
    directory: Path,
    *,
    data: Sequence[Path] = (),
    key: SignerKey | None = None,
) -> Bundle:
    """Write the auditor's bundle of `build` (NAME, NAME@VERSION or a digest) into
    `directory`, which must not exist or be empty; `data` are the files of the training
    set's records, for its Croissant metadata (they are copied into the bundle); `key`
    signs the attestation (default: the ledger's own key)."""
    directory = Path(directory).absolute()
    _check_destination(directory)
    entry = ledger.find(build, ("build",)).entry
    signed = _covering_checkpoint(ledger, entry)
    keys = signed.verify(ledger.trusted_keys())  # a checkpoint that fails is no evidence
    signer = key or ledger.signer()
    if signer.verifier() not in keys:
        keys.append(signer.verifier())
    # Every document is made from the ledger as it stood at the checkpoint, so that none
    # can name an event (a later review, quarantine or build) the bundle cannot prove.
    ledger = ledger.at_size(signed.checkpoint.size)
    files = _documents(ledger, entry, signed, keys, signer)
    events = sum(1 for path in files if path.startswith("events/"))
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.partial-"))
    try:
        copied = _croissant(ledger, entry, data, staging / "croissant", files) if data else {}
        files["README.md"] = readme(_facts(ledger, entry, signed, keys, signer, files)).encode()
        listing = {path: _sha256(body) for path, body in files.items()} | copied
        listing = dict(sorted(listing.items()))
        files["bundle.json"] = _index(ledger, entry, signed, listing)
        listing["bundle.json"] = _sha256(files["bundle.json"])
        files["SHA256SUMS"] = "".join(f"{h}  {p}\n" for p, h in sorted(listing.items())).encode()
        for path, body in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        _move_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(directory, entry, signed, tuple(sorted(listing.items())), events, bool(data))


def _check_destination(directory: Path) -> None:
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise InputError(f"{directory} exists and is not a folder", "give a new folder's path")
    if directory.is_dir() and any(directory.iterdir()):
        raise InputError(
            f"{directory} is not empty: a bundle is written into a new or empty folder",
            "give a new folder's path, or empty this one",
        )
    if not directory.parent.is_dir():
        raise InputError(
            f"cannot write {directory}: the folder {directory.parent} does not exist",
            "create it first",
        )


def _move_into_place(staging: Path, directory: Path) -> None:
    try:
        os.replace(staging, directory)  # replaces an empty folder, never a full one
    except OSError as exc:
        raise InputError(
            f"cannot write {directory}: {exc.strerror}",
            "give a new folder's path (another writer may have filled it)",
        ) from None


def _covering_checkpoint(ledger: LedgerCore, entry: Entry) -> SignedCheckpoint:
    found = ledger.checkpoints()
    newest = max(found, key=lambda c: c.checkpoint.size, default=None)
    if newest is None or newest.checkpoint.size <= entry.seq:
        since = "no checkpoint was ever signed"
        if newest is not None:
            since = f"the newest checkpoint covers the first {newest.checkpoint.size} events"
        raise NotFoundError(
            f"no signed checkpoint covers build {entry.event.name} (event {entry.seq} of the "
            f"log): {since}",
            "sign one with ledger.checkpoint(), then export the bundle",
            cli_hint="sign one with `mlprov checkpoint`, then export the bundle",
        )
    return newest


def _documents(
    ledger: LedgerCore,
    entry: Entry,
    signed: SignedCheckpoint,
    keys: Sequence[VerifierKey],
    signer: SignerKey,
) -> dict[str, bytes]:
    """Every file but the Croissant, the README and the indexes, built in memory first so
    that an error (no artifact, a missing extra) writes nothing."""
    from mlprov.export import prov
    from mlprov.export.intoto import attest

    cp = signed.checkpoint
    scope = scope_of(ledger, entry, cp.size)
    note = signed.serialize()
    files: dict[str, bytes] = {
        "attestation.intoto.json": attest(ledger, entry, signer).dumps(),
        "checkpoint.txt": note,
    }
    for e in scope.entries:
        proof = ledger.inclusion_proof(e.digest, cp.size)
        proof = proof.model_copy(update={"checkpoint": note.decode()})
        if proof.root != cp.root.hex():
            raise IntegrityError(
                f"the log's root at size {cp.size} is not the one its signed checkpoint names",
                "run `mlprov verify`: the ledger's history does not match what was signed",
            )
        proof.verify()
        files[f"events/{e.digest.hex}.json"] = e.body
        files[f"proofs/{e.digest.hex}.json"] = proof.dumps()
    for k in keys:
        stem = _key_path(k)
        files[stem + ".pub"] = (k.text() + "\n").encode()
        files[stem + ".pem"] = _pem(k)
    files["record-sets.json"] = _json({"record_sets": _record_sets(scope.entries)})
    files["prov.json"] = prov.serialize(prov.build(ledger, scope), "json")
    return files


def _record_sets(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    found = []
    for e in entries:
        p = e.event.payload
        if e.event.type.value in ("source", "dataset") and p.get("record_root"):
            found.append(
                {
                    "event": str(e.digest),
                    "type": e.event.type.value,
                    "name": e.event.name,
                    "record_root": str(p["record_root"]),
                    "record_count": p.get("record_count"),
                }
            )
    return found


def _croissant(
    ledger: LedgerCore,
    build: Entry,
    data: Sequence[Path],
    folder: Path,
    files: dict[str, bytes],
) -> dict[str, str]:
    """Copy the training set's data files into `folder` (returning each one's path in
    the bundle and SHA-256) and add its Croissant metadata to `files`."""
    from mlprov.capture.build import trained_on
    from mlprov.export import croissant

    _, dataset = trained_on(ledger, build)
    folder.mkdir()
    copies, copied = [], {}
    for path in data:
        if not Path(path).is_file():
            raise NotFoundError(f"no data file at {path}", "check the path")
        copy = folder / Path(path).name
        if copy.exists():
            raise InputError(
                f"two data files are named {copy.name}", "give data files distinct names"
            )
        shutil.copyfile(path, copy)
        copies.append(copy)
        copied[f"croissant/{copy.name}"] = digest_file(copy).hex
    files["croissant/metadata.json"] = croissant.dumps(
        croissant.metadata(ledger, dataset, copies, folder)
    )
    return copied


def _facts(
    ledger: LedgerCore,
    entry: Entry,
    signed: SignedCheckpoint,
    keys: Sequence[VerifierKey],
    signer: SignerKey,
    files: dict[str, bytes],
) -> dict[str, Any]:
    """What the README names: the build, the checkpoint, the keys and the files."""
    p = entry.event.payload
    cp = signed.checkpoint
    by_note = next(  # the first signature by a trusted key (verify found at least one)
        k for s in signed.signatures for k in keys if (k.name, k.key_hash) == (s.name, s.key_hash)
    )
    return {
        "build": entry.event.name or str(entry.digest),
        "build_hex": entry.digest.hex,
        "artifact": Digest(str(p["artifact_digest"])).hex,
        "artifact_kind": str(p.get("artifact_kind") or "file"),
        "origin": ledger.origin,
        "size": cp.size,
        "root": cp.root.hex(),
        "keys": [(k.key_id, _key_path(k)) for k in keys],
        "checkpoint_key": by_note.name,
        "checkpoint_pem": _key_path(by_note),
        "attestation_pem": _key_path(signer.verifier()),
        "events": sum(1 for f in files if f.startswith("events/")),
        "croissant": "croissant/metadata.json" in files,
    }


def _index(
    ledger: LedgerCore, entry: Entry, signed: SignedCheckpoint, listing: dict[str, str]
) -> bytes:
    cp = signed.checkpoint
    p = entry.event.payload
    return _json(
        {
            "format": FORMAT,
            "origin": ledger.origin,
            "build": {
                "name": entry.event.name,
                "event": str(entry.digest),
                "artifact_digest": str(p["artifact_digest"]),
            },
            "checkpoint": {
                "size": cp.size,
                "root": cp.root.hex(),
                "signers": signed.signers,
            },
            "files": [{"path": path, "sha256": h} for path, h in listing.items()],
        }
    )


def _pem(key: VerifierKey) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _key_path(key: VerifierKey) -> str:
    """Where a key's files go, without their suffix: its name (often a URL such as
    example.com/log) as one plain file name, and its key hash."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", key.name).lstrip(".") or "key"
    return f"keys/{stem}-{key.key_hash:08x}"


def _json(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
