"""A ledger served by `mlprov serve`, reached over HTTP: the transport a served ledger
(:mod:`mlprov.ledger.remote`) records and reads through (ADR 0019).

It knows routes, JSON and files, not events: the ledger above it makes and checks those.
The token goes in the `Authorization` header of each request and nowhere else: it is not
kept in any attribute a repr, an error or a log shows. A refusal comes back as the mlprov
error of its status, with the server's own message and hint; a 409 is told apart by
the body's `kind` (never by its wording):

    401, 403  StoreError       the token is missing, refused, or its role may not do this
    404       NotFoundError    409  DuplicateError (kind `duplicate`), GateBlocked
    413, 422  InputError            (`blocked`), else ConflictError
    500, 503  StoreError       (the server says what failed)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from mlprov.errors import (
    ConflictError,
    DuplicateError,
    GateBlocked,
    InputError,
    MissingExtraError,
    MlprovError,
    NotFoundError,
    StoreError,
)

__all__ = ["SCHEMES", "TOKEN_ENV", "ServedStore", "is_served", "unsupported"]

SCHEMES = ("http://", "https://")
#: The environment variable a served ledger's token is read from.
TOKEN_ENV = "MLPROV_TOKEN"
_API = "/api/v1"
_CHUNK = 1024 * 1024
#: A 409's error, by the body's kind.
_CONFLICTS: dict[str, type[ConflictError] | type[GateBlocked]] = {
    "duplicate": DuplicateError,
    "blocked": GateBlocked,
}


def is_served(url: str) -> bool:
    """Whether `url` names a ledger served over HTTP(S) rather than a store."""
    return url.lower().startswith(SCHEMES)


def unsupported(what: str, instead: str) -> NoReturn:
    """Refuse something a served ledger cannot do from here; `instead` says what can."""
    raise InputError(f"a ledger opened by its server's URL cannot {what}", instead)


def _shown(url: str) -> str:
    """The URL without any user or password, as errors show it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


class ServedStore:
    """The HTTP client of one server: `ServedStore(url, token)`; close it when done."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 120.0) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - the extra is installed in tests
            raise MissingExtraError("httpx", "client") from None
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise InputError(
                f"a ledger served at {_shown(url)} needs a token",
                f"pass token=... to mlprov.open, or set {TOKEN_ENV}; an admin makes one "
                "with `mlprov tokens create NAME --role recorder`",
            )
        self.url = _shown(url)
        base = url.rstrip("/")
        base = base if base.endswith(_API) else base + _API
        self._http = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
        )
        self._transport_error: type[Exception] = httpx.TransportError

    def __repr__(self) -> str:
        return f"ServedStore({self.url!r})"

    def another(self) -> ServedStore:
        """A second client of the same server with the same token (for another thread)."""
        import copy

        import httpx

        other = copy.copy(self)
        other._http = httpx.Client(
            base_url=self._http.base_url, headers=self._http.headers, timeout=self._http.timeout
        )
        return other

    def close(self) -> None:
        self._http.close()

    # -- requests -------------------------------------------------------------------------
    def _refused(self, status: int, body: Any) -> MlprovError:
        data = body if isinstance(body, dict) else {}
        message = str(data.get("error") or f"the server answered {status}")
        hint = data.get("hint") if isinstance(data.get("hint"), str) else None
        said = f"the server at {self.url} refused: {message}"
        if status in (401, 403):
            return StoreError(said, hint)
        if status == 404:
            return NotFoundError(message, hint)
        if status == 409:
            return _CONFLICTS.get(str(data.get("kind")), ConflictError)(message, hint)
        if status in (413, 422):
            return InputError(message, hint)
        return StoreError(f"the server at {self.url} failed: {message}", hint)

    def call(self, method: str, path: str, **options: Any) -> Any:
        """Send one request; its JSON answer, or the mlprov error its refusal maps to."""
        try:
            response = self._http.request(method, path, **options)
        except self._transport_error as exc:
            raise StoreError(
                f"cannot reach the server at {self.url} ({type(exc).__name__})",
                "check the URL and that `mlprov serve` is running there",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise self._refused(response.status_code, body)
        return body

    # -- blobs ----------------------------------------------------------------------------
    def put_blob(self, name: str, path: Path) -> None:
        """Send the file `path` as the blob `name`, streamed; the server checks it."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk

        size = path.stat().st_size
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        self.call("PUT", f"/blobs/{name}", content=chunks(), headers=headers)

    def get_blob(self, name: str, folder: Path) -> Path | None:
        """Fetch the blob `name` into `folder` (atomically); None if the server holds none.
        The caller checks it against its name."""
        target = folder / name
        try:
            with self._http.stream("GET", f"/blobs/{name}") as response:
                if response.status_code == 404:
                    return None
                if response.status_code >= 400:
                    response.read()
                    raise self._refused(response.status_code, _json(response))
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fetch-")
                try:
                    with os.fdopen(fd, "wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            out.write(chunk)
                    os.replace(tmp, target)
                finally:
                    Path(tmp).unlink(missing_ok=True)
        except self._transport_error as exc:
            raise StoreError(
                f"cannot fetch {name} from the server at {self.url} ({type(exc).__name__})",
                "check that `mlprov serve` is running there",
            ) from None
        return target

    # -- what a store offers, and a served one does not -----------------------------------
    def reader(self) -> AbstractContextManager[Any]:
        unsupported(
            "be read row by row",
            "run this where the ledger's store is, or ask the server's routes",
        )

    writer = reader

    @property
    def connect_url(self) -> str:
        unsupported(
            "be opened by its store's URL",
            "open a second served ledger with another() (prediction loggers do)",
        )


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
