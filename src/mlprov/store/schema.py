"""The store's schema, in one place, for SQLite and PostgreSQL alike.

The event bodies are the truth: each is the exact canonical bytes whose SHA-256 is the
event's digest. Every other column and table (type, name, time, edges, tiles) is an index
derived from those bodies, which `verify` recomputes and compares.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

#: Bumped when the tables change; a store written by a newer mlprov is refused.
SCHEMA_VERSION = 1

#: The value of the `format` meta key: how a store says it is an mlprov ledger.
FORMAT = "mlprov-ledger"

metadata = MetaData()

meta = Table(
    "mlprov_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# One row (id = 1): the log size. Writers lock it, so appends are serialised and the log
# can never fork, whatever the number of processes.
head = Table(
    "mlprov_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

# On SQLite the log position must be declared INTEGER to be the rowid itself: the table
# is then stored in log order, and scans by position read it front to back.
Position = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "mlprov_events",
    metadata,
    Column("seq", Position, primary_key=True, autoincrement=False),
    Column("digest", LargeBinary(32), nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("name", Text),
    Column("recorded_at", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)
Index("mlprov_events_type", events.c.type, events.c.seq)
Index("mlprov_events_name", events.c.name, events.c.seq)

# Parent links by log position; `children()` reads them through the parent index.
edges = Table(
    "mlprov_edges",
    metadata,
    Column("child", BigInteger, nullable=False),
    Column("parent", BigInteger, nullable=False),
    PrimaryKeyConstraint("child", "parent"),
)
Index("mlprov_edges_parent", edges.c.parent, edges.c.child)

# Merkle tiles: level L, index N holds the hashes of the tree nodes of height 8*L with
# indices 256*N ... 256*N + width - 1, concatenated. Only the right-edge tile of each
# level is ever partial; it is rewritten as it grows.
tiles = Table(
    "mlprov_tiles",
    metadata,
    Column("level", Integer, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hashes", LargeBinary, nullable=False),
    PrimaryKeyConstraint("level", "idx"),
)

checkpoints = Table(
    "mlprov_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("note", LargeBinary, nullable=False),
    Column("created_at", Text, nullable=False),
)

# -- the server's access list -------------------------------------------------------------
# Kept apart from `metadata` on purpose: these rows are who may call `mlprov serve`, not
# recorded history, so they are outside the ledger's integrity claim (`verify` neither
# reads nor needs them; ADR 0015). They hold no secret: a token is 256 random bits and
# only its SHA-256 is stored. Created when the first token is made.
access = MetaData()

tokens = Table(
    "mlprov_tokens",
    access,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text),
    Column("revoked_at", Text),
)
