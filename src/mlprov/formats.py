"""Parsing of mlprov's own JSON file formats, each tagged by a `format` literal."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from mlprov.errors import InputError

__all__ = ["parse_tagged"]


def parse_tagged(
    data: bytes, models: Sequence[type[BaseModel]], source: str, hint: str
) -> BaseModel | None:
    """The first of `models` whose `format` the data names, validated; None if none is named.

    A file that names a model's format but breaks it raises InputError naming the field.
    """
    for model in models:
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            if any(e["loc"] == ("format",) for e in exc.errors()):
                continue
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "file"
            raise InputError(
                f"{source} is not a valid {model.__name__}: {where}: {first['msg']}", hint
            ) from None
    return None
