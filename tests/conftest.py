"""Shared fixtures: every store test runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server comes from MLPROV_TEST_POSTGRES_URL (`.ci/run` starts a throwaway
one on loopback). Without it the PostgreSQL half is skipped, unless
MLPROV_REQUIRE_POSTGRES=1, which turns the skip into a failure (as in CI).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mlprov.facade import Ledger

PG_ENV = "MLPROV_TEST_POSTGRES_URL"


def _postgres_base() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("MLPROV_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{PG_ENV} is not set but MLPROV_REQUIRE_POSTGRES=1")
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (bash .ci/run does)")
    return url


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[object]:
    import sqlalchemy as sa

    engine = sa.create_engine(
        _postgres_base().replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    yield engine
    engine.dispose()


def _pg_url(pg_admin: object) -> Iterator[str]:
    """A fresh schema per test, selected through the connection's search_path."""
    import sqlalchemy as sa

    assert isinstance(pg_admin, sa.Engine)
    schema = "t_" + secrets.token_hex(6)
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in _postgres_base() else "?"
    yield f"{_postgres_base()}{sep}options={quote(f'-c search_path={schema}')}"
    with pg_admin.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for a new, empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / '.mlprov' / 'ledger.db'}"
    else:
        yield from _pg_url(request.getfixturevalue("pg_admin"))


@pytest.fixture
def ledger(store_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """A new ledger (with its signing key) on each backend."""
    with Ledger.init(tmp_path, store=store_url) as led:
        yield led


def sql_engine(ledger: Ledger) -> Any:
    """An SQLAlchemy engine on the ledger's own store, for tests that edit its rows behind
    its back (as a tamperer would, with a tool of their own)."""
    import sqlalchemy as sa

    url = ledger.store.connect_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, poolclass=sa.NullPool)


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.init(tmp_path) as led:
        yield led
