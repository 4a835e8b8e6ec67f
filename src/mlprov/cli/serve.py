"""`mlprov serve` and `mlprov tokens`: the ledger as a service for a team, and who may
use it."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

import typer

from mlprov.cli.helptext import App
from mlprov.cli.options import ActorOpt, JsonOpt, StoreOpt, actor_for, recording
from mlprov.cli.render import emit_bytes, emit_json, err, print_lines, wrap
from mlprov.errors import InputError, MissingExtraError

tokens_app = App(help="Tokens of `mlprov serve`: each has a name and a role.")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_free(host: str, port: int) -> None:
    """Refuse, as bad input, an address this machine cannot listen on (rather than the
    server's own exit after it has started)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or "it cannot be used"
        raise InputError(
            f"cannot listen on {host}:{port}: {reason}",
            "give another --host or --port (is something listening there already?)",
        ) from None


def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="The address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            min=0,
            max=3_600_000,
            metavar="MS",
            help="Answer a recording request once its event is recorded, and sign a "
            "checkpoint covering it within MS milliseconds. 0 (the default): sign one "
            "before each answer, shared by the requests that record at the same moment.",
        ),
    ] = 0,
    store: StoreOpt = None,
) -> None:
    """Serve the ledger to a team.

    A JSON API under /api/v1/ (its OpenAPI document at /api/v1/openapi.json); every
    route but /api/v1/health needs a token from `mlprov tokens create`. What it records
    is covered by a signed checkpoint before the answer (or within --checkpoint-every),
    and when it stops. Needs mlprov[server]."""
    try:
        import uvicorn

        from mlprov.server.app import create_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "server") from None

    _check_free(host, port)
    app = create_app(store)
    state = app.state.mlprov
    state.checkpoints.pace(checkpoint_every / 1000)
    print_lines(
        wrap(f"serving {state.origin} ({state.store.url}) at http://{host}:{port}/api/v1/"),
        stderr=True,
    )
    if not _loopback(host):
        print_lines(
            wrap(
                "note: the server speaks plain HTTP; off this machine, put it behind a "
                "TLS proxy so tokens never cross the network in clear"
            ),
            stderr=True,
        )
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Its name: the actor of what its holder records.")],
    role: Annotated[
        str, typer.Option(metavar="reader|recorder|reviewer|admin", help="What it may do.")
    ],
    expires: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help="A duration (90m, 12h, 30d) or a time (2026-12-31)."),
    ] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Make a token and print it, this once.

    Only its SHA-256 is stored: keep the token where its holder keeps secrets. The grant
    is recorded as an access event (no secret in it)."""
    from mlprov.server.tokens import create_token

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        token, facts = create_token(ledger, name, role, expires, actor=actor)
    if json:
        emit_json({**facts.to_json(), "token": token})
        return
    emit_bytes(token.encode() + b"\n")
    until = f", expires {facts.expires_at}" if facts.expires_at else ""
    print_lines(
        wrap(
            f"token {facts.name} ({facts.role.value}{until}): shown this once, it cannot be "
            "shown again; send it as Authorization: Bearer TOKEN"
        ),
        stderr=True,
    )


@tokens_app.command("list")
def tokens_list(store: StoreOpt = None, json: JsonOpt = False) -> None:
    """List the tokens: name, role, state and times, never a token."""
    from mlprov.facade import Ledger
    from mlprov.server.tokens import list_tokens

    with Ledger.open(store) as ledger:
        found = list_tokens(ledger.store)
    if json:
        emit_json([t.to_json() for t in found])
    elif not found:
        err.print("no tokens: make one with `mlprov tokens create NAME --role ROLE`")
    else:
        for t in found:
            until = f", expires {t.expires_at}" if t.expires_at else ""
            gone = f", revoked {t.revoked_at}" if t.revoked_at else ""
            print_lines(
                wrap(f"{t.name}  {t.role.value}  {t.state()}  made {t.created_at}{until}{gone}")
            )


@tokens_app.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Revoke a token: refused from now on.

    Its name stays taken, as the actor of what it recorded; the revocation is recorded as
    an access event."""
    from mlprov.server.tokens import revoke_token

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        facts = revoke_token(ledger, name, actor=actor)
    if json:
        emit_json(facts.to_json())
    else:
        print_lines(wrap(f"revoked token {facts.name} at {facts.revoked_at}"))


def register(app: App) -> None:
    app.command()(serve)
    app.add_typer(tokens_app, name="tokens")
