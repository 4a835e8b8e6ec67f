"""Storage: the store interface, the SQL store and where a ledger lives."""

from mlprov.store.interface import CheckpointRow, EventFilter, EventRow, Reader, Store, Writer
from mlprov.store.location import Location, find, for_directory
from mlprov.store.sql import SqlStore

__all__ = [
    "CheckpointRow",
    "EventFilter",
    "EventRow",
    "Location",
    "Reader",
    "SqlStore",
    "Store",
    "Writer",
    "find",
    "for_directory",
]
