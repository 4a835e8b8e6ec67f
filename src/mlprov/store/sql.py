"""The SQL store: SQLite by default, PostgreSQL for teams, through each one's own driver.

One implementation speaks plain SQL to a DB-API connection (the standard library's
`sqlite3`, or `psycopg`): no query builder stands between a command and its rows, so a
read of a small ledger costs little more than the interpreter's start. The two backends
differ in four places only, all here: placeholders (`?` or `%s`), how a writer takes the
one write lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL `SELECT ... FOR UPDATE` on the head
row), how a reader gets a snapshot (SQLite WAL read transaction, PostgreSQL REPEATABLE
READ), and the spelling of two column types (`mlprov.store.schema`).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from mlprov.errors import ConflictError, DuplicateError, MissingExtraError, StoreError
from mlprov.store import schema
from mlprov.store.interface import CheckpointRow, EventFilter, EventRow
from mlprov.store.pool import IDLE, Pool

__all__ = ["SqlStore"]

_CHUNK = 500  # bound parameters per IN list, well under every backend's limit
_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CACHE_KIB = 65536  # SQLite's page cache: the digest index of a large ledger must fit
_COLUMNS = "seq, digest, type, name, recorded_at, body"
_ANCESTORS = (
    "WITH RECURSIVE anc(seq) AS (SELECT CAST(? AS BIGINT) UNION "
    "SELECT e.parent FROM mlprov_edges e JOIN anc ON e.child = anc.seq) "
    "SELECT seq FROM anc ORDER BY seq"
)
_URL_FORMS = "use a path, sqlite:///PATH or postgresql://USER@HOST/DB"


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _row(r: Sequence[Any]) -> EventRow:
    return EventRow(int(r[0]), bytes(r[1]), r[2], r[3], r[4], bytes(r[5]))


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class _Session:
    """A reader (and, with `locked`, a writer) over one connection and transaction."""

    def __init__(self, conn: Any, dialect: str, locked_size: int | None) -> None:
        self._conn = conn
        self._dialect = dialect
        self._locked_size = locked_size
        self._cursor: Any = None

    def _sql(self, sql: str) -> str:
        return sql if self._dialect == "sqlite" else sql.replace("?", "%s")

    def _raw(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run SQL (`?` placeholders) inside this session's transaction; all its rows."""
        if self._cursor is None:
            self._cursor = self._conn.cursor()
        self._cursor.execute(self._sql(sql), tuple(params))
        return list(self._cursor.fetchall()) if self._cursor.description else []

    # -- reads --------------------------------------------------------------------------
    def size(self) -> int:
        if self._locked_size is not None:
            return self._locked_size
        rows = self._raw("SELECT size FROM mlprov_head")
        if len(rows) != 1:
            raise StoreError(
                f"the store's head table holds {len(rows)} rows where it holds one",
                "the store was changed outside mlprov: restore it from a backup",
            )
        return int(rows[0][0])

    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self._raw("SELECT key, value FROM mlprov_meta")}

    def by_digest(self, digests: Iterable[bytes]) -> list[EventRow]:
        out: list[EventRow] = []
        for batch in _chunks(digests):
            sql = f"SELECT {_COLUMNS} FROM mlprov_events WHERE digest IN ({_marks(len(batch))})"
            out.extend(_row(r) for r in self._raw(sql, batch))
        return out

    def by_seq(self, seqs: Iterable[int]) -> list[EventRow]:
        out: list[EventRow] = []
        for batch in _chunks(seqs):
            sql = f"SELECT {_COLUMNS} FROM mlprov_events WHERE seq IN ({_marks(len(batch))})"
            out.extend(_row(r) for r in self._raw(sql, batch))
        out.sort(key=lambda r: r.seq)
        return out

    def digests(self, start: int, end: int) -> list[bytes]:
        sql = "SELECT digest FROM mlprov_events WHERE seq >= ? AND seq < ? ORDER BY seq"
        return [bytes(d) for (d,) in self._raw(sql, (start, end))]

    def by_hex_prefix(self, prefix: str, limit: int) -> list[EventRow]:
        # A hex prefix is a byte range [low, high) on the unique digest index.
        low = bytes.fromhex(prefix + "0" * (64 - len(prefix)))
        top = int(prefix, 16) + 1
        sql, params = f"SELECT {_COLUMNS} FROM mlprov_events WHERE digest >= ?", [low]
        if top < 16 ** len(prefix):
            sql += " AND digest < ?"
            params.append(bytes.fromhex(f"{top:0{len(prefix)}x}" + "0" * (64 - len(prefix))))
        return [_row(r) for r in self._raw(sql + " ORDER BY digest LIMIT ?", (*params, limit))]

    def seqs_of(self, digests: Iterable[bytes]) -> dict[bytes, int]:
        out: dict[bytes, int] = {}
        for batch in _chunks(digests):
            sql = f"SELECT digest, seq FROM mlprov_events WHERE digest IN ({_marks(len(batch))})"
            out.update((bytes(d), int(s)) for d, s in self._raw(sql, batch))
        return out

    def parent_seqs(self, seqs: Iterable[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for batch in _chunks(seqs):
            sql = (
                f"SELECT child, parent FROM mlprov_edges WHERE child IN ({_marks(len(batch))}) "
                "ORDER BY child, parent"
            )
            for child, parent in self._raw(sql, batch):
                out.setdefault(int(child), []).append(int(parent))
        return out

    def child_seqs(self, seq: int) -> list[int]:
        sql = "SELECT child FROM mlprov_edges WHERE parent = ? ORDER BY child"
        return [int(c) for (c,) in self._raw(sql, (seq,))]

    def ancestor_seqs(self, seq: int) -> list[int]:
        return [int(s) for (s,) in self._raw(_ANCESTORS, (seq,))]

    def select(self, where: EventFilter) -> Iterator[EventRow]:
        sql, params = f"SELECT {_COLUMNS} FROM mlprov_events WHERE 1 = 1", list[Any]()
        for clause, value in (
            (" AND type = ?", where.type),
            (" AND name = ?", where.name),
            (" AND recorded_at >= ?", where.since),
            (" AND recorded_at < ?", where.until),
        ):
            if value is not None:
                sql += clause
                params.append(value)
        sql += " ORDER BY seq DESC" if where.newest_first else " ORDER BY seq"
        if where.limit is not None:
            sql += " LIMIT ?"
            params.append(where.limit)
        for r in self._stream(sql, params):
            yield _row(r)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Stream a long result in batches on a cursor of its own (server-side on PostgreSQL),
        without per-row processing: verify reads every row, so this is its floor."""
        if self._dialect == "sqlite":
            cur = self._conn.cursor()
        else:
            cur = self._conn.cursor(name=f"mlprov_scan_{secrets.token_hex(6)}")
        try:
            cur.execute(self._sql(sql), tuple(params))
            while rows := cur.fetchmany(20000):
                yield from rows
        finally:
            cur.close()

    def scan_events(self, start: int = 0, end: int | None = None) -> Iterator[EventRow]:
        sql = f"SELECT {_COLUMNS} FROM mlprov_events WHERE seq >= ?"
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
            sql = (
                "SELECT idx, hashes FROM mlprov_tiles "
                f"WHERE level = ? AND idx IN ({_marks(len(batch))})"
            )
            out.update((int(i), bytes(h)) for i, h in self._raw(sql, (level, *batch)))
        return out

    def scan_tiles(self) -> Iterator[tuple[int, int, bytes]]:
        return self._stream("SELECT level, idx, hashes FROM mlprov_tiles ORDER BY level, idx")

    def checkpoints(self) -> list[CheckpointRow]:
        rows = self._raw("SELECT id, size, note, created_at FROM mlprov_checkpoints ORDER BY id")
        return [CheckpointRow(int(i), int(s), bytes(n), t) for i, s, n, t in rows]

    def head_rows(self) -> list[tuple[int, int]]:
        """Every row of the head table as (id, size): `verify` expects exactly (1, size)."""
        return [(int(i), int(s)) for i, s in self._raw("SELECT id, size FROM mlprov_head")]

    # -- writes (only reachable through SqlStore.writer) --------------------------------
    def insert(self, rows: Sequence[EventRow], edges: Sequence[tuple[int, int]]) -> None:
        cur = self._conn.cursor()
        if rows:
            try:
                cur.executemany(
                    self._sql(f"INSERT INTO mlprov_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                    list(rows),
                )
            except _integrity_errors(self._dialect) as exc:  # the unique digest index said no
                raise DuplicateError("an event of this batch is already recorded") from exc
        if edges:
            cur.executemany(
                self._sql("INSERT INTO mlprov_edges (child, parent) VALUES (?, ?)"), list(edges)
            )

    def put_tiles(self, tiles: Sequence[tuple[int, int, bytes]]) -> None:
        if tiles:
            self._conn.cursor().executemany(
                self._sql(
                    "INSERT INTO mlprov_tiles (level, idx, hashes) VALUES (?, ?, ?) "
                    "ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes"
                ),
                list(tiles),
            )

    def set_size(self, size: int) -> None:
        self._raw("UPDATE mlprov_head SET size = ? WHERE id = 1", (size,))
        self._locked_size = size

    def add_checkpoint(self, size: int, note: bytes, created_at: str) -> None:
        # Numbered 1, 2, 3... here, under the write lock, not by a sequence (which skips
        # numbers on PostgreSQL): `verify` checks each row's number against its place.
        ((number,),) = self._raw("SELECT COUNT(*) FROM mlprov_checkpoints")
        self._raw(
            "INSERT INTO mlprov_checkpoints (id, size, note, created_at) VALUES (?, ?, ?, ?)",
            (int(number) + 1, size, note, created_at),
        )


def _psycopg() -> Any:
    """The PostgreSQL driver, or the error naming the extra that installs it."""
    try:
        import psycopg
    except ImportError as exc:
        raise MissingExtraError("psycopg", "postgres") from exc
    return psycopg


def _integrity_errors(dialect: str) -> tuple[type[Exception], ...]:
    if dialect == "sqlite":
        return (sqlite3.IntegrityError,)
    return (_psycopg().IntegrityError,)


def _driver_errors(dialect: str) -> tuple[type[Exception], ...]:
    if dialect == "sqlite":
        return (sqlite3.Error,)
    return (_psycopg().Error, sqlite3.Error)


def _check_sqlite_file(path: Path) -> None:
    if not path.exists():
        raise StoreError(
            f"no ledger database at {path}", "run `mlprov init` to create one, or fix MLPROV_STORE"
        )
    if not path.is_file():
        raise StoreError(f"{path} is not a file", "point MLPROV_STORE at a ledger.db file")
    # Never open the file from Python: closing any descriptor of it drops every POSIX lock
    # this process holds on it, including those of its open connections, and another
    # process may then check the WAL away under them (sqlite.org/howtocorrupt.html, 2.2).
    # SQLite itself says when a file is not a database.
    if path.stat().st_size == 0:
        raise StoreError(
            f"{path} is not an mlprov ledger: it is empty, not a SQLite database",
            "point MLPROV_STORE at the right file, or restore it from a backup",
        )
    # Look through a read-only connection first: opening a foreign file for writing would
    # switch it to WAL mode, and a store must never change what it does not own.
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
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise StoreError(
                f"{path} is not an mlprov ledger: it is not a SQLite database",
                "point MLPROV_STORE at the right file, or restore it from a backup",
            ) from exc
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


class _Target:
    """What a store URL names: the backend, how to connect, and how to show it."""

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep:
            raise StoreError(f"cannot parse store URL {url!r}", _URL_FORMS)
        self.url = url  # as given, with its password: for this machine's own workers
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            self.dialect = "postgresql"
            self.conninfo = "postgresql://" + rest
            self.path: Path | None = None
            self.synchronous = ""
            parts = urlsplit(self.conninfo)
            shown = parts.netloc
            if parts.password is not None:
                shown = shown.replace(f":{parts.password}@", ":***@", 1)
            self.shown = urlunsplit(parts._replace(netloc=shown))
            return
        if scheme != "sqlite":
            raise StoreError(f"unsupported store {scheme!r}", _URL_FORMS)
        self.dialect = "sqlite"
        self.conninfo = ""
        database, _, query = rest.removeprefix("/").partition("?")
        if not database or database == ":memory:":
            raise StoreError("a SQLite store needs a file", _URL_FORMS)
        self.path = Path(database)
        options = dict(parse_qsl(query, keep_blank_values=True))
        self.synchronous = options.pop("synchronous", "NORMAL").upper()
        if self.synchronous not in _SYNC_LEVELS:
            raise StoreError(
                f"unknown SQLite synchronous level {self.synchronous!r}", "use NORMAL or FULL"
            )
        if options:
            raise StoreError(
                f"unknown SQLite store option {next(iter(options))!r}",
                "the one option of a SQLite store URL is ?synchronous=NORMAL|FULL",
            )
        self.shown = url

    def connect(self) -> Any:
        """A new connection that runs each statement as it comes (transactions are ours)."""
        if self.path is not None:
            con = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={self.synchronous}")
            con.execute("PRAGMA busy_timeout=60000")
            con.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            return con
        return _psycopg().connect(self.conninfo, autocommit=True)


class SqlStore:
    """A ledger store over SQL: `open` an existing store, `create` a new one."""

    def __init__(self, target: _Target, keep: int = IDLE) -> None:
        self._target = target
        self._dialect = target.dialect
        self._errors = _driver_errors(target.dialect)
        self._pool = Pool(target, keep)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, keep: int = IDLE) -> SqlStore:
        """Open an existing ledger store; refuse anything that is not one. Up to `keep`
        connections stay open between uses (a server keeps one for each of its threads)."""
        target = _Target(url)
        if target.path is not None:
            _check_sqlite_file(target.path)
        store = cls(target, keep)
        store._check_format()
        return store

    @classmethod
    def create(cls, url: str, meta: dict[str, str]) -> SqlStore:
        """Create the tables of a new, empty ledger and write its meta rows."""
        target = _Target(url)
        path = target.path
        if path is not None:
            if path.exists() and path.stat().st_size > 0:
                raise ConflictError(
                    f"{path} already exists", "open it, or remove it to start a new ledger"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(target)
        with store._transaction("BEGIN IMMEDIATE" if path else "BEGIN") as session:
            if store._has_tables(session):
                raise ConflictError(
                    f"{store.url} already holds an mlprov ledger", "open it instead of creating it"
                )
            for statement in schema.ddl(store.dialect):
                session._raw(statement)
            values = {
                "format": schema.FORMAT,
                "schema_version": str(schema.SCHEMA_VERSION),
                **meta,
            }
            for key, value in values.items():
                session._raw("INSERT INTO mlprov_meta (key, value) VALUES (?, ?)", (key, value))
            session._raw("INSERT INTO mlprov_head (id, size) VALUES (1, 0)")
        return store

    def _has_tables(self, session: _Session) -> bool:
        if self._dialect == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
            return bool(session._raw(sql, ("mlprov_meta",)))
        ((found,),) = session._raw("SELECT to_regclass(CAST(? AS TEXT))", ("mlprov_meta",))
        return found is not None

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
        """Where the store is, with any password masked."""
        return self._target.shown

    @property
    def connect_url(self) -> str:
        """The URL with its password, for this machine's own worker processes; never shown."""
        return self._target.url

    @property
    def dialect(self) -> str:
        return self._dialect

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            hint = "check that the store is reachable and is an mlprov ledger"
            if re.search(r"malformed|not a database|corrupt", detail, re.I):
                hint = "the database file is damaged: restore it from a backup"
            raise StoreError(f"the store {self.url} failed: {detail}", hint) from exc

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[_Session]:
        if begin == "BEGIN IMMEDIATE":  # a SQLite writer: this process's own take turns
            with self._pool.writing(), self._connected(begin) as session:
                yield session
        else:
            with self._connected(begin) as session:
                yield session

    @contextmanager
    def _connected(self, begin: str) -> Iterator[_Session]:
        with self._guard():
            failure: BaseException | None = None
            with self._pool.connection() as conn:
                conn.execute(begin)
                try:
                    yield _Session(conn, self._dialect, None)
                except BaseException as exc:
                    # Rolled back, the connection is as good as new and goes back to the
                    # pool: a reader left early (a generator closed after its first row)
                    # must not cost the next caller a new connection. One that cannot
                    # roll back is closed by the pool.
                    failure, clean = exc, False
                    with suppress(Exception):
                        conn.execute("ROLLBACK")
                        clean = True
                    if not clean:
                        raise
                else:
                    conn.execute("COMMIT")
            if failure is not None:
                raise failure

    @contextmanager
    def reader(self) -> Iterator[_Session]:
        sqlite = self._dialect == "sqlite"
        with self._transaction("BEGIN" if sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ") as s:
            yield s

    @contextmanager
    def writer(self) -> Iterator[_Session]:
        sqlite = self._dialect == "sqlite"
        with self._transaction("BEGIN IMMEDIATE" if sqlite else "BEGIN") as session:
            lock = "" if sqlite else " FOR UPDATE"
            ((size,),) = session._raw(f"SELECT size FROM mlprov_head WHERE id = 1{lock}")
            session._locked_size = int(size)
            yield session

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        """One plain writing transaction, for tables outside the log (the server's access
        list): it takes no log lock and cannot touch recorded history."""
        with self._transaction("BEGIN IMMEDIATE" if self._dialect == "sqlite" else "BEGIN") as s:
            yield s

    def close(self) -> None:
        self._pool.close()
