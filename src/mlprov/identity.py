"""Who is acting: the identity written into each event's `actor` field."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Mapping

__all__ = ["default_actor"]

ACTOR_ENV = "MLPROV_ACTOR"


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """`MLPROV_ACTOR`, else git's `user.email`, else the login name."""
    env = os.environ if environ is None else environ
    if env.get(ACTOR_ENV):
        return env[ACTOR_ENV]
    git = shutil.which("git")
    if git:
        try:
            found = subprocess.run(
                [git, "config", "user.email"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found:
            return found
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
