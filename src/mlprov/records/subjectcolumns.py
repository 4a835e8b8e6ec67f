"""Subject columns: ``mlprov-subject/1`` normalisation and HMAC over whole Arrow columns.

:func:`mlprov.records.subjecttext.normalise` defines the normalisation one value at a time.
For a value of printable ASCII alone (bytes 0x20-0x7E: most customer ids and e-mail
addresses) Arrow's kernels do exactly the same: NFKC leaves ASCII unchanged, the only
whitespace is the space, and ASCII lower-casing is Python's ``str.lower``. Any other value
(controls, other whitespace, non-ASCII text) goes through ``normalise`` itself, since
Arrow's Unicode tables and case mappings need not match Python's. A property test holds
the two paths equal.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlprov.errors import InputError
from mlprov.records.fastpath import text_bytes
from mlprov.records.hashing import hash64, hmac_sha256
from mlprov.records.subjecttext import Kind, normalise

__all__ = ["hmac_distinct", "normalise_column", "subject_text"]

_NOT_PLAIN = r"[^\x20-\x7e]"
_EMPTY_HINT = "drop rows without a subject, or fill them"


def subject_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A subject column as text: strings as they are, integers as their digits."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_string(t):
        return values
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_integer(t):
        return pc.cast(values, pa.string())  # an integer's digits are those of str()
    raise InputError(f"a subject is text, not {t}", "convert the subject column to text")


def normalise_column(values: pa.Array, kind: Kind = "auto", first_row: int = 0) -> pa.Array:
    """Each subject of a string column normalised; nulls stay null.

    An empty subject raises InputError naming its row (``first_row`` + its index).
    """
    data = text_bytes(values)
    # Whole-column checks first: most columns need few of the kernels below, or none.
    odd = bool(((data < 0x20) | (data > 0x7E)).any())
    spaced = bool((data == 0x20).any())
    upper = kind != "id" and bool(((data >= 0x41) & (data <= 0x5A)).any())
    text = values
    if spaced:
        text = pc.utf8_trim(text, characters=" ")
        text = pc.replace_substring_regex(text, " {2,}", " ")
    empty = pc.equal(pc.binary_length(text), 0)
    if odd:
        slow = pc.fill_null(pc.match_substring_regex(values, _NOT_PLAIN), False)
        empty = pc.and_(empty, pc.invert(slow))
    if pc.any(empty).as_py():
        row = first_row + pc.index(empty, True).as_py()
        raise InputError(f"row {row}: a subject is empty", _EMPTY_HINT)
    if upper:
        lowered = pc.ascii_lower(text)
        if kind == "email":
            text = lowered
        else:
            email = pc.equal(pc.count_substring(text, "@"), 1)
            if spaced:
                email = pc.and_(email, pc.invert(pc.match_substring(text, " ")))
            text = pc.if_else(email, lowered, text)
    if odd:
        text = _normalise_slowly(values, text, slow, kind, first_row)
    return text


def _normalise_slowly(
    values: pa.Array, text: pa.Array, slow: pa.Array, kind: Kind, first_row: int
) -> pa.Array:
    """Replace the rows in ``slow`` by Python's normalisation of their original values."""
    rows = pc.indices_nonzero(slow)
    done = []
    for row, value in zip(rows.to_pylist(), values.take(rows).to_pylist(), strict=True):
        try:
            done.append(normalise(value, kind))
        except InputError as e:
            raise InputError(
                f"row {first_row + row}: {e.message}", e.hint, cli_hint=e.cli_hint
            ) from None
    return pc.replace_with_mask(text, slow, pa.array(done, pa.string()))


def hmac_distinct(key: bytes, text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """HMAC-SHA256 of each value, computing each distinct value once; nulls stay null.

    A subject usually names many records, so the distinct values are far fewer.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    valid = text.drop_null() if text.null_count else text
    groups = _groups(valid)
    hashes = hmac_sha256(key, valid.take(groups.first)).take(groups.index)
    if not text.null_count:
        return hashes
    # Rows with a subject take their hashes in order; the others stay null.
    where = np.cumsum(np.asarray(text.is_valid(), dtype=np.int64)) - 1
    return hashes.take(pa.array(where, mask=np.asarray(text.is_null(), dtype=bool)))


class _Grouping:
    """Rows grouped by value: ``first[g]`` is group g's first row, ``index[r]`` row r's group."""

    def __init__(self, first: pa.Array, index: pa.Array) -> None:
        self.first, self.index = first, index


def _groups(values: pa.Array) -> _Grouping:
    """Group equal values, by a 64-bit hash that DuckDB computes on every core.

    Every row is then checked against its group's first row, so a hash collision can only
    cost time (the exact, slower grouping), never a wrong subject hash.
    """
    hashes = hash64(values)
    encoded = pc.dictionary_encode(hashes)  # groups numbered in order of first appearance
    index = encoded.indices
    numbers = np.asarray(index, dtype=np.int64)
    seen = np.maximum.accumulate(numbers)
    new = np.ones(len(numbers), dtype=bool)
    new[1:] = numbers[1:] > seen[:-1]
    first = pa.array(np.flatnonzero(new))
    if pc.all(pc.equal(values, values.take(first).take(index))).as_py() is not False:
        return _Grouping(first, index)
    distinct = pc.unique(values)
    exact = pc.index_in(values, value_set=distinct)
    return _Grouping(pc.index_in(distinct, value_set=values), exact)
