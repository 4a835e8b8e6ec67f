"""Who is acting: the identity written into each event's `actor` field.

The rule, first found wins (`mlprov whoami` shows which one applies here):

1. `--actor` on the command line, or `actor=` in Python;
2. the environment variable `MLPROV_ACTOR`;
3. git's `user.email` (`git config user.email`, as git itself resolves it here);
4. the login name of the operating system's user;
5. `unknown`.

Steps 3 and 4 take a personal identity from the machine. A ledger meant to be shared should
be written under a chosen identity: set `MLPROV_ACTOR` (a role such as
`data-pipeline@example.com` will do) or pass `--actor`. The demo records every event
under its story's people and never reaches step 3.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["ACTOR_ENV", "Actor", "default_actor", "who"]

ACTOR_ENV = "MLPROV_ACTOR"

#: Where an actor was found, in the order the rule tries them.
Origin = Literal["flag", "environment", "git", "login", "unknown"]
_SAID: dict[Origin, str] = {
    "flag": "given with --actor",
    "environment": f"from {ACTOR_ENV}",
    "git": "from git's user.email: a personal identity taken from this machine",
    "login": "from the login name: a personal identity taken from this machine",
    "unknown": "no identity found",
}


@dataclass(frozen=True)
class Actor:
    """An actor and where the rule found it."""

    name: str
    origin: Origin

    @property
    def personal(self) -> bool:
        """Whether it was taken from the machine rather than chosen for the ledger."""
        return self.origin in ("git", "login")

    def describe(self) -> str:
        return f"{self.name} ({_SAID[self.origin]})"


def who(flag: str | None = None, environ: Mapping[str, str] | None = None) -> Actor:
    """The actor the rule of the module doc gives (`flag`: the --actor value, if any)."""
    if flag:
        return Actor(flag, "flag")
    env = os.environ if environ is None else environ
    if env.get(ACTOR_ENV):
        return Actor(env[ACTOR_ENV], "environment")
    git = shutil.which("git")
    if git:
        try:
            found = subprocess.run(
                [git, "config", "user.email"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found:
            return Actor(found, "git")
    try:
        return Actor(getpass.getuser(), "login")
    except (KeyError, OSError):
        return Actor("unknown", "unknown")


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """The actor of an event recorded without one: steps 2 to 5 of the module doc's rule."""
    return who(None, environ).name
