"""What a pipeline step is given, checked and converted: its versioned name, its
parameters, a `NAME@VERSION` reference, a row mask, a column of keys; and how a step's
error is recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.digest import canonical_json
from mlprov.errors import InputError, MlprovError
from mlprov.ledger.payloads import step_version

__all__ = [
    "ERROR_MAX",
    "error_text",
    "keys_text",
    "row_mask",
    "split_ref",
    "step_params",
    "versioned",
]

#: The longest error text a failed step records.
ERROR_MAX = 4000


def versioned(name: str, allow: bool) -> str | None:
    version = step_version(name)
    if version is not None or allow:
        return version
    raise InputError(
        f"the step name {name!r} has no version",
        f"name it like {name}-v1 and bump the version when its behaviour changes, "
        "or pass allow_unversioned=True",
    )


def step_params(params: Mapping[str, Any] | None, step: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InputError(f"the params of {step} must be a dict, not {type(params).__name__}")
    try:
        canonical_json(dict(params))
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(
            f"the params of {step} are not JSON: {exc}",
            "give parameters as JSON values (text, numbers, booleans, lists, dicts)",
        ) from None
    return dict(params)


def split_ref(ref: str) -> tuple[str, str]:
    name, at, version = ref.partition("@")
    if not at or not name or not version:
        raise InputError(f"{ref!r} is not NAME@VERSION", "e.g. support-chat-export@2026-05-22")
    return name, version


def row_mask(where: Any, rows: int, step: str) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """`where` as one boolean per row."""
    try:
        mask = np.asarray(where)
    except (TypeError, ValueError) as exc:
        raise InputError(f"step {step}: where= is not a boolean mask: {exc}") from None
    if mask.shape != (rows,) or mask.dtype != np.bool_:
        raise InputError(
            f"step {step}: where= must hold one boolean per row ({rows:,}); "
            f"got {mask.dtype} of shape {mask.shape}",
            "pass e.g. a boolean pandas Series, numpy array or list, without missing values",
        )
    return mask


def keys_text(values: Any, rows: int, step: str) -> pa.Array:
    """`duplicate_of` as text keys, one per row (integers as their decimal digits)."""
    try:
        array = pa.array(values.to_arrow() if hasattr(values, "to_arrow") else values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise InputError(f"step {step}: duplicate_of= is not a column of keys: {exc}") from None
    if len(array) != rows:
        raise InputError(f"step {step}: duplicate_of= has {len(array):,} values for {rows:,} rows")
    if pa.types.is_floating(array.type):  # pandas puts integer keys beside NaN as floats
        array = pc.cast(array, pa.int64(), safe=True)
    return pc.cast(array, pa.string())


def error_text(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, MlprovError) else str(exc)
    return f"{type(exc).__name__}: {text}"[:ERROR_MAX]
