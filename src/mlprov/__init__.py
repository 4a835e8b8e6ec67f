"""mlprov: training-data provenance you can prove.

Open a ledger with `mlprov.open()` (the nearest `.mlprov/`, or `MLPROV_STORE`), record
events, and verify the whole history with `Ledger.verify()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.digest import Digest
from mlprov.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    MlprovError,
    NotFoundError,
    StoreError,
)
from mlprov.facade import Ledger
from mlprov.ledger import Entry, Event, EventType, VerifyReport

if TYPE_CHECKING:
    from mlprov.capture import transform

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


def open(store: str | None = None, *, cwd: Path | None = None) -> Ledger:
    """Open the ledger named by `store`, else `MLPROV_STORE`, else the nearest `.mlprov/`."""
    return Ledger.open(store, cwd=cwd)


def __getattr__(name: str) -> Any:
    # Capture needs pyarrow; the ledger alone does not, so it is imported on first use.
    if name == "transform":
        from mlprov import capture

        return capture.transform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
