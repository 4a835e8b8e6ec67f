"""mlprov's errors as HTTP statuses, in one place (ADR 0015), and the one error body.

Every refusal the server sends is `{"error": what is wrong, "hint": how to fix it,
"kind": what kind of refusal}`. The message is for people and may be reworded; the kind
is for programs, and stays (a client tells "already recorded" by `duplicate`):

    status  kind                when
    401     unauthenticated     no token, or one that is unknown, revoked or expired
    403     forbidden           the token's role does not allow the route
    404     not_found           NotFoundError: an unknown name, version, digest or token;
                                an unknown route
    405     method_not_allowed  a route called with the wrong method
    409     duplicate           DuplicateError: the event is already recorded
    409     conflict            ConflictError: another refused change (an unknown parent, a
                                move the review state table forbids, a name taken)
    409     blocked             GateBlocked: a gate refuses the use
    413     too_large           a request body over the server's limit
    422     invalid             InputError: a malformed value; a body that is not JSON or
                                not of the route's shape
    500     integrity           IntegrityError: recorded history does not verify
    500     missing_extra       MissingExtraError: an optional dependency is missing
    500     internal            a bug
    503     store               StoreError: the store cannot be used

No traceback, no Python repr and no token ever reaches a response.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from mlprov.errors import (
    ConflictError,
    DuplicateError,
    GateBlocked,
    InputError,
    IntegrityError,
    MissingExtraError,
    MlprovError,
    NotFoundError,
    StoreError,
)

__all__ = [
    "ERROR_RESPONSES",
    "KIND",
    "STATUS",
    "ErrorBody",
    "Kind",
    "Refused",
    "install",
    "kind_of",
    "status_of",
]

log = logging.getLogger("mlprov.server")

#: Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[MlprovError], int], ...] = (
    (NotFoundError, 404),
    (InputError, 422),
    (ConflictError, 409),
    (GateBlocked, 409),
    (StoreError, 503),
    (MissingExtraError, 500),
    (IntegrityError, 500),
    (MlprovError, 500),
)

Kind = Literal[
    "unauthenticated",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "duplicate",
    "conflict",
    "blocked",
    "too_large",
    "invalid",
    "integrity",
    "missing_extra",
    "internal",
    "store",
]
#: Most specific first: the first class an error is an instance of gives its kind.
KIND: tuple[tuple[type[MlprovError], Kind], ...] = (
    (NotFoundError, "not_found"),
    (InputError, "invalid"),
    (DuplicateError, "duplicate"),
    (ConflictError, "conflict"),
    (GateBlocked, "blocked"),
    (StoreError, "store"),
    (MissingExtraError, "missing_extra"),
    (IntegrityError, "integrity"),
    (MlprovError, "internal"),
)
_KIND_OF_STATUS: dict[int, Kind] = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid",
}


class ErrorBody(BaseModel):
    """What every refusal and failure answers."""

    error: str
    hint: str | None = None
    kind: Kind


_DOC = {
    401: "No token, or an unknown, revoked or expired one.",
    403: "The token's role does not allow this route.",
    404: "Not found.",
    409: "A refused change, or a gate that blocks the use.",
    413: "The request body is too large.",
    422: "A malformed value or request body.",
    500: "Recorded history does not verify, or an internal error.",
    503: "The store cannot be used.",
}
#: Declared on every route, so the OpenAPI document names each status the server sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DOC.items()
}


class Refused(MlprovError):
    """An authentication or authorisation refusal (401, 403): the server's alone, it is
    never raised where a command line could meet it."""

    def __init__(self, status: int, message: str, hint: str) -> None:
        super().__init__(message, hint)
        self.status = status


def status_of(exc: MlprovError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def kind_of(exc: MlprovError) -> Kind:
    return next(kind for cls, kind in KIND if isinstance(exc, cls))


def body(status: int, message: str, hint: str | None, kind: Kind | None = None) -> JSONResponse:
    """The error body; its kind is the status's own unless given (as an error's class
    gives it)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    said = kind or _KIND_OF_STATUS.get(status, "internal")
    content = ErrorBody(error=message, hint=hint, kind=said).model_dump()
    return JSONResponse(content, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    where = loc[0] if loc else "body"
    return f"{where} field {'.'.join(parts)}" if parts else f"the {where}"


def describe(exc: RequestValidationError) -> str:
    """One sentence per problem, naming where it is; never the value given."""
    said: list[str] = []
    for problem in exc.errors():
        if problem.get("type") == "json_invalid":
            reason = problem.get("ctx", {}).get("error", "malformed")
            said.append(f"the request body is not valid JSON ({reason})")
            continue
        loc = tuple(problem.get("loc", ()))
        if loc == ("body",) and problem.get("type") in ("model_attributes_type", "dict_type"):
            said.append("the request body must be a JSON object (Content-Type: application/json)")
            continue
        message = str(problem.get("msg", "is invalid")).replace("Value error, ", "")
        said.append(f"{_location(loc)}: {message}")
    return "; ".join(dict.fromkeys(said)) or "the request is malformed"


def install(app: FastAPI, authorise: Any) -> None:
    """Map every error to its status and body. `authorise(request)` is called before a
    malformed request is answered, so a caller without the right token learns 401 or 403,
    never what the route expects."""

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return body(exc.status, exc.message, exc.hint)

    @app.exception_handler(MlprovError)
    async def _mlprov(_: Request, exc: MlprovError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc.message)
        return body(status, exc.message, exc.hint, kind_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            authorise(request)
        except Refused as refused:
            return body(refused.status, refused.message, refused.hint)
        return body(422, describe(exc), "see the route's request schema in /api/v1/openapi.json")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body the framework could not decode (not UTF-8)
            try:
                authorise(request)
            except Refused as refused:
                return body(refused.status, refused.message, refused.hint)
            return body(
                422,
                "the request body is not valid JSON (it could not be decoded as UTF-8 JSON)",
                "send a JSON object encoded as UTF-8",
            )
        hint = {
            404: "see /api/v1/openapi.json for the routes",
            405: "see /api/v1/openapi.json for each route's methods",
        }.get(exc.status_code)
        return body(exc.status_code, str(exc.detail).lower(), hint)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error: %s", type(exc).__name__)
        return body(500, "internal error", "this is a bug in mlprov; see the server's log")
