"""Blobs: small files kept content-addressed beside the record sets (`.mlprov/blobs/`).

A blob is named `<sha256 hex><suffix>` (`.changes.parquet`, `.manifest.json`). It is
written atomically once — an existing file of that name already holds those bytes — and
read back only after its bytes are checked against the digest that names it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mlprov.digest import Digest
from mlprov.errors import IntegrityError, NotFoundError

__all__ = ["get", "put"]


def put(directory: Path, data: bytes, suffix: str) -> Digest:
    """Keep `data` as `<digest hex><suffix>` in `directory`; return its digest."""
    digest = Digest.of_bytes(data)
    path = directory / f"{digest.hex}{suffix}"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest


def get(directory: Path, digest: Digest | str, suffix: str, what: str, written_by: str) -> bytes:
    """The bytes of a blob, checked against `digest`; `what` names it in errors and
    `written_by` says what writes it (the hint when it is missing)."""
    digest = Digest(digest)
    path = directory / f"{digest.hex}{suffix}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{what} {path.name} is not in {directory}", written_by) from None
    if Digest.of_bytes(data) != digest:
        raise IntegrityError(
            f"{path.name} does not match its digest",
            "the file was altered; restore it from a trusted copy",
        )
    return data
