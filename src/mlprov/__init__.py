"""mlprov: training-data provenance you can prove.

Open a ledger with `mlprov.open()` (the nearest `.mlprov/`, or `MLPROV_STORE`), record
events, and verify the whole history with `Ledger.verify()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlprov.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    MlprovError,
    NotFoundError,
    StoreError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mlprov.capture import transform
    from mlprov.digest import Digest
    from mlprov.facade import Ledger
    from mlprov.ledger import Entry, Event, EventType, VerifyReport

__all__ = [
    "ConflictError",
    "Digest",
    "Entry",
    "Event",
    "EventType",
    "InputError",
    "IntegrityError",
    "Ledger",
    "MlprovError",
    "NotFoundError",
    "StoreError",
    "VerifyReport",
    "__version__",
    "open",
    "transform",
]

__version__ = "0.1.0"


def open(store: str | None = None, *, cwd: Path | None = None, token: str | None = None) -> Ledger:
    """Open the ledger named by `store`, else `MLPROV_STORE`, else the nearest `.mlprov/`.

    An `http(s)://host:port` URL opens the ledger `mlprov serve` keeps there, through it,
    with `token` (default: `MLPROV_TOKEN`)."""
    from mlprov.facade import Ledger

    return Ledger.open(store, cwd=cwd, token=token)


#: Where each name is defined. They load on first use, so that `import mlprov` (and so
#: `mlprov --help`) costs no store, validation or Arrow import; capture needs pyarrow.
_LAZY = {
    "Digest": "mlprov.digest",
    "Ledger": "mlprov.facade",
    "Entry": "mlprov.ledger",
    "Event": "mlprov.ledger",
    "EventType": "mlprov.ledger",
    "VerifyReport": "mlprov.ledger",
    "transform": "mlprov.capture",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
