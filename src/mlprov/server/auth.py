"""Who is calling, and whether their role allows the route.

Every route is declared with `guarded(...)`, which puts the permission it needs both in
front of it (a dependency) and in the OpenAPI document (`x-mlprov-permission`), so the
security tests read from the document what each route demands and a route without one
cannot be declared. The token is read from `Authorization: Bearer TOKEN`, or from the
pages' session cookie (HttpOnly, SameSite=Strict); `presented` is the one place that reads
it. A request that changes something with the cookie must also come from the server's own
origin (its `Origin` header), so no other site can make a browser post a form here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mlprov.server.errors import ERROR_RESPONSES, Refused
from mlprov.server.state import ServerState
from mlprov.server.tokens import Permission, Token, authenticate

__all__ = [
    "COOKIE",
    "PERMISSION_KEY",
    "Caller",
    "authorise",
    "check",
    "guarded",
    "presented",
    "same_origin",
]

#: The OpenAPI extension naming the permission each operation needs.
PERMISSION_KEY = "x-mlprov-permission"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token made by `mlprov tokens create NAME --role ROLE`.",
)
#: The pages' session cookie: the token itself, set by the sign-in page.
COOKIE = "mlprov_session"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_HINT = "send Authorization: Bearer TOKEN with a token from `mlprov tokens create`"


def presented(request: Request) -> str | None:
    """The token the request carries, if any: the bearer header, else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    return request.cookies.get(COOKIE) or None


def same_origin(request: Request) -> bool:
    """Whether the request's `Origin` is this server (as the browser addressed it)."""
    host = request.headers.get("host", "")
    return request.headers.get("origin") == f"{request.url.scheme}://{host}"


def check(request: Request, permission: Permission) -> Token | None:
    """The calling token if it may use `permission` (none needed for a public route);
    Refused (401 or 403) otherwise."""
    if permission is Permission.PUBLIC:
        return None
    state: ServerState = request.app.state.mlprov
    token = presented(request)
    if token is None:
        raise Refused(401, "this route needs a token", _HINT)
    found, why = authenticate(state.tokens, token)
    if found is None:
        raise Refused(401, f"the token was refused: {why}", _HINT)
    by_cookie = not request.headers.get("authorization")
    if by_cookie and request.method not in _SAFE and not same_origin(request):
        raise Refused(
            403,
            "a change sent with the session cookie must come from this server's own pages",
            "use the form on the page, or send Authorization: Bearer TOKEN",
        )
    if not found.allows(permission):
        raise Refused(
            403,
            f"the token {found.name!r} has the role {found.role.value}, which may not "
            f"{permission.value} here",
            f"use a token whose role allows {permission.value} (see ADR 0015)",
        )
    request.state.token = found
    return found


def authorise(request: Request) -> None:
    """Check the request against its route's permission (for answers given before the
    route runs, such as a malformed body); an unknown route needs a token too."""
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    check(request, Permission(extra.get(PERMISSION_KEY, Permission.READ.value)))


def _need(permission: Permission) -> Callable[..., Awaitable[None]]:
    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> None:
        # A token checked a moment ago is checked again from memory, on the event loop;
        # one that needs a read of the store is checked in a worker thread.
        state: ServerState = request.app.state.mlprov
        token = presented(request)
        if token is not None and state.tokens.fresh(token):
            check(request, permission)
        else:
            await run_in_threadpool(check, request, permission)

    return dependency


async def _caller(request: Request) -> Token:  # on the event loop: it reads no store
    token: Token = request.state.token
    return token


#: The calling token, for a route that records under its name.
Caller = Annotated[Token, Depends(_caller)]


def guarded(
    router: APIRouter,
    method: str,
    path: str,
    permission: Permission,
    *,
    need: Callable[[Permission], Callable[..., Any]] = _need,
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route that needs `permission` (each role's permissions: server.tokens);
    `need` makes the check that stands in front of it (a page's sends a browser to sign in)."""
    deps = [] if permission is Permission.PUBLIC else [Depends(need(permission))]
    return router.api_route(
        path,
        methods=[method],
        dependencies=deps,
        openapi_extra={PERMISSION_KEY: permission.value},
        responses={**ERROR_RESPONSES, **options.pop("responses", {})},
        **options,
    )
