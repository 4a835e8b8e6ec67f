"""What a pipeline step is given, checked and converted: its versioned name, its
parameters, a `NAME@VERSION` reference, a row mask, a column of keys; and how a step's
error is recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov import validation
from mlprov.digest import canonical_json
from mlprov.errors import InputError, MlprovError
from mlprov.ledger.payloads import step_version

__all__ = [
    "ERROR_MAX",
    "callable_step",
    "data_error",
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
    return validation.split_versioned(ref)


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


_DUPLICATE_OF = (
    "give one value per input row: for a removed row the key of the record kept in its "
    "place, for any other row None (or NaN)"
)


def keys_text(values: Any, rows: int, step: str) -> pa.Array:
    """`duplicate_of` as text keys, one per input row (integers as their decimal digits;
    NaN, as pandas writes a missing integer, is a missing key)."""
    try:
        array = pa.array(values.to_arrow() if hasattr(values, "to_arrow") else values)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(
            f"step {step}: duplicate_of= is not a column of keys: {exc}", _DUPLICATE_OF
        ) from None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) != rows:
        raise InputError(
            f"step {step}: duplicate_of= has {len(array):,} values for {rows:,} input rows",
            _DUPLICATE_OF,
        )
    if pa.types.is_floating(array.type):  # pandas puts integer keys beside NaN as floats
        array = pc.if_else(pc.is_nan(array), pa.scalar(None, array.type), array)
        try:
            array = pc.cast(array, pa.int64(), safe=True)
        except pa.ArrowInvalid:
            raise InputError(
                f"step {step}: duplicate_of= holds numbers that are not whole: keys are text "
                "or integers",
                _DUPLICATE_OF,
            ) from None
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(
            f"step {step}: duplicate_of= holds {array.type} values, which are not keys",
            _DUPLICATE_OF,
        ) from None


def callable_step(fn: Any, step: str) -> None:
    """Refuse a step function that cannot be called, before the step is recorded."""
    if not callable(fn):
        raise InputError(
            f"step {step}: the function to run is a {type(fn).__name__}, not callable",
            "call p.transform(name, fn, data, ...) with the step's function second",
        )


def data_error(step: str, exc: BaseException, given: str) -> InputError:
    """A user's data error inside a step, named as mlprov names bad input."""
    return InputError(
        f"step {step}: the data given cannot be used ({type(exc).__name__}: {exc})",
        f"check {given}; the step is recorded as failed",
    )


def error_text(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, MlprovError) else str(exc)
    return f"{type(exc).__name__}: {text}"[:ERROR_MAX]
