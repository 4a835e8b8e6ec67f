"""A process's open connections to one store, and its writers' turn (see `store.sql`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

__all__ = ["IDLE", "Connector", "Pool"]

IDLE = 4  # connections kept open for the next reader or writer of this process
#: Connections a forked child inherited: never used, never closed (closing one would end
#: its parent's session), only kept from the garbage collector.
_INHERITED: list[Any] = []


class Connector(Protocol):
    def connect(self) -> Any: ...


class Pool:
    """This process's open connections to one store, each used by one thread at a time;
    up to `keep` are kept open when idle."""

    def __init__(self, target: Connector, keep: int = IDLE) -> None:
        self._target = target
        self._keep = keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # This process's SQLite writers queue here, each woken as the one before commits,
        # rather than polling the file's lock in SQLite's busy handler (which sleeps up to
        # 100 ms a try and lets a newcomer overtake a writer that has waited for long).
        # Reentrant, so a nested writer still meets SQLite's own lock, as it did.
        self._writers = threading.RLock()

    def _adopt(self) -> None:
        """After a fork (under `_lock`): the parent's connections and its writers' lock
        (perhaps held by a thread that does not exist here) are not this process's."""
        if self._pid != os.getpid():
            _INHERITED.extend(self._idle)
            self._idle, self._pid = [], os.getpid()
            self._writers = threading.RLock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = None
        with self._lock:
            self._adopt()
            while self._idle and conn is None:
                conn = self._idle.pop()
                if getattr(conn, "closed", False):  # a server connection that was lost
                    conn = None
        conn = conn if conn is not None else self._target.connect()
        try:
            yield conn
        except BaseException:
            with suppress(Exception):
                conn.close()
            raise
        with self._lock:
            if len(self._idle) < self._keep and self._pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this process's turn to write (its other threads wait here)."""
        with self._lock:
            self._adopt()
            writers = self._writers
        with writers:
            yield

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                with suppress(Exception):
                    conn.close()
