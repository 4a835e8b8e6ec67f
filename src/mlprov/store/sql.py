"""The SQL store (SQLAlchemy Core): SQLite by default, PostgreSQL for teams.

The two backends differ in three places only, all here: how a writer takes the one write
lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL `SELECT ... FOR UPDATE` on the head row), how
a reader gets a snapshot (SQLite WAL read transaction, PostgreSQL REPEATABLE READ), and
the upsert dialect for tiles.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from mlprov.errors import ConflictError, DuplicateError, MissingExtraError, StoreError
from mlprov.store import schema
from mlprov.store.interface import CheckpointRow, EventFilter, EventRow

__all__ = ["SqlStore"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500  # bound parameters per IN list, well under every backend's limit
_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 65536  # SQLite's page cache: the digest index of a large ledger must fit
_ANCESTORS = sa.text(
    "WITH RECURSIVE anc(seq) AS (SELECT CAST(:seq AS BIGINT) UNION "
    "SELECT e.parent FROM mlprov_edges e JOIN anc ON e.child = anc.seq) "
    "SELECT seq FROM anc ORDER BY seq"
)


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _row(r: Any) -> EventRow:
    return EventRow(r[0], bytes(r[1]), r[2], r[3], r[4], bytes(r[5]))


_EVENT_COLUMNS = (
    schema.events.c.seq,
    schema.events.c.digest,
    schema.events.c.type,
    schema.events.c.name,
    schema.events.c.recorded_at,
    schema.events.c.body,
)


class _Session:
    """A reader (and, with `locked`, a writer) over one connection and transaction."""

    def __init__(self, conn: Connection, dialect: str, locked_size: int | None) -> None:
        self._conn = conn
        self._dialect = dialect
        self._locked_size = locked_size
        self._cursor: Any = None

    def _raw(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run SQL on the driver's cursor, inside this session's transaction.

        The hot paths (every append, every proof) go straight to the driver: SQLAlchemy's
        statement building costs more than SQLite's own work for one small row. `sql`
        uses `?` placeholders; PostgreSQL's driver wants `%s`.
        """
        if self._cursor is None:
            self._cursor = self._conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if self._dialect != "sqlite":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, tuple(params))
        return list(self._cursor.fetchall()) if self._cursor.description else []

    # -- reads --------------------------------------------------------------------------
    def size(self) -> int:
        if self._locked_size is not None:
            return self._locked_size
        return int(self._conn.execute(sa.select(schema.head.c.size)).scalar_one())

    def meta(self) -> dict[str, str]:
        rows = self._conn.execute(sa.select(schema.meta.c.key, schema.meta.c.value))
        return {k: v for k, v in rows}

    def by_digest(self, digests: Iterable[bytes]) -> list[EventRow]:
        out: list[EventRow] = []
        for batch in _chunks(digests):
            q = sa.select(*_EVENT_COLUMNS).where(schema.events.c.digest.in_(batch))
            out.extend(_row(r) for r in self._conn.execute(q))
        return out

    def by_seq(self, seqs: Iterable[int]) -> list[EventRow]:
        out: list[EventRow] = []
        for batch in _chunks(seqs):
            q = sa.select(*_EVENT_COLUMNS).where(schema.events.c.seq.in_(batch))
            out.extend(_row(r) for r in self._conn.execute(q))
        out.sort(key=lambda r: r.seq)
        return out

    def digests(self, start: int, end: int) -> list[bytes]:
        sql = "SELECT digest FROM mlprov_events WHERE seq >= ? AND seq < ? ORDER BY seq"
        return [bytes(d) for (d,) in self._raw(sql, (start, end))]

    def by_hex_prefix(self, prefix: str, limit: int) -> list[EventRow]:
        # A hex prefix is a byte range [low, high) on the unique digest index.
        low_hex = prefix + "0" * (64 - len(prefix))
        low = bytes.fromhex(low_hex)
        top = int(prefix, 16) + 1
        q = sa.select(*_EVENT_COLUMNS).where(schema.events.c.digest >= low)
        if top < 16 ** len(prefix):
            high = bytes.fromhex(f"{top:0{len(prefix)}x}" + "0" * (64 - len(prefix)))
            q = q.where(schema.events.c.digest < high)
        q = q.order_by(schema.events.c.digest).limit(limit)
        return [_row(r) for r in self._conn.execute(q)]

    def seqs_of(self, digests: Iterable[bytes]) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for batch in _chunks(digests):
            marks = ", ".join("?" * len(batch))
            rows = self._raw(
                f"SELECT digest, seq FROM mlprov_events WHERE digest IN ({marks})", batch
            )
            out.update((bytes(d), int(s)) for d, s in rows)
        return out

    def parent_seqs(self, seqs: Iterable[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for batch in _chunks(seqs):
            q = (
                sa.select(schema.edges.c.child, schema.edges.c.parent)
                .where(schema.edges.c.child.in_(batch))
                .order_by(schema.edges.c.child, schema.edges.c.parent)
            )
            for child, parent in self._conn.execute(q):
                out.setdefault(int(child), []).append(int(parent))
        return out

    def child_seqs(self, seq: int) -> list[int]:
        q = (
            sa.select(schema.edges.c.child)
            .where(schema.edges.c.parent == seq)
            .order_by(schema.edges.c.child)
        )
        return [int(c) for c in self._conn.execute(q).scalars()]

    def ancestor_seqs(self, seq: int) -> list[int]:
        return [int(s) for s in self._conn.execute(_ANCESTORS, {"seq": seq}).scalars()]

    def select(self, where: EventFilter) -> Iterator[EventRow]:
        c = schema.events.c
        q = sa.select(*_EVENT_COLUMNS)
        if where.type is not None:
            q = q.where(c.type == where.type)
        if where.name is not None:
            q = q.where(c.name == where.name)
        if where.since is not None:
            q = q.where(c.recorded_at >= where.since)
        if where.until is not None:
            q = q.where(c.recorded_at < where.until)
        q = q.order_by(c.seq.desc() if where.newest_first else c.seq)
        if where.limit is not None:
            q = q.limit(where.limit)
        for r in self._conn.execution_options(yield_per=2000).execute(q):
            yield _row(r)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Stream a long result in batches on a cursor of its own (server-side on PostgreSQL),
        without per-row processing: verify reads every row, so this is its floor."""
        dbapi: Any = self._conn.connection.dbapi_connection
        if self._dialect == "sqlite":
            cur = dbapi.cursor()
        else:
            sql = sql.replace("?", "%s")
            cur = dbapi.cursor(name=f"mlprov_scan_{secrets.token_hex(6)}")
        try:
            cur.execute(sql, tuple(params))
            while rows := cur.fetchmany(20000):
                yield from rows
        finally:
            cur.close()

    def scan_events(self, start: int = 0, end: int | None = None) -> Iterator[EventRow]:
        sql = "SELECT seq, digest, type, name, recorded_at, body FROM mlprov_events WHERE seq >= ?"
        params: tuple[int, ...] = (start,) if end is None else (start, end)
        sql += "" if end is None else " AND seq < ?"
        for r in self._stream(sql + " ORDER BY seq", params):
            yield EventRow(*r)

    def scan_edges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        sql = "SELECT child, parent FROM mlprov_edges WHERE child >= ?"
        params: tuple[int, ...] = (start,) if end is None else (start, end)
        sql += "" if end is None else " AND child < ?"
        return self._stream(sql + " ORDER BY child, parent", params)

    def tiles(self, level: int, indices: Iterable[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for batch in _chunks(indices):
            marks = ", ".join("?" * len(batch))
            sql = f"SELECT idx, hashes FROM mlprov_tiles WHERE level = ? AND idx IN ({marks})"
            out.update((int(i), bytes(h)) for i, h in self._raw(sql, (level, *batch)))
        return out

    def scan_tiles(self) -> Iterator[tuple[int, int, bytes]]:
        return self._stream("SELECT level, idx, hashes FROM mlprov_tiles ORDER BY level, idx")

    def checkpoints(self) -> list[CheckpointRow]:
        c = schema.checkpoints.c
        q = sa.select(c.id, c.size, c.note, c.created_at).order_by(c.id)
        return [CheckpointRow(int(i), int(s), bytes(n), t) for i, s, n, t in self._conn.execute(q)]

    def head_rows(self) -> list[tuple[int, int]]:
        """Every row of the head table as (id, size): `verify` expects exactly (1, size)."""
        h = schema.head.c
        return [(int(i), int(s)) for i, s in self._conn.execute(sa.select(h.id, h.size))]

    # -- writes (only reachable through SqlStore.writer) --------------------------------
    def insert(self, rows: Sequence[EventRow], edges: Sequence[tuple[int, int]]) -> None:
        # Straight to the driver's executemany: this is the hot path of every append, and
        # SQLAlchemy's per-row parameter processing would cost as much as the insert itself.
        ph = "?" if self._conn.dialect.paramstyle == "qmark" else "%s"
        if rows:
            try:
                self._conn.exec_driver_sql(
                    "INSERT INTO mlprov_events (seq, digest, type, name, recorded_at, body) "
                    f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
                    list(rows),
                )
            except sa.exc.IntegrityError as exc:  # the unique digest index said no
                raise DuplicateError("an event of this batch is already recorded") from exc
        if edges:
            self._conn.exec_driver_sql(
                f"INSERT INTO mlprov_edges (child, parent) VALUES ({ph}, {ph})", list(edges)
            )

    def put_tiles(self, tiles: Sequence[tuple[int, int, bytes]]) -> None:
        if not tiles:
            return
        # The dialect's own INSERT, imported here: a read of a SQLite ledger never loads
        # the PostgreSQL dialect (a tenth of a command's start).
        if self._dialect == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
        insert = dialect.insert
        stmt = insert(schema.tiles)
        stmt = stmt.on_conflict_do_update(
            index_elements=["level", "idx"], set_={"hashes": stmt.excluded.hashes}
        )
        self._conn.execute(stmt, [{"level": lv, "idx": i, "hashes": h} for lv, i, h in tiles])

    def set_size(self, size: int) -> None:
        self._raw("UPDATE mlprov_head SET size = ? WHERE id = 1", (size,))
        self._locked_size = size

    def add_checkpoint(self, size: int, note: bytes, created_at: str) -> None:
        # Numbered 1, 2, 3... here, under the write lock, not by a sequence (which skips
        # numbers on PostgreSQL): `verify` checks each row's number against its place.
        number = self._conn.execute(sa.select(sa.func.count()).select_from(schema.checkpoints))
        self._conn.execute(
            schema.checkpoints.insert().values(
                id=int(number.scalar_one()) + 1, size=size, note=note, created_at=created_at
            )
        )


def _sqlite_path(url: sa.URL) -> Path | None:
    db = url.database
    return None if not db or db == ":memory:" else Path(db)


def _check_sqlite_file(path: Path) -> None:
    if not path.exists():
        raise StoreError(
            f"no ledger database at {path}", "run `mlprov init` to create one, or fix MLPROV_STORE"
        )
    if not path.is_file():
        raise StoreError(f"{path} is not a file", "point MLPROV_STORE at a ledger.db file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", "check its permissions") from exc
    if magic != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not an mlprov ledger: it is not a SQLite database",
            "point MLPROV_STORE at the right file, or restore it from a backup",
        )
    # Look through a read-only connection first: opening a foreign file through the engine
    # would switch it to WAL mode, and a store must never change what it does not own.
    sides = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
    absent = [p for p in sides if not p.exists()]
    try:
        _read_meta(path)
    except StoreError:
        for side in absent:  # leave a refused file exactly as it was found
            if side.exists() and side.stat().st_size == 0:
                side.unlink()
        raise


def _read_meta(path: Path) -> None:
    """Refuse a SQLite file that is not an mlprov ledger this version can read."""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM mlprov_meta").fetchall())
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            raise StoreError(
                f"{path} is a SQLite database but not an mlprov ledger",
                "point MLPROV_STORE at a ledger.db, or run `mlprov init` elsewhere",
            ) from exc
        raise StoreError(
            f"{path} cannot be read as a ledger: {exc}",
            "the file is damaged or not a ledger: restore it from a backup",
        ) from exc
    if meta.get("format") != schema.FORMAT:
        raise StoreError(
            f"{path} is a SQLite database but not an mlprov ledger",
            "point MLPROV_STORE at a ledger.db, or run `mlprov init` elsewhere",
        )
    if (
        not str(meta.get("schema_version", "")).isdigit()
        or int(meta["schema_version"]) > schema.SCHEMA_VERSION
    ):
        raise StoreError(
            f"{path} was written by a newer mlprov (store schema {meta.get('schema_version')})",
            "upgrade mlprov: pip install -U mlprov",
        )


def _normalise_url(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"cannot parse store URL {url!r}",
            "use a path, sqlite:///PATH or postgresql://USER@HOST/DB",
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise StoreError(
            f"unsupported store {parsed.drivername!r}",
            "use a path, sqlite:///PATH or postgresql://USER@HOST/DB",
        )
    return parsed


class SqlStore:
    """A ledger store over SQLAlchemy Core: `open` an existing store, `create` a new one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    # -- construction -------------------------------------------------------------------
    @classmethod
    def _engine_for(cls, url: str) -> tuple[Engine, Path | None]:
        parsed = _normalise_url(url)
        if parsed.drivername == "postgresql+psycopg":
            try:
                import psycopg  # noqa: F401
            except ImportError as exc:
                raise MissingExtraError("psycopg", "postgres") from exc
            return sa.create_engine(parsed, pool_pre_ping=True), None
        sync = str(parsed.query.get("synchronous", "NORMAL")).upper()
        if sync not in _SYNC_LEVELS:
            raise StoreError(f"unknown SQLite synchronous level {sync!r}", "use NORMAL or FULL")
        parsed = parsed.difference_update_query(["synchronous"])
        engine = sa.create_engine(parsed, connect_args={"timeout": 60})
        _configure_sqlite(engine, sync)
        return engine, _sqlite_path(parsed)

    @classmethod
    def open(cls, url: str) -> SqlStore:
        """Open an existing ledger store; refuse anything that is not one."""
        engine, path = cls._engine_for(url)
        if path is not None:
            _check_sqlite_file(path)
        store = cls(engine)
        store._check_format()
        return store

    @classmethod
    def create(cls, url: str, meta: dict[str, str]) -> SqlStore:
        """Create the tables of a new, empty ledger and write its meta rows."""
        engine, path = cls._engine_for(url)
        if path is not None:
            if path.exists() and path.stat().st_size > 0:
                raise ConflictError(
                    f"{path} already exists", "open it, or remove it to start a new ledger"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(engine)
        with store._guard(), engine.begin() as conn:
            if sa.inspect(conn).has_table(schema.meta.name):
                raise ConflictError(
                    f"{store.url} already holds an mlprov ledger", "open it instead of creating it"
                )
            schema.metadata.create_all(conn)
            values = {
                "format": schema.FORMAT,
                "schema_version": str(schema.SCHEMA_VERSION),
                **meta,
            }
            conn.execute(schema.meta.insert(), [{"key": k, "value": v} for k, v in values.items()])
            conn.execute(schema.head.insert().values(id=1, size=0))
        return store

    def _check_format(self) -> None:
        with self.reader() as r:
            try:
                found = r.meta()
            except StoreError as exc:
                raise StoreError(
                    f"{self.url} is not an mlprov ledger ({exc.message})",
                    "point MLPROV_STORE at a ledger, or run `mlprov init` to create one",
                ) from exc
        if found.get("format") != schema.FORMAT:
            raise StoreError(
                f"{self.url} is not an mlprov ledger", "point MLPROV_STORE at a ledger"
            )
        text = found.get("schema_version", "")
        version = int(text) if text.isdigit() else None
        if version is None:
            raise StoreError(
                f"{self.url} has a damaged store schema version {text!r}",
                "restore the store from a backup; `mlprov verify` cannot read it",
            )
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.url} was written by a newer mlprov (store schema {version})",
                "upgrade mlprov: pip install -U mlprov",
            )

    # -- use ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def connect_url(self) -> str:
        """The URL with its password, for this machine's own worker processes; never shown."""
        return self._engine.url.render_as_string(hide_password=False)

    @property
    def dialect(self) -> str:
        return self._dialect

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            hint = "check that the store is reachable and is an mlprov ledger"
            if re.search(r"malformed|not a database|corrupt", detail, re.I):
                hint = "the database file is damaged: restore it from a backup"
            raise StoreError(f"the store {self.url} failed: {detail}", hint) from exc

    @contextmanager
    def reader(self) -> Iterator[_Session]:
        with self._guard(), self._engine.connect() as conn:
            if self._dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield _Session(conn, self._dialect, None)

    @contextmanager
    def writer(self) -> Iterator[_Session]:
        with self._guard(), self._engine.connect() as conn:
            conn = conn.execution_options(mlprov_write=True)
            with conn.begin():
                session = _Session(conn, self._dialect, None)
                lock = "" if self._dialect == "sqlite" else " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE
                ((size,),) = session._raw(f"SELECT size FROM mlprov_head WHERE id = 1{lock}")
                session._locked_size = int(size)
                yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One plain transaction, for tables outside the log (the server's access list):
        it takes no log lock and cannot touch recorded history."""
        with self._guard(), self._engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self._engine.dispose()


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    """WAL, a busy timeout, and explicit BEGIN so writers can take the lock up front."""

    @sa_event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("mlprov_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
