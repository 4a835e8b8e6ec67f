"""The server's checkpoints: one signer, one checkpoint at a time, each covering everything
recorded before it began (ADR 0015).

A request that records asks the signer to cover what it recorded. Two paces:

- **every 0** (the default): the request waits for a checkpoint that covers it, as every
  recording command does. Requests that record at the same moment wait for the same
  checkpoint, so under load one signature covers many events instead of each request
  signing its own (a Merkle root, an Ed25519 signature and a row, under the write lock).
- **every N seconds**: the request answers as soon as its event is recorded, and a
  checkpoint covering it is signed within N seconds (plus the time to sign one). The
  answer's `seq` says which: the first checkpoint whose size is above it covers it.

Either way a last checkpoint is signed when the server stops, so nothing it recorded is
left uncovered by a clean shutdown. A ledger without a signing key keeps its events
uncovered until one is made, as the commands do. This module needs no web framework.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mlprov.errors import MlprovError, NotFoundError
from mlprov.ledger.checkpoint import SignedCheckpoint

__all__ = ["Checkpointer"]

_RETRY = 1.0  # seconds before signing again after a failure

#: Gives a signed checkpoint of the whole log as it is now, or NotFoundError without a key.
Sign = Callable[[], SignedCheckpoint]


class Checkpointer:
    """Signs checkpoints for many threads that record: one thread signs, the others wait
    for (or are promised) the checkpoint that covers them."""

    def __init__(self, sign: Sign, every: float = 0.0) -> None:
        self._sign = sign
        self._every = every
        self._cond = threading.Condition()
        self._wanted = 0  # the log size some recorded event needs covered
        self._signed = 0  # the size the newest checkpoint signed here covers
        self._started = 0  # signing rounds begun
        self._finished = 0  # signing rounds ended, and how the last one failed, if it did
        self._failure: BaseException | None = None
        self._last = float("-inf")  # when the last round began (time.monotonic)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def every(self) -> float:
        """Seconds between checkpoints at most; 0 signs one before each recording answer."""
        return self._every

    def pace(self, every: float) -> None:
        """Set the pace before the first event is recorded (`mlprov serve --checkpoint-every`)."""
        if every < 0:
            raise ValueError("a checkpoint pace is 0 or more seconds")
        with self._cond:
            self._every = every

    def cover(self, size: int) -> None:
        """The log's first `size` events are recorded: see a checkpoint cover them (at once,
        at pace 0, when this returns; else within the pace). At pace 0 a failure to sign is
        raised here, as the command would raise it."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the checkpoint signer is closed")
            self._wanted = max(self._wanted, size)
            self._start()
            self._cond.notify_all()
            if self._every:
                return
            ticket = self._started + 1  # the first round to begin from now covers `size`
            while self._signed < size and self._finished < ticket:
                self._cond.wait()
            failure = self._failure
            if self._signed < size and failure is not None:
                raise _again(failure)

    def close(self) -> None:
        """Sign a last checkpoint covering everything recorded here, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="mlprov-checkpoints", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._wanted <= self._signed:
                        self._cond.wait()
                        continue
                    # Keep the pace; after a failure, wait a little before trying again.
                    gap = self._every if self._failure is None else max(self._every, _RETRY)
                    rest = self._last + gap - time.monotonic()
                    if rest <= 0:
                        break
                    self._cond.wait(rest)
                if self._wanted <= self._signed:  # closed, with nothing left to cover
                    return
                last = self._closed  # a close signs at once, and once
                self._started += 1
                self._last = time.monotonic()
            signed, failure = self._round()
            with self._cond:
                self._finished += 1
                self._failure = failure
                self._signed = max(self._signed, signed)
                self._cond.notify_all()
            if last:
                return

    def _round(self) -> tuple[int, BaseException | None]:
        """One checkpoint of the whole log: the size it covers, or why there is none."""
        try:
            return self._sign().checkpoint.size, None
        except NotFoundError:  # no signing key: nothing to sign with, as for the commands
            with self._cond:
                return self._wanted, None
        except Exception as exc:  # noqa: BLE001 - handed to the requests that wait on it
            return 0, exc


def _again(failure: BaseException) -> BaseException:
    """The signer's failure, raised afresh in a waiting request's thread."""
    if isinstance(failure, MlprovError):
        again = type(failure)(failure.message, failure.hint, cli_hint=failure.cli_hint)
        again.__cause__ = failure
        return again
    return RuntimeError(f"the checkpoint could not be signed: {failure}")
