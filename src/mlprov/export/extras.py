"""The optional libraries the open formats are written with, each behind its extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from mlprov.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """The module, or MissingExtraError naming the extra that installs it (exit 6)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module.partition(".")[0], extra) from None
