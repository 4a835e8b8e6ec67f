"""The application: `create_app(store)` gives the FastAPI app `mlprov serve` runs.

The API is versioned under `/api/v1/`; its OpenAPI document is `/api/v1/openapi.json`
(read permission). The pages people open (`/`, signed in with a token) are served beside
it, written here with no script and nothing fetched from a network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from mlprov.server import forms, pages
from mlprov.server.auth import authorise, guarded
from mlprov.server.errors import install
from mlprov.server.limits import BodyLimit
from mlprov.server.routes import access, blobs, reads, records
from mlprov.server.state import ServerState
from mlprov.server.tokens import Permission

__all__ = ["MAX_BODY", "ROUTERS", "create_app"]

#: The largest request body accepted: reviews, queries and events are small (the blobs
#: a remote ledger sends have a limit of their own: `routes.blobs.MAX_BLOB`).
MAX_BODY = 1024 * 1024
VERSION = "1"
#: Every router the app includes: the API's (in its OpenAPI document) and the pages'.
ROUTERS: tuple[APIRouter, ...] = tuple(
    m.router for m in (reads, records, blobs, access, pages, forms)
)


def create_app(store: str | None = None, *, max_body: int = MAX_BODY) -> FastAPI:
    """The server over the ledger `store` names (a folder, a `sqlite:///` or
    `postgresql://` URL; default `MLPROV_STORE`, else the nearest `.mlprov/`). The store is
    opened here, so a wrong one is refused before the server listens."""
    state = ServerState.open(store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="mlprov",
        version=VERSION,
        summary="A tamper-evident ledger of training-data provenance, for a team.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.mlprov = state
    install(app, authorise)
    pages.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @guarded(app.router, "GET", "/api/v1/openapi.json", Permission.READ, include_in_schema=False)
    def openapi(_: Request) -> JSONResponse:
        document: dict[str, Any] = app.openapi()
        return JSONResponse(document)

    app.add_middleware(BodyLimit, max_bytes=max_body, streamed=(blobs.PREFIX,))
    return app
