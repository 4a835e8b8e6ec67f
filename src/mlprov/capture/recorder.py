"""The recorder: what a pipeline records, worked out beside the pipeline instead of in it.

A step hands back its data as soon as the data is ready. Following its records (digests,
keys, subjects: :mod:`mlprov.capture.lineage`) is queued on one worker thread, and
recording them (the record set and the changes file, written and checked) on a second,
each in the order the steps ran; the pipeline then appends each step's event, on its own
thread and in the same order, when its files are written. So an event never names a set
or a changes file that is not on disk: a job that fails records its step as failed, the
jobs queued after it are dropped unrecorded, and its error reaches the caller at the next
call that waits (a step that needs the records, the dataset, or the end of the run).

The work is Arrow, numpy and DataFusion kernels, which release the interpreter while they
run: the workers and the pipeline's own pandas or polars steps share the cores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mlprov.capture.arguments import error_text
from mlprov.errors import InputError

__all__ = ["Recorder"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Job(Generic[T]):
    future: Future[T]
    done: Callable[[T], None]
    failed: Callable[[BaseException], None]


class Recorder:
    """Two ordered workers (following, recording) and the results waiting to be taken."""

    def __init__(self) -> None:
        self._follow = ThreadPoolExecutor(1, thread_name_prefix="mlprov-follow")
        self._record = ThreadPoolExecutor(1, thread_name_prefix="mlprov-record")
        self._waiting: deque[_Job[Any]] = deque()
        self._stopped = False
        self.failure: BaseException | None = None  # the error that stopped the workers

    def check(self) -> None:
        """InputError once a failure has stopped the workers: no step is taken after it."""
        if self.failure is not None:
            raise InputError(
                "an earlier step of this run failed, and the steps queued after it were "
                "dropped: " + error_text(self.failure),
                "fix the failing step and run the pipeline again",
            )

    def _guarded(self, work: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            if self._stopped:
                raise CancelledError("an earlier step failed")  # dropped, never handed over
            return work()

        return run

    def follow(self, work: Callable[[], T]) -> Future[T]:
        """Queue `work` (following a step's records) behind the steps before it."""
        self.check()
        return self._follow.submit(self._guarded(work))

    def record(
        self,
        work: Callable[[], T],
        done: Callable[[T], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        """Queue `work` (writing a step's files); `done` or `failed` is called with its
        outcome by :meth:`take`, on the caller's thread, in the order jobs were queued."""
        self.check()
        self._waiting.append(_Job(self._record.submit(self._guarded(work)), done, failed))

    @property
    def pending(self) -> int:
        """Jobs whose outcome has not been taken yet."""
        return len(self._waiting)

    def take(self, wait: bool) -> None:
        """Hand the finished jobs' outcomes over in order (with `wait`, every job's).

        A job that failed, or whose `done` raised, gets `failed`; the jobs after it are
        dropped without being handed over, and the error is raised.
        """
        while self._waiting:
            job = self._waiting[0]
            if not wait and not job.future.done():
                return
            self._waiting.popleft()
            try:
                job.done(job.future.result())
            except BaseException as exc:
                self.failure = exc
                self.abandon()
                job.failed(exc)
                raise

    def abandon(self) -> None:
        """Drop every job not handed over yet; wait for those already running to end, so
        nothing is written once the caller has moved on."""
        self._stopped = True
        jobs, self._waiting = list(self._waiting), deque()
        for job in jobs:
            job.future.cancel()
        self._follow.shutdown(wait=True, cancel_futures=True)
        self._record.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (after :meth:`take` with `wait`, nothing is left to do)."""
        if self._waiting:
            self.abandon()
        self._follow.shutdown(wait=True)
        self._record.shutdown(wait=True)
