"""`@mlprov.transform("name-vN")`: a step function recorded when it runs inside a pipeline."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mlprov.capture import arguments
from mlprov.capture.pipeline import active

__all__ = ["transform"]

T = TypeVar("T")


def transform(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    purpose: str | None = None,
    allow_unversioned: bool = False,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a step function: called on tracked data inside a running pipeline, it is
    recorded as the step `name`; anywhere else it just runs.

    ::

        @mlprov.transform("dedupe-v2", params={"threshold": 0.84})
        def dedupe(df): ...
    """
    arguments.versioned(name, allow_unversioned)

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def call(data: Any, *args: Any, **kwargs: Any) -> T:
            pipeline = active()
            if pipeline is None or not pipeline.tracks(data):
                return fn(data, *args, **kwargs)
            return pipeline.transform(
                name,
                fn,
                data,
                *args,
                params=params,
                purpose=purpose,
                allow_unversioned=allow_unversioned,
                **kwargs,
            )

        return call

    return wrap
