"""The normal form of a subject's text (spec "mlprov-subject/1", described in
:mod:`mlprov.records.subjects`): what is hashed for one subject, whatever its column."""

from __future__ import annotations

import unicodedata
from typing import Literal

from mlprov.errors import InputError

__all__ = ["Kind", "normalise"]

Kind = Literal["auto", "email", "id"]


def normalise(value: str, kind: Kind = "auto") -> str:
    """The subject text that is hashed (see :mod:`mlprov.records.subjects`)."""
    if not isinstance(value, str):
        raise InputError(
            f"a subject is text, not {type(value).__name__}", "convert the subject column to text"
        )
    if not value.isascii():  # NFKC leaves ASCII as it is
        value = unicodedata.normalize("NFKC", value)
    text = " ".join(value.split())
    if not text:
        raise InputError("a subject is empty", "drop rows without a subject, or fill them")
    is_email = kind == "email" or (kind == "auto" and text.count("@") == 1 and " " not in text)
    return text.lower() if is_email else text
