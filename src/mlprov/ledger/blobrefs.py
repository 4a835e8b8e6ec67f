"""The files an event names: record sets, changes files and frozen manifests.

A ledger keeps them beside its store (`.mlprov/blobs/`), content-addressed, and an event
never names one that is not there. A server checks each before it records an event sent
from another machine, and a served ledger sends each first (ADR 0019).

    source.record_root      <root hex>.parquet             a record set (RecordSet.save)
    transform.output_root   <root hex>.parquet
    transform.changes       <sha256 hex>.changes.parquet   a step's changes file
    dataset.record_root     <root hex>.parquet
    build.manifest_digest   <sha256 hex>.manifest.json     the frozen manifest

A record set is named by its root (a tree over its rows' digests and subject hashes); the
other files by the SHA-256 of their bytes. References an event copies from one recorded
before it (`used[].record_root`, `eval_root`) were checked when that one was recorded.
"""

from __future__ import annotations

import re

from mlprov.digest import Digest
from mlprov.ledger.events import Event

__all__ = ["BLOB_NAME", "SET_SUFFIX", "by_bytes", "named_blobs"]

SET_SUFFIX = ".parquet"
_CHANGES, _MANIFEST = ".changes.parquet", ".manifest.json"
#: Every name a blob may have.
BLOB_NAME = re.compile(r"[0-9a-f]{64}(\.parquet|\.changes\.parquet|\.manifest\.json)")

_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "source": (("record_root", SET_SUFFIX),),
    "transform": (("output_root", SET_SUFFIX), ("changes", _CHANGES)),
    "dataset": (("record_root", SET_SUFFIX),),
    "build": (("manifest_digest", _MANIFEST),),
}


def named_blobs(event: Event) -> list[str]:
    """The names of the files `event` names, in the order of the table above."""
    found = []
    for field, suffix in _FIELDS.get(event.type.value, ()):
        value = event.payload.get(field)
        if isinstance(value, str):
            found.append(Digest(value).hex + suffix)
    return found


def by_bytes(name: str) -> bool:
    """Whether the blob `name` is named by the SHA-256 of its bytes (not a set's root)."""
    return name.endswith((_CHANGES, _MANIFEST))
