"""Indexed changes files (ADR 0021): rows found a part at a time are those of the whole file,
in the same order; an altered part or index is refused, never read as an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlprov.answers.why.deltas import Deltas
from mlprov.capture.lineage import CHANGES_SCHEMA
from mlprov.digest import Digest
from mlprov.errors import IntegrityError, NotFoundError
from mlprov.records import changesfiles
from mlprov.records.changesreader import open_changes
from mlprov.store import blobs

KINDS = ("removed", "changed", "added")


def digest_of(n: int) -> bytes:
    return Digest.of_bytes(str(n).encode()).raw


def rows_of(specs: list[tuple[int, int, int | None, bool]], by_key: bool) -> pa.Table:
    """A changes table: (kind, record, duplicate of, with columns) per row; by digest,
    records may repeat (the same content twice) and keys are absent."""
    rows = []
    for i, (kind, record, dupe, named) in enumerate(specs):
        change = KINDS[kind]
        rows.append(
            {
                "change": change,
                "key": str(i * 7 % 101 + 1000 * (record % 3)) if by_key else None,
                "before": None if change == "added" else digest_of(record),
                "after": None if change == "removed" else digest_of(record + 10_000),
                "reason": "drop-v1" if change == "removed" else None,
                "columns": ["text", "email"][: i % 3] if change == "changed" and named else None,
                "duplicate_of": str(dupe) if change == "removed" and dupe is not None else None,
            }
        )
    table = pa.Table.from_pylist(rows, schema=CHANGES_SCHEMA)
    if by_key:  # keys are unique in a step matched by key
        keys = table.column("key").to_pylist()
        unique = [f"{k}-{i}" + ("é" * (i % 2)) for i, k in enumerate(keys)]
        table = table.set_column(1, "key", pa.array(unique))
    return table


def saved(tmp_path: Path, table: pa.Table, by_key: bool, part_rows: int) -> Deltas:
    data, root = changesfiles.write(table, "key" if by_key else "digest", part_rows)
    return Deltas(tmp_path, blobs.put(tmp_path, data, ".changes.parquet"), root)


def looked_up(table: pa.Table, by_key: bool) -> list[tuple[str, Any]]:
    """Every value a question can ask by, and some no row has."""
    column = "key" if by_key else "before"
    values = [(column, v) for v in table.column(column).to_pylist() if v is not None]
    values += [("duplicate_of", v) for v in table.column("duplicate_of").to_pylist() if v]
    values += [("duplicate_of", "0"), ("duplicate_of", "zzz")]
    values += [("key", "") if by_key else ("before", b"\x00" * 32), (column, "~" * 3)]
    if not by_key:
        values += [("before", digest_of(-1)), ("before", b"\xff" * 32)]
    return [(c, v) for c, v in values if c != "before" or isinstance(v, bytes)]


def shortlex(keys: list[str]) -> list[str]:
    """Keys in the file's order: shortest first, then by their bytes."""
    return sorted(keys, key=lambda k: (len(k.encode()), k))


def expected(table: pa.Table, column: str, value: Any) -> list[dict[str, Any]]:
    return [r for r in table.to_pylist() if r[column] == value]


specs = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 40),
        st.none() | st.integers(0, 5),
        st.booleans(),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(specs=specs, by_key=st.booleans(), part_rows=st.integers(1, 9))
def test_rows_found_by_part_are_those_of_the_whole_file_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[int, int, int | None, bool]],
    by_key: bool,
    part_rows: int,
) -> None:
    tmp_path = tmp_path_factory.mktemp("changes")
    table = rows_of(specs, by_key)
    indexed = saved(tmp_path, table, by_key, part_rows)
    whole = Deltas(tmp_path, indexed.digest)  # no root: the file checked and read whole
    written = pq.read_table(indexed.path).replace_schema_metadata(None)
    assert sorted(map(str, written.to_pylist())) == sorted(map(str, table.to_pylist()))
    for column, value in looked_up(table, by_key):
        want = expected(written, column, value)
        assert indexed.rows(column, value) == want, (column, value)
        assert whole.rows(column, value) == want, (column, value)


def test_the_whole_file_holds_each_row_once_sorted_by_key(tmp_path: Path) -> None:
    table = rows_of([(i % 3, i, 1 if i % 4 == 0 else None, True) for i in range(50)], True)
    indexed = saved(tmp_path, table, True, 8)
    file = pq.ParquetFile(indexed.path)
    assert file.num_row_groups == 7
    back = file.read().replace_schema_metadata(None)
    assert back.num_rows == 50
    assert back.column("key").to_pylist() == shortlex(table.column("key").to_pylist())
    assert back.sort_by("key").equals(table.sort_by("key"))


def _rewritten(path: Path, edit: Any) -> None:
    """The file written again with its index as it was, and `edit` applied to its rows."""
    file = pq.ParquetFile(path)
    meta = file.schema_arrow.metadata
    rows = edit(file.read()).replace_schema_metadata(meta)
    group = file.metadata.row_group(0).num_rows
    pq.write_table(rows, path, row_group_size=group, write_statistics=False)


def test_an_altered_part_is_refused_and_the_others_still_read(tmp_path: Path) -> None:
    table = rows_of([(0, i, None, False) for i in range(40)], True)
    indexed = saved(tmp_path, table, True, 8)
    keys = shortlex(table.column("key").to_pylist())
    last = keys[-1]

    def edit(rows: pa.Table) -> pa.Table:  # the last row now says another reason
        reasons = rows.column("reason").to_pylist()
        reasons[-1] = "another-step-v1"
        return rows.set_column(4, "reason", pa.array(reasons, pa.string()))

    _rewritten(indexed.path, edit)
    fresh = Deltas(tmp_path, indexed.digest, indexed.root)
    assert fresh.rows("key", keys[0]) == expected(table, "key", keys[0])
    with pytest.raises(
        IntegrityError, match=r"part 5 of the changes file \w+\.changes\.parquet does not"
    ):
        fresh.rows("key", last)
    with pytest.raises(IntegrityError, match="does not match its digest"):
        Deltas(tmp_path, indexed.digest).rows("key", last)  # and the file, whole


def test_an_altered_index_or_root_is_refused(tmp_path: Path) -> None:
    table = rows_of([(0, i, None, False) for i in range(40)], True)
    indexed = saved(tmp_path, table, True, 8)
    assert indexed.root is not None
    other = Digest.of_bytes(b"another root")
    with pytest.raises(IntegrityError, match="does not give the root its step recorded"):
        open_changes(indexed.path, other)

    def moved(rows: pa.Table) -> pa.Table:  # an index that sends a key to another part
        meta = dict(pq.ParquetFile(indexed.path).schema_arrow.metadata)
        meta[changesfiles.INDEX] = meta[changesfiles.INDEX].replace(b'"first":"', b'"first":"!', 1)
        return rows.replace_schema_metadata(meta)

    file = pq.ParquetFile(indexed.path)
    pq.write_table(moved(file.read()), indexed.path, row_group_size=8)
    with pytest.raises(IntegrityError, match="does not give the root"):
        Deltas(tmp_path, indexed.digest, indexed.root).rows("key", "x")
    indexed.path.unlink()
    with pytest.raises(NotFoundError, match="is not in"):
        Deltas(tmp_path, indexed.digest, indexed.root).rows("key", "x")


def test_a_part_out_of_order_is_refused_even_under_its_root(tmp_path: Path) -> None:
    """A root vouches for what was written; a part whose rows are not in order (which
    could hide a row from a lookup) is still refused when read."""
    table = rows_of([(0, i, None, False) for i in range(16)], True)
    indexed = saved(tmp_path, table, True, 8)
    file = pq.ParquetFile(indexed.path)
    rows = file.read()
    swapped = pa.concat_tables([rows.slice(0, 1), rows.slice(2, 1), rows.slice(1, 1)])
    swapped = pa.concat_tables([swapped, rows.slice(3)]).replace_schema_metadata(None)
    index = orjson.loads(file.schema_arrow.metadata[changesfiles.INDEX])
    index["parts"][0]["digest"] = changesfiles.part_digest(swapped.slice(0, 8)).hex()
    root = changesfiles.index_root("key", index["parts"], index["duplicates"])
    meta = {**file.schema_arrow.metadata, changesfiles.INDEX: orjson.dumps(index)}
    pq.write_table(swapped.replace_schema_metadata(meta), indexed.path, row_group_size=8)
    middle = shortlex(table.column("key").to_pylist())[1]
    with pytest.raises(
        IntegrityError, match=r"part 1 of the changes file \w+\.changes\.parquet is not in order"
    ):
        Deltas(tmp_path, indexed.digest, root).rows("key", middle)


def test_a_part_digest_is_pinned() -> None:
    """The digest of a part's values is a format (ADR 0021): this one must not move."""
    rows = [
        ("removed", "k1", b"a" * 32, None, "r", None, "x"),
        ("changed", "k\u00e9", b"b" * 32, b"c" * 32, None, ["t", "\u00e9"], None),
        ("added", None, None, b"d" * 32, None, [], None),
    ]
    table = pa.Table.from_pylist(
        [dict(zip(CHANGES_SCHEMA.names, r, strict=True)) for r in rows], schema=CHANGES_SCHEMA
    )
    pinned = "f6fc78372384e6b87db19253b683df8652d7b5f98275fa456c640fc39352e212"
    assert changesfiles.part_digest(table).hex() == pinned
    assert changesfiles.part_digest(table.slice(1)) == changesfiles.part_digest(
        pa.Table.from_pylist(table.slice(1).to_pylist(), schema=CHANGES_SCHEMA)
    )
