"""The store's schema, in one place, for SQLite and PostgreSQL alike.

The event bodies are the truth: each is the exact canonical bytes whose SHA-256 is the
event's digest. Every other column and table (type, name, time, edges, tiles) is an index
derived from those bodies, which `verify` recomputes and compares.

The tables are plain SQL, written once with two placeholders for what the backends spell
differently: `{blob}` (SQLite BLOB, PostgreSQL BYTEA) and `{position}`, the log position.
On SQLite the position must be declared INTEGER to be the rowid itself: the table is then
stored in log order, and scans by position read it front to back.
"""

from __future__ import annotations

__all__ = ["ACCESS_TABLES", "FORMAT", "SCHEMA_VERSION", "TABLES", "access_ddl", "ddl"]

#: Bumped when the tables change; a store written by a newer mlprov is refused.
SCHEMA_VERSION = 1

#: The value of the `format` meta key: how a store says it is an mlprov ledger.
FORMAT = "mlprov-ledger"

#: Every table, in creation order.
TABLES = (
    "mlprov_meta",
    "mlprov_head",
    "mlprov_events",
    "mlprov_edges",
    "mlprov_tiles",
    "mlprov_checkpoints",
)

_DDL = (
    'CREATE TABLE mlprov_meta ("key" TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"))',
    # One row (id = 1): the log size. Writers lock it, so appends are serialised and the log
    # can never fork, whatever the number of processes.
    "CREATE TABLE mlprov_head (id INTEGER NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (id))",
    "CREATE TABLE mlprov_events (seq {position} NOT NULL, digest {blob} NOT NULL, "
    "type TEXT NOT NULL, name TEXT, recorded_at TEXT NOT NULL, body {blob} NOT NULL, "
    "PRIMARY KEY (seq), UNIQUE (digest))",
    "CREATE INDEX mlprov_events_type ON mlprov_events (type, seq)",
    "CREATE INDEX mlprov_events_name ON mlprov_events (name, seq)",
    # Parent links by log position; `children()` reads them through the parent index.
    "CREATE TABLE mlprov_edges (child BIGINT NOT NULL, parent BIGINT NOT NULL, "
    "PRIMARY KEY (child, parent))",
    "CREATE INDEX mlprov_edges_parent ON mlprov_edges (parent, child)",
    # Merkle tiles: level L, index N holds the hashes of the tree nodes of height 8*L with
    # indices 256*N ... 256*N + width - 1, concatenated. Only the right-edge tile of each
    # level is ever partial; it is rewritten as it grows.
    "CREATE TABLE mlprov_tiles (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
    "hashes {blob} NOT NULL, PRIMARY KEY (level, idx))",
    # Numbered 1, 2, 3... by the writer, under the write lock (never by a sequence).
    "CREATE TABLE mlprov_checkpoints (id INTEGER NOT NULL, size BIGINT NOT NULL, "
    "note {blob} NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (id))",
)


def ddl(dialect: str) -> list[str]:
    """The statements that create an empty store on `dialect` (sqlite or postgresql)."""
    sqlite = dialect == "sqlite"
    words = {"blob": "BLOB" if sqlite else "BYTEA", "position": "INTEGER" if sqlite else "BIGINT"}
    return [statement.format(**words) for statement in _DDL]


# -- the server's access list -------------------------------------------------------------
# Apart from `TABLES` on purpose: these rows are who may call `mlprov serve`, not recorded
# history, so they are outside the ledger's integrity claim (`verify` neither reads nor
# needs them; ADR 0015). They hold no secret: a token is 256 random bits and only its
# SHA-256 is stored. Created when the first token is made.

#: The tables outside the ledger's integrity claim.
ACCESS_TABLES = ("mlprov_tokens",)

_ACCESS_DDL = (
    "CREATE TABLE IF NOT EXISTS mlprov_tokens (name TEXT NOT NULL, role TEXT NOT NULL, "
    "hash {blob} NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT, "
    "PRIMARY KEY (name), UNIQUE (hash))",
)


def access_ddl(dialect: str) -> list[str]:
    """The statements that create the server's access list if it is not there yet."""
    blob = "BLOB" if dialect == "sqlite" else "BYTEA"
    return [statement.format(blob=blob) for statement in _ACCESS_DDL]
