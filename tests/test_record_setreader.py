"""Set files read a shard at a time (mlprov.records.setreader): the same answers and proofs
as the set read whole, and every part the index points to checked against the root."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlprov.errors import IntegrityError
from mlprov.records.setfiles import EARLIER, INDEX, read_rows
from mlprov.records.setreader import SetFile, open_set
from mlprov.records.sets import RecordSet

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(rng: random.Random, n: int, people: int, keyed: bool = True) -> RecordSet:
    """`n` rows (a few digests repeated under another key), most naming one of `people`."""
    ds = [rng.randbytes(32) for _ in range(n)]
    ds += ds[: n // 10]  # repeated records: one member, several rows
    persons = [rng.randbytes(32) for _ in range(people)]
    subjects = [persons[i % people] if people and i % 5 else None for i in range(len(ds))]
    keys = [f"k{i % (n - 3)}" if keyed and n > 3 else None for i in range(len(ds))]
    return RecordSet.build(ds, keys=keys, subjects=subjects)


def asked(rs: RecordSet, rng: random.Random) -> tuple[list[bytes], list[bytes], list[Any]]:
    """Digests, subject hashes and keys to ask about: present ones and absent ones."""
    rows = rs.table.to_pylist()
    digests = [r["digest"] for r in rows[::7]] + [rng.randbytes(32) for _ in range(5)]
    subjects = [r["subject"] for r in rows[::5] if r["subject"]] + [rng.randbytes(32)]
    keys = [r["key"] for r in rows[::9] if r["key"]] + ["no-such-key"]
    return digests, subjects, keys


def check_same(rs: RecordSet, view: Any, rng: random.Random) -> None:
    assert view.root == rs.root
    assert (view.size, view.subject_count) == (rs.size, rs.subject_count)
    digests, subjects, keys = asked(rs, rng)
    for d in digests:
        assert view.prove(d) == rs.prove(d)
        assert (d in view) == (d in rs)
        assert view.where("digest", d).equals(rs.where("digest", d))
    for h in subjects:
        assert view.prove_subject(h) == rs.prove_subject(h)
        assert view.prove_subject(h).dumps() == rs.prove_subject(h).dumps()
        assert view.where("subject", h).equals(rs.where("subject", h))
    for k in keys:
        assert view.where("key", k).equals(rs.where("key", k))
    assert view.subjects_in(subjects) == rs.subjects_in(subjects)
    for column, values in (("digest", digests), ("subject", subjects), ("key", keys)):
        assert view.where_any(column, values).equals(rs.where_any(column, values))
    for s in (0, 17, 255):
        assert view.shard(s) == rs.shard(s) and view.subject_shard(s) == rs.subject_shard(s)


@SETTINGS
@given(st.integers(0, 2**32), st.integers(0, 400), st.integers(0, 30), st.booleans())
def test_a_set_file_read_by_shards_answers_as_the_whole_set(
    tmp_path_factory: pytest.TempPathFactory, seed: int, n: int, people: int, keyed: bool
) -> None:
    rng = random.Random(seed)
    rs = make(rng, n, people, keyed)
    view = open_set(rs.save(tmp_path_factory.mktemp("sets")))
    assert isinstance(view, SetFile)
    check_same(rs, view, rng)


def test_a_set_across_many_row_groups_answers_as_the_whole_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlprov.records import setfiles

    monkeypatch.setattr(setfiles, "GROUP_ROWS", 13)  # shards straddle row groups
    rng = random.Random(3)
    rs = make(rng, 3000, 200)
    path = rs.save(tmp_path)
    assert pq.read_metadata(path).num_row_groups > 200
    view = open_set(path)
    check_same(rs, view, rng)
    assert RecordSet.load(path).table.equals(rs.table)


def _rewrite(path: Path, table: Any = None, index: dict[str, Any] | None = None) -> None:
    """Write the file again: other rows (both parts) or another index."""
    meta = dict(pq.read_metadata(path).metadata)
    if index is not None:
        meta[INDEX] = json.dumps(index).encode()
    whole = table if table is not None else pq.read_table(path)
    pq.write_table(whole.replace_schema_metadata(meta), path, row_group_size=50)


def _index(path: Path) -> dict[str, Any]:
    return json.loads(pq.read_metadata(path).metadata[INDEX])  # type: ignore[no-any-return]


@pytest.fixture
def saved(tmp_path: Path) -> tuple[RecordSet, Path]:
    rs = make(random.Random(8), 600, 40)
    return rs, rs.save(tmp_path)


def test_a_changed_top_leaf_in_the_index_is_refused(saved: tuple[RecordSet, Path]) -> None:
    _, path = saved
    index = _index(path)
    root, size = index["shards"][3]
    index["shards"][3] = [root, size + 1]  # a shard's size
    _rewrite(path, index=index)
    with pytest.raises(IntegrityError, match="not the root in its name"):
        open_set(path)
    index["shards"][3] = [bytes(32).hex(), size]  # a shard's root
    _rewrite(path, index=index)
    with pytest.raises(IntegrityError, match="not the root in its name"):
        open_set(path)
    index["shards"] = index["shards"][:-1]
    _rewrite(path, index=index)
    with pytest.raises(IntegrityError, match=r"index .* is malformed"):
        open_set(path)


@pytest.mark.parametrize("column", ["digest", "subject"])
def test_a_changed_row_is_refused_when_its_shard_is_read(
    saved: tuple[RecordSet, Path], column: str
) -> None:
    rs, path = saved
    whole = pq.read_table(path)
    index = _index(path)
    # The last row of the set (a record shard) or of the subject rows (a subject shard).
    at = index["rows"] - 1 if column == "digest" else whole.num_rows - 1
    old = whole.column(column)[at].as_py()
    new = old[:-1] + bytes([old[-1] ^ 1])  # the same shard, another value
    values = whole.column(column).to_pylist()
    values[at] = new
    _rewrite(
        path,
        whole.set_column(
            whole.schema.get_field_index(column), column, pa.array(values, pa.binary(32))
        ),
    )
    view = open_set(path)  # the index itself is intact
    kind = "record" if column == "digest" else "subject"
    with pytest.raises(IntegrityError, match=f"{kind} shard {old[0]} of .* does not match"):
        if kind == "record":
            view.prove(old)
        else:
            view.prove_subject(old)
    # Shards it did not touch are still read, and answer as before.
    other = next(d for d in rs if d[0] != old[0])
    assert view.prove(other) == rs.prove(other)


def test_rows_left_out_of_a_shard_by_the_index_are_noticed(
    saved: tuple[RecordSet, Path],
) -> None:
    _, path = saved
    index = _index(path)
    shard = next(s for s in range(1, 255) if index["records"][s + 1] - index["records"][s] > 1)
    index["records"][shard] += 1  # the shard's first row, said to belong to the one before
    _rewrite(path, index=index)
    view = open_set(path)
    with pytest.raises(IntegrityError, match=f"record shard {shard - 1} of"):
        view.prove(bytes([shard - 1]) + bytes(31))
    with pytest.raises(IntegrityError, match=f"record shard {shard} of"):
        view.prove(bytes([shard]) + bytes(31))


def test_a_file_of_the_earlier_format_is_read_whole_and_upgraded_when_saved_again(
    saved: tuple[RecordSet, Path],
) -> None:
    rs, path = saved
    earlier = {b"mlprov.format": EARLIER.encode(), b"mlprov.root": rs.root.hex().encode()}
    pq.write_table(rs.table.replace_schema_metadata(earlier), path)
    view = open_set(path)
    assert isinstance(view, RecordSet) and view == rs
    check_same(rs, view, random.Random(1))
    assert read_rows(path)[1] == EARLIER.encode()
    rs.save(path.parent)  # the same rows: written again, with the index
    assert isinstance(open_set(path), SetFile)
    assert RecordSet.load(path).table.equals(rs.table)


def test_subjects_that_tie_on_their_first_eight_bytes_are_sorted_on_all_of_them(
    tmp_path: Path,
) -> None:
    rng = random.Random(21)
    people = [b"\x33" * 8 + rng.randbytes(24) for _ in range(40)]
    ds = [rng.randbytes(32) for _ in range(400)]
    rs = RecordSet.build(ds, subjects=[people[i % 40] for i in range(400)])
    path = rs.save(tmp_path)
    named = pq.read_table(path).slice(400).column("subject").to_pylist()
    assert named == sorted(named) and len(named) == 400
    check_same(rs, open_set(path), rng)
