"""Where a ledger lives: found like `.git`, or named by `MLPROV_STORE`.

A ledger directory `.mlprov/` holds `ledger.db` (the SQLite store, unless the store is
elsewhere), `keys/` (signing keys; private keys never enter the store) and `blobs/`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlprov.errors import InputError, StoreError

__all__ = ["DIRNAME", "Location", "find", "for_directory"]

DIRNAME = ".mlprov"
DB_NAME = "ledger.db"
STORE_ENV = "MLPROV_STORE"
KEYS_ENV = "MLPROV_KEYS"


@dataclass(frozen=True)
class Location:
    """A store URL and the local ledger directory that goes with it (if any)."""

    url: str
    home: Path | None  # the .mlprov directory: blobs (and keys, by default) live here
    keys_dir: Path | None  # MLPROV_KEYS, else home/keys


def _url_for(value: str, cwd: Path | None = None) -> str:
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute() and cwd is not None:
        path = cwd / path
    return "sqlite:///" + str(path.resolve())


def for_directory(directory: Path) -> Location:
    """The default location of a ledger created in `directory`."""
    home = directory.resolve() / DIRNAME
    return Location(_url_for(str(home / DB_NAME)), home, home / "keys")


def _walk_up(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / DIRNAME).is_dir():
            return folder / DIRNAME
    return None


def find(
    explicit: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Location:
    """The store: an explicit URL or path, else `MLPROV_STORE`, else the nearest `.mlprov/`."""
    if explicit is not None and not isinstance(explicit, str | os.PathLike):
        raise InputError(
            f"the store must be a path or a URL, not a {type(explicit).__name__}",
            "e.g. mlprov.open('.mlprov/ledger.db') or mlprov.open('postgresql://host/db')",
        )
    if cwd is not None and not isinstance(cwd, str | os.PathLike):
        raise InputError(f"cwd must be a path, not a {type(cwd).__name__}")
    env = os.environ if environ is None else environ
    start = Path(cwd or Path.cwd()).resolve()
    value = (os.fspath(explicit) if explicit is not None else None) or env.get(STORE_ENV)
    if value:
        url = _url_for(value, start)
        # A SQLite ledger's home is the folder of its file; a server's is the nearest .mlprov/.
        home = Path(url.removeprefix("sqlite:///")).parent if url.startswith("sqlite:///") else None
        home = home or _walk_up(start)
    else:
        home = _walk_up(start)
        if home is None:
            raise StoreError(
                f"no mlprov ledger in {start} or any parent directory",
                "run `mlprov init` here, or set MLPROV_STORE to a ledger path or postgresql:// URL",
            )
        url = _url_for(str(home / DB_NAME))
    keys = (start / Path(env[KEYS_ENV]).expanduser()).resolve() if env.get(KEYS_ENV) else None
    return Location(url, home, keys or (home / "keys" if home else None))
