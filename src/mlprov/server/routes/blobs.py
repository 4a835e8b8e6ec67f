"""The blob routes: the files events name (record sets, changes files, frozen manifests),
sent up before the events that name them and read back by name (ADR 0019).

`PUT /blobs/NAME` streams the body to a file beside the blobs, never whole in memory, up
to `MAX_BLOB` bytes; it is kept only if it is what its name says: a changes file or a
manifest whose SHA-256 is the hex of its name, a record set whose rows give the root of
its name (a set sent again under a root the server holds is merged, as `RecordSet.save`
merges: no key recorded under a root is lost). Anything else is refused with 422 and
nothing is kept. Sending a blob twice is harmless (200 both times).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlprov.errors import InputError, IntegrityError, NotFoundError
from mlprov.ledger.blobrefs import BLOB_NAME, by_bytes
from mlprov.server.auth import guarded
from mlprov.server.errors import body
from mlprov.server.state import LedgerDep
from mlprov.server.tokens import Permission

__all__ = ["MAX_BLOB", "PREFIX", "router"]

router = APIRouter(prefix="/api/v1", tags=["blobs"])
#: The path under which bodies are streamed to the route, not capped at the JSON limit.
PREFIX = "/api/v1/blobs/"
#: The largest blob accepted (a record set of some hundred million rows).
MAX_BLOB = 8 * 1024**3

BlobName = Annotated[
    str,
    Path(
        pattern=BLOB_NAME.pattern,
        max_length=100,
        description="<64 hex>.parquet (a record set, by its root), <64 hex>.changes.parquet "
        "or <64 hex>.manifest.json (by the SHA-256 of the bytes)",
    ),
]


class BlobFacts(BaseModel):
    name: str
    bytes: int
    created: bool  # False: the server held it already


class BlobFile(FileResponse):
    media_type = "application/octet-stream"


_BYTES = {200: {"content": {BlobFile.media_type: {}}, "description": "The blob's bytes."}}


def _keep_bytes(folder: FilePath, upload: FilePath, name: str, sha256: str) -> bool:
    if sha256 != name[:64]:
        raise InputError(
            f"the body's SHA-256 is {sha256}, not the {name[:64]} its name gives; nothing was kept",
            "send the file's exact bytes, named <SHA-256 hex of the bytes><suffix>",
        )
    target = folder / name
    if target.exists():
        return False
    os.replace(upload, target)
    return True


def _keep_set(folder: FilePath, upload: FilePath, name: str) -> bool:
    from mlprov.records.sets import RecordSet

    existed = (folder / name).exists()
    scratch = FilePath(tempfile.mkdtemp(dir=folder, prefix=".check-"))
    try:
        os.replace(upload, scratch / name)
        try:
            loaded = RecordSet.load(scratch / name)
        except IntegrityError as exc:
            raise InputError(
                f"{exc.message}; nothing was kept",
                "send the record-set file as RecordSet.save wrote it, named by its root",
            ) from None
        except InputError:
            raise InputError(
                f"the body sent as {name} is not a record-set file; nothing was kept",
                "send the record-set file as RecordSet.save wrote it, named by its root",
            ) from None
        loaded.save(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return not existed


@guarded(
    router, "PUT", "/blobs/{blob}", Permission.RECORD, response_model=BlobFacts, tags=["record"]
)
async def put_blob(request: Request, ledger: LedgerDep, blob: BlobName) -> BlobFacts | JSONResponse:
    """Keep a file an event will name, checked against its name (`created` is false when
    the server held it already). Send it before the event: `POST /events` refuses an event
    naming a file the server does not hold."""
    folder = ledger.blobs_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    upload = FilePath(name)
    try:
        hashed, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BLOB:
                    return body(
                        413,
                        f"the blob is larger than {MAX_BLOB} bytes; nothing was kept",
                        "a larger record set needs a server with a larger limit",
                    )
                hashed.update(chunk)
                out.write(chunk)
        if by_bytes(blob):
            created = await run_in_threadpool(_keep_bytes, folder, upload, blob, hashed.hexdigest())
        else:
            created = await run_in_threadpool(_keep_set, folder, upload, blob)
    finally:
        upload.unlink(missing_ok=True)
    return BlobFacts(name=blob, bytes=size, created=created)


@guarded(router, "GET", "/blobs/{blob}", Permission.READ, responses=_BYTES, tags=["read"])
def get_blob(ledger: LedgerDep, blob: BlobName) -> BlobFile:
    """A file an event names, as the server keeps it (check it against its name)."""
    path = ledger.blobs_dir / blob
    if not path.is_file():
        raise NotFoundError(f"the server holds no blob {blob}", "see the event that names it")
    return BlobFile(path)
