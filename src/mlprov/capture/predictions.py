"""Logging inference events: one `prediction` event per call, written in batches.

`PredictionLogger.log` digests its arguments on the calling thread, takes the next index
of its session and queues the call; one background thread turns queued calls into events
(parent: the build) and writes them with `LedgerCore.append_many`, a batch at a time. So a call
costs the caller a few microseconds of hashing and a short lock, never a database write.

Guarantees and limits:

* **Nothing is dropped.** When `max_pending` calls are waiting to be written, `log` blocks
  until the writer has made room (backpressure) rather than discarding anything.
* **Write failures are kept and retried**, the batch unchanged, with backoff (50 ms
  doubling to 5 s), and reported as StoreError: by the first `log` after the writer starts
  failing (that call's prediction is not logged; earlier ones stay queued, later calls are
  accepted again), by `flush` when the failure is new to the caller or another attempt
  fails while it waits, and by `close` if predictions are still unwritten at its timeout.
  A failure that recovered before any such call is not raised; `stats` keeps it.
* **Never twice.** A batch is atomic (all or none). If an attempt was committed but its
  reply lost, the retry meets DuplicateError; then only the batch's missing events are
  written, which is none.
* **A clean shutdown loses nothing**: `close()` (or leaving the `with` block) writes
  everything logged. An `atexit` hook closes loggers still open at interpreter exit, but
  it is a safety net, not a substitute for `close()`: it does not run on a kill, a crash or
  `os._exit`. An unclean stop loses exactly the calls not yet written (`stats.pending`):
  while the writer keeps up, about the last `flush_interval`; never more than `max_pending`;
  nothing logged before a `flush()` that returned True.

The writer opens its own ledger on the same store (`LedgerCore.another()`; for a served
ledger, another client of the server), so none of the caller's `LedgerCore` state and no
connection is shared between threads.

Latency: a call costs its hashing plus a lock (about 5 µs; `bench/predictions.py`). The
writer's Python work (about 30 µs an event) holds the GIL in stretches, though it hands it
over every few events; a caller thread that needs the GIL during such a stretch waits up
to `sys.getswitchinterval()` (5 ms by default) before or between its calls, not inside
`log`. An application that minds can lower that process-wide setting; a library does not.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from mlprov.digest import Digest
from mlprov.errors import DuplicateError, InputError, MlprovError, StoreError
from mlprov.identity import default_actor
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Event, utc_now
from mlprov.ledger.payloads import EventType
from mlprov.records.canonical import record_digest

__all__ = ["Loggable", "PredictionLogger", "PredictionStats", "content_digest"]

Loggable: TypeAlias = bytes | bytearray | memoryview | str | Mapping[str, Any]
_Call: TypeAlias = tuple[int, Digest, Digest, tuple[Digest, ...], str]
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
_ATEXIT_TIMEOUT = 10.0
# The writer's Python work holds the GIL; a short sleep every few events hands it to a
# caller thread waiting for it, which would otherwise wait out the switch interval (5 ms).
_YIELD_EVERY = 32
_YIELD_FOR = 50e-6
_BUG_HINT = "this is a bug in mlprov: please report it; unwritten predictions are lost"
_STORE_HINT = "the predictions are kept and retried; check that the store is reachable"


def content_digest(value: Loggable, what: str = "value") -> Digest:
    """The digest a prediction records for `value`.

    A `Digest` is taken as already computed; other text is hashed as UTF-8; bytes as
    they are; a mapping by its record digest (`mlprov-record/1`), so a logged input
    matches the same row fingerprinted elsewhere.
    """
    if isinstance(value, Digest):
        return value
    if isinstance(value, str):
        try:
            return Digest.of_bytes(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InputError(
                f"the {what} of a prediction is not valid Unicode text", "pass it as bytes"
            ) from None
    if isinstance(value, bytes):
        return Digest.of_bytes(value)
    if isinstance(value, bytearray | memoryview):
        return Digest.of_bytes(bytes(value))
    if isinstance(value, Mapping):
        return Digest.from_raw(record_digest(value))
    raise InputError(
        f"cannot digest the {what} of a prediction: it is a {type(value).__name__}",
        "pass bytes, text, a mapping (a record) or a Digest",
    )


@dataclass(frozen=True, slots=True)
class PredictionStats:
    """A snapshot of a logger: calls logged, events written, and the last failure."""

    logged: int
    written: int
    pending: int
    batches: int
    failures: int
    last_error: str | None


class PredictionLogger:
    """A batched, thread-safe logger of prediction events for one build.

    Use it as a context manager, or call `close()`. Any number of threads may call `log`;
    each call gets the next `index` of this logger's random `session`, without gaps.
    """

    def __init__(
        self,
        ledger: LedgerCore,
        build: Digest | str,
        *,
        batch_size: int = 2000,
        flush_interval: float = 0.2,
        max_pending: int = 200_000,
        actor: str | None = None,
    ) -> None:
        if batch_size < 1 or max_pending < 1 or not flush_interval > 0:
            raise InputError(
                "batch_size and max_pending must be at least 1, flush_interval above 0",
                "the defaults (2000, 200000, 0.2 s) suit 10,000 calls a second",
            )
        entry = ledger.get(build)  # NotFoundError for an unknown build
        if entry.event.type is not EventType.BUILD:
            raise InputError(
                f"{entry.digest} is a {entry.event.type.value} event, not a build",
                "log predictions against the digest of a build event",
            )
        self.build = entry.digest
        self.session = secrets.token_hex(16)
        self.actor = actor or default_actor()
        self._batch_size, self._max_pending = batch_size, max_pending
        self._interval = flush_interval
        self._event(0, self.build, self.build, (), utc_now())  # refuse a bad actor now

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here
        self._room = threading.Condition(self._lock)  # log() waits for room, flush() for writes
        self._queue: list[_Call] = []
        self._logged = self._taken = self._written = self._batches = self._failures = 0
        self._flush_to = 0  # write promptly until this many calls are written
        self._closed = self._stopping = self._abandon = self._unreported = False
        self._error: StoreError | None = None  # the writer's current failure, if failing
        self._fatal: StoreError | None = None  # the writer died: nothing more is written
        self._last_error: str | None = None

        started = threading.Event()
        failed: list[MlprovError] = []
        self._thread = threading.Thread(
            target=self._run,
            args=(ledger.another, started, failed),
            name=f"mlprov-predictions-{self.session[:8]}",
            daemon=True,  # interpreter exit must not wait on it: the atexit hook closes it
        )
        self._thread.start()
        started.wait()
        if failed:
            raise failed[0]
        _LIVE.add(self)

    # -- the caller's side ----------------------------------------------------------------
    def log(self, input: Loggable, output: Loggable, *, retrieved: Iterable[Loggable] = ()) -> None:
        """Record one inference: its input, its output and, for RAG, the retrieved chunks.

        Returns once the call is queued. Blocks only while `max_pending` calls wait to be
        written. Raises InputError after `close()`, and StoreError once when the writer is
        failing (this call is then not logged).
        """
        if isinstance(retrieved, str | bytes | bytearray | memoryview | Mapping):
            raise InputError(
                "retrieved is a sequence of chunks, not one chunk", "pass a list or tuple"
            )
        call_in = content_digest(input, "input")
        call_out = content_digest(output, "output")
        chunks = tuple(content_digest(c, "retrieved chunk") for c in retrieved)
        with self._lock:
            self._check_open()
            while self._logged - self._written >= self._max_pending:
                self._room.wait()
                self._check_open()
            # stamped under the lock, so recorded_at never runs backwards along the index
            self._queue.append((self._logged, call_in, call_out, chunks, utc_now()))
            self._logged += 1
            waiting = len(self._queue)
            if waiting == 1 or waiting == self._batch_size:  # start the interval, or write now
                self._work.notify()

    def track(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Decorate a one-input model call: each call's input and result are logged.

        ::

            @logger.track
            def answer(question: str) -> str: ...
        """

        @functools.wraps(fn)
        def call(input: Any) -> Any:
            result = fn(input)
            self.log(input, result)
            return result

        return call

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call logged so far is written to the store.

        Returns False if `timeout` seconds passed first. Raises StoreError while the
        writer is failing (the calls stay queued and are retried).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target, failures = self._logged, self._failures
            self._flush_to = max(self._flush_to, target)
            self._work.notify()
            while self._written < target:
                if self._fatal is not None:
                    raise StoreError(self._fatal.message, self._fatal.hint)
                # a failure not yet reported, or one met while waiting: never a stale one,
                # so calling flush again waits for the writer's next attempt
                if self._error is not None and (self._unreported or self._failures > failures):
                    self._unreported = False
                    raise self._pending_error(self._error)
                if self._abandon:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._room.wait(left)
        return True

    def close(self, timeout: float | None = 60.0) -> None:
        """Write everything logged, then stop the writer. Later calls do nothing.

        If the store keeps failing for `timeout` seconds, the writer is stopped and
        StoreError names how many predictions were not written.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = self._stopping = True
            self._work.notify_all()
            self._room.notify_all()  # callers blocked on a full queue raise, not hang
        self._thread.join(timeout)
        if self._thread.is_alive():
            with self._lock:
                self._abandon = True
                self._work.notify_all()
            self._thread.join()
        _LIVE.discard(self)
        with self._lock:
            lost, error = self._logged - self._written, self._last_error
        if lost:
            raise StoreError(
                f"{lost} predictions of session {self.session} were not written "
                f"(last failure: {error})",
                "the store was unreachable until close() timed out; they are lost",
            )

    @property
    def stats(self) -> PredictionStats:
        with self._lock:
            return PredictionStats(
                self._logged,
                self._written,
                self._logged - self._written,
                self._batches,
                self._failures,
                self._last_error,
            )

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:  # with the lock held
        if self._closed:
            raise InputError("this prediction logger is closed", "open a new PredictionLogger")
        if self._fatal is not None:
            raise StoreError(self._fatal.message, self._fatal.hint)
        if self._unreported and self._error is not None:
            self._unreported = False
            raise self._pending_error(self._error)

    def _pending_error(self, error: StoreError) -> StoreError:
        pending = self._logged - self._written
        return StoreError(
            f"writing predictions failed ({pending} pending): {error.message}", _STORE_HINT
        )

    # -- the writer's side ----------------------------------------------------------------
    def _run(
        self,
        another: Callable[[], LedgerCore],
        started: threading.Event,
        failed: list[MlprovError],
    ) -> None:
        try:
            ledger = another()
        except MlprovError as exc:
            failed.append(exc)
            return
        except Exception as exc:  # noqa: BLE001 -- reported by the constructor, not lost here
            failed.append(StoreError(f"cannot open the store for writing: {exc!r}", _BUG_HINT))
            return
        finally:
            started.set()
        try:
            while (batch := self._next_batch()) is not None:
                events = self._events(batch)  # built once, retried as is
                if not self._write(ledger, events):
                    return
        except Exception as exc:  # noqa: BLE001 -- a dead writer must be reported, not hang flush()
            with self._lock:
                self._fatal = StoreError(f"the prediction writer stopped: {exc!r}", _BUG_HINT)
                self._last_error = self._fatal.message
                self._room.notify_all()
        finally:
            ledger.close()

    def _next_batch(self) -> list[_Call] | None:
        """Wait for a full batch, a flush, a close, or `flush_interval`; None when done."""
        due: float | None = None  # when the oldest waiting call must be written
        with self._lock:
            while True:
                if self._abandon or (self._stopping and not self._queue):
                    return None
                urgent = self._stopping or self._taken < self._flush_to
                if self._queue and (urgent or len(self._queue) >= self._batch_size):
                    break
                now = time.monotonic()
                if self._queue and due is None:
                    due = now + self._interval
                if due is not None and now >= due:
                    break
                self._work.wait(None if due is None else due - now)
            take = min(len(self._queue), self._batch_size)
            if take == len(self._queue):
                batch, self._queue = self._queue, []
            else:
                batch = self._queue[:take]
                del self._queue[:take]
            self._taken += take
            return batch

    def _write(self, ledger: LedgerCore, events: list[Event]) -> bool:
        """Append the batch, retrying with backoff; False if close() gave up on it."""
        delay = _FIRST_BACKOFF
        while True:
            try:
                _append_once(ledger, events)
            except Exception as exc:  # noqa: BLE001 -- the writer must outlive any failure to report it
                error = exc if isinstance(exc, StoreError) else StoreError(f"{exc}", _STORE_HINT)
                with self._lock:
                    if self._error is None:  # log() reports each run of failures once
                        self._unreported = True
                    self._error = error
                    self._last_error, self._failures = error.message, self._failures + 1
                    self._room.notify_all()  # flush() raises rather than waits
                    if self._work.wait_for(lambda: self._abandon, delay):
                        return False
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            with self._lock:
                self._written += len(events)
                self._batches += 1
                self._error, self._unreported = None, False
                self._room.notify_all()
            return True

    def _events(self, batch: list[_Call]) -> list[Event]:
        """The batch's events, encoded now (append_many reuses the bytes)."""
        events: list[Event] = []
        for start in range(0, len(batch), _YIELD_EVERY):
            for call in batch[start : start + _YIELD_EVERY]:
                ev = self._event(*call)
                ev.encode()
                events.append(ev)
            time.sleep(_YIELD_FOR)
        return events

    def _event(
        self, index: int, given: Digest, produced: Digest, chunks: tuple[Digest, ...], at: str
    ) -> Event:
        payload = {
            "build": self.build,
            "input_digest": given,
            "output_digest": produced,
            "retrieved": chunks,
            "session": self.session,
            "index": index,
        }
        return Event.create(
            EventType.PREDICTION, payload, actor=self.actor, parents=(self.build,), recorded_at=at
        )


def _append_once(ledger: LedgerCore, events: list[Event]) -> None:
    """Append `events`, leaving out any already recorded.

    A batch is atomic, so a DuplicateError on a retry means an earlier attempt committed
    before its reply was lost; writing only the missing events keeps each event once.
    """
    try:
        ledger.append_many(events)
    except DuplicateError:
        found = ledger.recorded(ev.digest for ev in events)
        missing = [ev for ev in events if ev.digest not in found]
        if missing:
            ledger.append_many(missing)


# Loggers still open at interpreter exit; weak, so a forgotten logger is not kept alive
# by this set (its running writer thread keeps it alive until it is closed).
_LIVE: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for logger in list(_LIVE):
        # Nobody is left to tell of a failure here: the docs say what an unclean end loses.
        with contextlib.suppress(MlprovError):
            logger.close(timeout=_ATEXIT_TIMEOUT)
