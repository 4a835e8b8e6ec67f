"""Environment: what code ran — a function's code digest, the caller's git state, and the
versions of the packages loaded — recorded so a run can be told apart from its re-run."""

from __future__ import annotations

import functools
import hashlib
import inspect
import platform
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from mlprov.digest import Digest

__all__ = [
    "CodeDigest",
    "GitState",
    "caller_directory",
    "code_digest",
    "git_state",
    "packages",
    "runtime",
]

_GIT_TIMEOUT = 10


@dataclass(frozen=True)
class CodeDigest:
    """The digest of a function's code: of its source text when Python can find it, else
    of its bytecode and constants (which change with the interpreter version)."""

    digest: Digest
    basis: Literal["source", "bytecode"]
    function: str  # module:qualname


def code_digest(fn: Callable[..., Any]) -> CodeDigest | None:
    """The digest of `fn`'s code, or None for code Python cannot show (builtins, C)."""
    target = inspect.unwrap(fn)
    name = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"
    try:
        text = textwrap.dedent(inspect.getsource(target))
        return CodeDigest(Digest.of_bytes(text.encode("utf-8")), "source", name)
    except (OSError, TypeError):
        pass
    code = getattr(target, "__code__", None)
    if code is None:
        return None
    h = hashlib.sha256(code.co_code)
    h.update(repr(code.co_consts).encode("utf-8", "backslashreplace"))
    h.update(repr(code.co_names).encode("utf-8"))
    return CodeDigest(Digest("sha256:" + h.hexdigest()), "bytecode", name)


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def git_state(directory: Path) -> GitState | None:
    """The commit checked out in the repository holding `directory`, and whether the work
    tree differs from it (modified, staged or untracked files); None outside a repository
    or without git."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        head = subprocess.run(
            [git, "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            [git, "-C", str(directory), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return GitState(head.stdout.strip(), bool(status.stdout.strip()))


def caller_directory(depth: int) -> Path:
    """The folder of the file `depth` frames up the stack (the user's script), else cwd."""
    frame = sys._getframe(depth + 1)
    path = Path(frame.f_code.co_filename)
    return path.parent if path.is_file() else Path.cwd()


def packages() -> dict[str, str]:
    """The versions of the distributions whose top-level modules are loaded now."""
    loaded = {name.partition(".")[0] for name in list(sys.modules)}
    found: dict[str, str] = {}
    for module, dists in _distributions().items():
        if module not in loaded:
            continue
        for dist in dists:
            version = _version(dist)
            if version is not None:
                found[dist] = version
    return dict(sorted(found.items()))


# Read once a process: finding every installed distribution's modules takes about a
# second, and a module loaded already keeps the code it was loaded with.
@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


@functools.cache
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def runtime() -> tuple[str, str]:
    """The interpreter and platform, as `CPython 3.11.7` and `Linux-6.1-x86_64`."""
    return (
        f"{platform.python_implementation()} {platform.python_version()}",
        platform.platform(terse=True),
    )
