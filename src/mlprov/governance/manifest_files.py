"""Manifest files: a hand-written manifest checked against the files it names (recorded by
:mod:`mlprov.capture.handwritten`), and the manifest a build was allowed on, frozen as a
content-addressed file.

Every file a manifest names (`data_file`, a source's `file`, an exclusion report's
`file`) must lie inside the manifest's folder: absolute paths, `~` and `..` escapes are
refused. Each named file that is there is digested, and a digest the manifest gives — full
or abbreviated — must agree with it before anything is recorded.

**Frozen manifests.** A build freezes the manifest of its dataset as the ledger saw it when
the build was recorded (review states included, the list of builds left out): the RFC 8785
canonical JSON of the manifest, saved as `<hex>.manifest.json` beside the record sets. Its
SHA-256 is the build's `manifest_digest` — the `training_manifest=sha256:…` of the model
card — and anyone can re-hash the file to check it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlprov.digest import Digest, canonical_json, digest_file, shorten
from mlprov.errors import InputError
from mlprov.governance.manifest import Manifest, from_ledger, read
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry
from mlprov.store import blobs

__all__ = [
    "checked",
    "dataset_payload",
    "digest_matches",
    "freeze",
    "frozen",
    "resolve_inside",
]


def resolve_inside(base: Path, name: str, what: str) -> Path:
    """`name` as a path inside the folder `base`; absolute paths and escapes are refused."""
    path = Path(name)
    if path.is_absolute() or name.startswith("~") or re.match(r"^[A-Za-z]:", name):
        raise InputError(
            f"{what} {name!r} is an absolute path",
            "name files relative to the manifest's folder",
        )
    root = base.resolve()
    full = (root / path).resolve()
    if full != root and root not in full.parents:
        raise InputError(
            f"{what} {name!r} leaves the manifest's folder",
            "keep the files a manifest names in its folder or below it",
        )
    return full


def digest_matches(written: str, actual: Digest) -> bool:
    """Whether a full or abbreviated digest as written agrees with `actual`."""
    return actual.hex.startswith(written.removeprefix("sha256:").removesuffix("..."))


def _checked(base: Path, name: str | None, given: str | None, what: str) -> str | None:
    """The digest to record for a named file: the file's, once `given` agrees with it."""
    if name is None:
        return given
    path = resolve_inside(base, name, what)
    if not path.is_file():
        return given  # nothing here to check against: lint says it is unchecked
    actual = digest_file(path)
    if given is not None and not digest_matches(given, actual):
        raise InputError(
            f"{what} {name} has SHA-256 {shorten(actual.hex, 16)}, not the {given} the manifest "
            "gives: nothing was recorded",
            "fix the digest in the manifest, or restore the file it describes",
        )
    return str(actual)


def _with_files_checked(manifest: Manifest, base: Path) -> Manifest:
    sources = [
        s.model_copy(
            update={"byte_digest": _checked(base, s.file, s.byte_digest, f"source {s.ref} file")}
        )
        for s in manifest.source_records
    ]
    reports = [
        r.model_copy(update={"digest": _checked(base, r.file, r.digest, "exclusion report")})
        for r in manifest.exclusion_reports
    ]
    sha = _checked(base, manifest.data_file, manifest.sha256, "data file")
    return manifest.model_copy(
        update={
            "source_records": tuple(sources),
            "exclusion_reports": tuple(reports),
            "sha256": sha,
        }
    )


def checked(path: Path) -> tuple[bytes, Manifest]:
    """A hand-written manifest file's bytes, and its manifest with the digest of every file
    it names checked and made whole.

    Every file it names (`data_file`, a source's `file`, an exclusion report's `file`, a
    step's `removed_keys`) must lie inside the manifest's folder. Each one that is there is
    digested: a digest the manifest gives, full or abbreviated, must agree (else InputError
    and nothing is recorded), and the full digest is what is kept.
    """
    raw, written = read(path)
    for t in written.transforms:
        if t.removed_keys is not None:
            resolve_inside(path.parent, t.removed_keys, f"step {t.name} removed_keys")
    return raw, _with_files_checked(written, path.parent)


def dataset_payload(
    raw: bytes,
    manifest: Manifest,
    *,
    record_root: Digest | None = None,
    record_count: int | None = None,
) -> dict[str, Any]:
    """The payload of the dataset event a checked manifest records (its version left to
    the caller: the manifest's, else counted by `mlprov.ledger.names.next_version`). The
    record root and count are the data file's, when it was fingerprinted."""
    sha = manifest.sha256 if manifest.sha256 and manifest.sha256.startswith("sha256:") else None
    return {
        "name": manifest.dataset,
        "version": manifest.version,
        "byte_digest": sha,
        "record_count": record_count if record_count is not None else manifest.record_count,
        "record_root": record_root or manifest.record_root,
        "sources": [s.ref for s in manifest.source_records],
        "steps": [t.name for t in manifest.transforms],
        "manifest": manifest.model_dump(mode="json", exclude_none=True),
        "manifest_digest": Digest.of_bytes(raw),
    }


# -- frozen manifests ---------------------------------------------------------------------


def freeze(ledger: LedgerCore, dataset: Entry) -> Digest:
    """Save the manifest of `dataset` as the ledger sees it now; return its digest."""
    manifest = from_ledger(ledger, dataset).model_copy(update={"builds": ()})
    data = canonical_json(manifest.model_dump(mode="json", exclude_none=True))
    return blobs.put(ledger.blobs_dir, data, ".manifest.json")


def frozen(ledger: LedgerCore, digest: Digest | str) -> Manifest:
    """A frozen manifest, checked against its digest."""
    data = blobs.get(
        ledger.blobs_dir,
        digest,
        ".manifest.json",
        "the frozen manifest",
        "it is written beside the record sets when the build is recorded",
    )
    return Manifest.model_validate_json(data)
