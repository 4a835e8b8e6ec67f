"""Records: the canonical bytes and digest of one training example, whatever its reader.

``mlprov-record/1`` (``docs/spec/record-digest.md``) defines a record's canonical bytes as
the RFC 8785 JSON of its columns, with one encoding for each type JSON lacks; the same
row read from Parquet, JSONL, CSV, Arrow, pandas, polars, ``datasets`` or a list of dicts
has the same digest.

The readers need pyarrow, so they are imported on first use: ``mlprov.ledger`` imports
``mlprov.records.subjects`` and must not pay for (or require) pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlprov.records.canonical import SPEC, canonical_record, encode_value, record_digest
from mlprov.records.subjects import SubjectHasher

if TYPE_CHECKING:
    from mlprov.records.readers import digest_batch, digest_rows, read_batches

__all__ = [
    "SPEC",
    "SubjectHasher",
    "canonical_record",
    "digest_batch",
    "digest_rows",
    "encode_value",
    "read_batches",
    "record_digest",
]

_LAZY = frozenset({"digest_batch", "digest_rows", "read_batches"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mlprov.records import readers

        return getattr(readers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
