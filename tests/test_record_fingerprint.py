"""fingerprint(): one pass over a source gives its record set, keys and subject hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlprov.digest import digest_file
from mlprov.errors import InputError
from mlprov.records.canonical import record_digest
from mlprov.records.fingerprint import fingerprint
from mlprov.records.subjects import SubjectHasher

HASHER = SubjectHasher(b"s" * 32)


def rows(n: int) -> list[dict[str, object]]:
    return [{"id": i, "text": f"row {i}", "who": f"U{i % 3}"} for i in range(n)]


def test_same_set_from_a_file_and_from_memory(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows(100)), path)
    from_file = fingerprint(path, key="id", subject="who", hasher=HASHER)
    from_rows = fingerprint(rows(100), key="id", subject="who", hasher=HASHER)
    assert from_file.records.root == from_rows.records.root
    assert from_file.rows == 100 and from_file.byte_digest == digest_file(path)
    assert from_rows.byte_digest is None
    assert from_file.records.keys_of(record_digest(rows(100)[5])) == ["5"]
    assert from_file.records.subjects() == {HASHER.hash(f"U{i}") for i in range(3)}


def test_errors_name_the_row_in_the_whole_source() -> None:
    # a duration (which mlprov-record/1 does not encode) in the second batch's last row
    late = pa.array([None] * 69_999 + [5], pa.duration("s"))
    table = pa.table({"id": pa.array(range(70_000)), "waited": late})
    with pytest.raises(InputError, match=r"Table: row 69999: column 'waited'"):
        fingerprint(table)
    with pytest.raises(InputError, match="same key '3'"):
        fingerprint([*rows(5), {"id": 3, "text": "again", "who": "x"}], key="id")
    with pytest.raises(InputError, match="row 6: the key column 'id' is empty"):
        fingerprint([*rows(5), {"id": None, "text": "no key", "who": "x"}], key="id")


def test_progress_and_subject_without_secret() -> None:
    seen: list[int] = []
    fingerprint(rows(10), progress=seen.append)
    assert seen == [10]
    with pytest.raises(InputError, match="subject secret"):
        fingerprint(rows(3), subject="who")


def test_a_file_that_changes_while_it_is_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlprov.records.fingerprint as module

    path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows(10)), path)

    def digest_then_touch(p: Path) -> object:
        found = digest_file(p)
        seen = p.stat()  # as if a writer rewrote the file just after its bytes were hashed
        os.utime(p, ns=(seen.st_atime_ns, seen.st_mtime_ns + 10**9))
        return found

    monkeypatch.setattr(module, "digest_file", digest_then_touch)
    with pytest.raises(InputError, match="changed while it was being fingerprinted"):
        fingerprint(path)


def test_subjects_of_any_type_and_repeated_integer_keys() -> None:
    found = fingerprint(
        [{"id": i, "who": i % 2 or None} for i in range(6)], key="id", subject="who", hasher=HASHER
    )
    assert found.records.subjects() == {HASHER.hash("1")}
    floats = fingerprint([{"who": 1.5}, {"who": None}], subject="who", hasher=HASHER)
    assert floats.records.subjects() == {HASHER.hash("1.5")}
    with pytest.raises(InputError, match="rows 1 and 4 have the same key '0'"):
        fingerprint([{"id": i % 3} for i in range(4)], key="id")
    with pytest.raises(InputError, match="row 1: a subject is empty"):
        fingerprint([{"who": "a"}, {"who": " "}], subject="who", hasher=HASHER)
