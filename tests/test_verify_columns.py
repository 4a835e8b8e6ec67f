"""Every column of the store is checked: edit any one of them and `verify` objects (or the
store refuses to open). The columns are enumerated from the tables a new store is created
with (read back from the database itself), so a column added later is edited here too, and
fails this test until `verify` checks it."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import sql_engine

from mlprov.errors import MlprovError
from mlprov.facade import Ledger
from mlprov.ledger import Event
from mlprov.store import schema
from mlprov.store.sql import SqlStore

EARLY = "2000-01-01T00:00:00.000000Z"  # a well-formed time, earlier than anything recorded
META_KEYS = ("format", "schema_version", "origin", "ledger_id")  # every row it holds


@cache
def _tables() -> sa.MetaData:
    """The tables of a new store, as its database describes them."""
    with tempfile.TemporaryDirectory() as folder:
        SqlStore.create(f"sqlite:///{Path(folder) / 'ledger.db'}", {}).close()
        engine = sa.create_engine(f"sqlite:///{Path(folder) / 'ledger.db'}")
        found = sa.MetaData()
        found.reflect(engine)
        engine.dispose()
    assert {t.name for t in found.sorted_tables} == set(schema.TABLES)
    return found


def _cases() -> list[Any]:
    """(table, column, row selector, edit) for every column of every table."""
    cases = []
    for table in _tables().sorted_tables:
        for column in table.columns:
            rows = META_KEYS if table.name == "mlprov_meta" else (None,)
            for row in rows:
                edits = ["change"]
                if isinstance(column.type, sa.Text) and column.name in (
                    "recorded_at",
                    "created_at",
                    "value",
                ):
                    edits.append("earlier")
                for edit in edits:
                    if edit == "earlier" and table.name == "mlprov_meta":
                        continue  # no setting is a time
                    label = f"{table.name}.{column.name}" + (f"[{row}]" if row else "") + f"-{edit}"
                    cases.append(pytest.param(table.name, column.name, row, edit, id=label))
    return cases


def _fill(ledger: Ledger) -> None:
    """300 events (a full Merkle tile and a partial one), linked, and two checkpoints."""
    first = ledger.append(Event.create("source", {"name": "chats", "version": "1"}, actor="a"))
    ledger.append_many(
        [
            Event.create("transform", {"name": f"step-v{i}"}, actor="a", parents=[first.digest])
            for i in range(1, 200)
        ]
    )
    ledger.checkpoint()
    ledger.append_many(
        [Event.create("source", {"name": "more", "version": str(i)}, actor="b") for i in range(100)]
    )
    ledger.checkpoint()


def _changed(value: Any, column: sa.Column[Any], edit: str) -> list[Any]:
    """Values to write instead of `value`, most plausible first (the next is tried when the
    store itself refuses one, e.g. a key it already holds)."""
    if edit == "earlier":
        return [EARLY]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytearray(bytes(value))
        raw[-1] ^= 1
        return [bytes(raw)]
    if isinstance(value, int):
        return [value + 1, value - 1, value + 1000]
    return [f"{value}x"]


def _edit(ledger: Ledger, table_name: str, column_name: str, row: str | None, edit: str) -> None:
    table = _tables().tables[table_name]
    column = table.c[column_name]
    keys = list(table.primary_key.columns)
    engine: sa.Engine = sql_engine(ledger)
    with engine.connect() as conn:
        where = (table.c.key == row) if row is not None else column.is_not(None)
        # The last row that has a value: a late event, the newest checkpoint, a top tile.
        found = conn.execute(
            sa.select(*keys, column).where(where).order_by(*(k.desc() for k in keys)).limit(1)
        ).first()
    assert found is not None, f"no row of {table_name} to edit"
    *pk, value = found
    match = sa.and_(*(k == v for k, v in zip(keys, pk, strict=True)))
    for new in _changed(value, column, edit):
        try:
            with engine.begin() as conn:
                done = conn.execute(table.update().where(match).values({column_name: new}))
                assert done.rowcount == 1
            return
        except sa.exc.IntegrityError:
            continue
    pytest.fail(f"could not edit {table_name}.{column_name}")


def _verifies(ledger: Ledger) -> bool:
    """Whether the store, opened afresh, still verifies; a refusal to open is a no."""
    try:
        with Ledger(SqlStore.open(ledger.store.connect_url), ledger.location) as again:
            return again.verify().ok
    except MlprovError:
        return False


def test_the_filled_ledger_verifies(ledger: Ledger) -> None:
    _fill(ledger)
    assert _verifies(ledger)
    with ledger.store.reader() as r:
        assert set(r.meta()) == set(META_KEYS)  # the cases below edit every row


def test_the_creation_time_of_an_older_store_is_a_warning(ledger: Ledger) -> None:
    _fill(ledger)
    with sql_engine(ledger).begin() as conn:
        meta = _tables().tables["mlprov_meta"]
        conn.execute(meta.insert().values(key="created_at", value="2026-01-01"))
    report = ledger.verify()
    assert report.ok and any("creation time" in w for w in report.warnings)


def test_an_unknown_setting_is_a_problem(ledger: Ledger) -> None:
    _fill(ledger)
    with sql_engine(ledger).begin() as conn:
        meta = _tables().tables["mlprov_meta"]
        conn.execute(meta.insert().values(key="trusted", value="yes"))
    assert not _verifies(ledger)


@pytest.mark.parametrize(("table", "column", "row", "edit"), _cases())
def test_every_column_is_checked(
    ledger: Ledger, table: str, column: str, row: str | None, edit: str
) -> None:
    _fill(ledger)
    _edit(ledger, table, column, row, edit)
    assert not _verifies(ledger), f"an edit of {table}.{column} went unnoticed"


def test_the_cases_cover_every_column() -> None:
    named = {c.id.split("[")[0].rsplit("-", 1)[0] for c in _cases()}  # type: ignore[union-attr]
    every = {f"{t.name}.{c.name}" for t in _tables().sorted_tables for c in t.columns}
    assert named == every
