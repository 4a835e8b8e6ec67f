"""The prediction logger on real stores: SQLite and (marked `postgres`) PostgreSQL.

Failures are real too: a held write lock (a slow store), and a store that refuses writes
(an immutable SQLite WAL file, or a PostgreSQL lock met with a short lock_timeout).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from mlprov.capture.predictions import PredictionLogger, _append_once, content_digest
from mlprov.digest import Digest
from mlprov.errors import InputError, NotFoundError, StoreError
from mlprov.facade import Ledger
from mlprov.ledger import Entry, Event
from mlprov.records.canonical import record_digest
from mlprov.store import SqlStore

ROOT = Path(__file__).resolve().parents[1]


def add_build(ledger: Ledger, name: str = "support-classifier-v7") -> Digest:
    return ledger.append(Event.create("build", {"name": name}, actor="trainer@example.com")).digest


def predictions(ledger: Ledger) -> list[Entry]:
    return list(ledger.entries(type="prediction"))


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


# -- a store that is slow (lock held) or refuses writes, on each backend ------------------
@contextmanager
def held_write_lock(ledger: Ledger) -> Iterator[None]:
    """Another connection holds the write lock: the writer waits (a slow store)."""
    url = ledger.store.connect_url
    if ledger.store.dialect == "sqlite":
        con = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()
    else:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            conn.exec_driver_sql("LOCK TABLE mlprov_head IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
        engine.dispose()


def refusing_store(ledger: Ledger) -> AbstractContextManager[None]:
    """While open, every write attempt fails fast (the writer then retries)."""
    if ledger.store.dialect != "sqlite":
        return held_write_lock(ledger)  # the ledger's URL carries a short lock_timeout
    return _immutable_wal(ledger)


@contextmanager
def _immutable_wal(ledger: Ledger) -> Iterator[None]:
    wal = Path(sa.make_url(ledger.store.connect_url).database or "").with_suffix(".db-wal")
    chattr = shutil.which("chattr")
    done = chattr and subprocess.run([chattr, "+i", str(wal)], capture_output=True).returncode
    if done != 0:
        pytest.skip("needs chattr +i (root on a filesystem with file attributes)")
    assert chattr is not None
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(wal)], check=True)


@pytest.fixture
def strict_ledger(store_url: str, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger whose PostgreSQL sessions give up on a lock after 200 ms."""
    if store_url.startswith("postgresql"):
        store_url += quote(" -c lock_timeout=200")
    with Ledger.init(tmp_path, store=store_url) as led:
        yield led


# -- the contract -------------------------------------------------------------------------
def test_many_threads_log_exactly_n_predictions(ledger: Ledger) -> None:
    build = add_build(ledger)
    threads, each = 8, 400
    with PredictionLogger(
        ledger, build, batch_size=300, flush_interval=0.05, actor="svc"
    ) as logger:

        def work(k: int) -> None:
            for i in range(each):
                logger.log(f"question {k}/{i}", b"answer", retrieved=[b"chunk-a", b"chunk-b"])

        pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    total = threads * each
    assert logger.stats.written == total and logger.stats.pending == 0
    found = predictions(ledger)
    assert len(found) == total
    assert sorted(e.event.payload["index"] for e in found) == list(range(total))
    assert {e.event.payload["session"] for e in found} == {logger.session}
    assert all(e.event.parents == (build,) for e in found)
    assert all(e.event.payload["build"] == build and e.event.actor == "svc" for e in found)
    assert [e.event.payload["index"] for e in found] == list(range(total))  # log order
    assert ledger.verify().ok


def test_flush_makes_logged_predictions_durable(ledger: Ledger) -> None:
    build = add_build(ledger)
    with PredictionLogger(ledger, build, flush_interval=3600, batch_size=10_000) as logger:
        for i in range(25):
            logger.log(f"in {i}", f"out {i}")
        time.sleep(0.2)
        assert predictions(ledger) == []  # neither a full batch nor the interval yet
        assert logger.flush() is True
        with Ledger(SqlStore.open(ledger.store.connect_url)) as other:  # another connection
            assert len(predictions(other)) == 25
        assert logger.stats.batches == 1


def test_identical_inferences_are_distinct_events(sqlite_ledger: Ledger) -> None:
    build = add_build(sqlite_ledger)
    with PredictionLogger(sqlite_ledger, build) as logger:
        logger.log(b"same", b"same")
        logger.log(b"same", b"same")
    a, b = predictions(sqlite_ledger)
    assert a.digest != b.digest and (a.event.payload["index"], b.event.payload["index"]) == (0, 1)


def test_what_is_digested(sqlite_ledger: Ledger) -> None:
    build = add_build(sqlite_ledger)
    known = Digest.of_bytes(b"computed elsewhere")
    row = {"ticket": "T-1", "text": "my printer is on fire"}
    with PredictionLogger(sqlite_ledger, build) as logger:
        logger.log(row, "réponse", retrieved=[b"c1", known, {"id": 7}, b"c1"])
        logger.log(known, bytearray(b"x"))
    first, second = (e.event.payload for e in predictions(sqlite_ledger))
    assert first["input_digest"] == Digest.from_raw(record_digest(row))
    assert first["output_digest"] == Digest.of_bytes("réponse".encode())
    assert list(first["retrieved"]) == [
        Digest.of_bytes(b"c1"),
        known,
        Digest.from_raw(record_digest({"id": 7})),
        Digest.of_bytes(b"c1"),
    ]  # rank order and repeats kept
    assert second["input_digest"] == known and second["retrieved"] == ()
    assert content_digest(memoryview(b"x")) == Digest.of_bytes(b"x")


def test_bad_arguments_are_refused_in_the_caller(sqlite_ledger: Ledger) -> None:
    build = add_build(sqlite_ledger)
    with PredictionLogger(sqlite_ledger, build) as logger:
        with pytest.raises(InputError, match="it is a int"):
            logger.log(42, b"out")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="not one chunk"):
            logger.log(b"in", b"out", retrieved="one chunk")
        with pytest.raises(InputError, match="not valid Unicode"):
            logger.log("\ud800", b"out")
    assert logger.stats.logged == 0 and predictions(sqlite_ledger) == []


def test_the_build_must_exist_and_be_a_build(sqlite_ledger: Ledger) -> None:
    with pytest.raises(NotFoundError, match="no event"):
        PredictionLogger(sqlite_ledger, Digest.of_bytes(b"no such build"))
    source = sqlite_ledger.append(Event.create("source", {"name": "s", "version": "1"}, actor="a"))
    with pytest.raises(InputError, match="is a source event, not a build"):
        PredictionLogger(sqlite_ledger, source.digest)
    with pytest.raises(InputError, match="invalid actor"):
        PredictionLogger(sqlite_ledger, add_build(sqlite_ledger), actor="bad\nactor")
    with pytest.raises(InputError, match="batch_size"):
        PredictionLogger(sqlite_ledger, add_build(sqlite_ledger, "b2"), batch_size=0)


def test_log_after_close_raises_and_close_is_idempotent(sqlite_ledger: Ledger) -> None:
    build = add_build(sqlite_ledger)
    logger = PredictionLogger(sqlite_ledger, build, flush_interval=3600)
    logger.log(b"a", b"b")
    logger.close()
    logger.close()
    with pytest.raises(InputError, match="closed"):
        logger.log(b"c", b"d")
    assert len(predictions(sqlite_ledger)) == 1  # close wrote it, without waiting the hour
    assert not logger._thread.is_alive()


# -- backpressure and failures ------------------------------------------------------------
def test_a_full_queue_blocks_log_until_there_is_room(ledger: Ledger) -> None:
    build = add_build(ledger)
    logger = PredictionLogger(ledger, build, max_pending=5, batch_size=2, flush_interval=0.01)
    done = threading.Event()
    with held_write_lock(ledger):
        for i in range(5):
            logger.log(f"{i}", b"o")

        def sixth() -> None:
            logger.log(b"sixth", b"o")
            done.set()

        t = threading.Thread(target=sixth)
        t.start()
        assert not done.wait(0.5)  # blocked: nothing was dropped to make room
        assert logger.flush(timeout=0.1) is False
    t.join(10)
    assert done.is_set()
    logger.close()
    assert len(predictions(ledger)) == 6 and ledger.verify().ok


def test_a_write_failure_is_retried_then_reported(strict_ledger: Ledger) -> None:
    ledger = strict_ledger
    build = add_build(ledger)
    logger = PredictionLogger(ledger, build, batch_size=10, flush_interval=0.02)
    logger.log(b"before", b"o")
    assert logger.flush(timeout=10)
    with refusing_store(ledger):
        logger.log(b"kept", b"o")
        wait_until(lambda: logger.stats.failures >= 1)
        with pytest.raises(StoreError, match="writing predictions failed") as err:
            logger.log(b"refused", b"o")  # reported once: this call is not logged
        assert err.value.hint and "retried" in err.value.hint
        logger.log(b"accepted", b"o")  # later calls are taken again, and queue
        with pytest.raises(StoreError):
            logger.flush(timeout=10)  # another attempt fails while it waits
        assert logger.stats.pending == 2 and logger.stats.last_error
    assert logger.flush(timeout=30) is True  # the kept batch goes through once possible
    logger.close()
    found = [e.event.payload["index"] for e in predictions(ledger)]
    assert found == [0, 1, 2]  # 'refused' took no index: no gap
    assert logger.stats.failures >= 2 and ledger.verify().ok


def test_close_reports_what_it_could_not_write(strict_ledger: Ledger) -> None:
    ledger = strict_ledger
    build = add_build(ledger)
    logger = PredictionLogger(ledger, build, flush_interval=0.02)
    with refusing_store(ledger):
        logger.log(b"a", b"o")
        logger.log(b"b", b"o")
        with pytest.raises(StoreError, match=r"2 predictions of session .* were not written"):
            logger.close(timeout=0.5)
    assert predictions(ledger) == []
    assert ledger.verify().ok


def test_a_batch_already_committed_is_not_written_twice(sqlite_ledger: Ledger) -> None:
    build = add_build(sqlite_ledger)
    batch = [
        Event.create(
            "prediction",
            {"build": build, "input_digest": Digest.of_bytes(bytes([i])), "output_digest": build},
            actor="svc",
            parents=[build],
        )
        for i in range(3)
    ]
    sqlite_ledger.append_many(batch)  # the attempt whose reply was "lost"
    _append_once(sqlite_ledger, batch)  # the retry: DuplicateError, then nothing to add
    assert sqlite_ledger.size == 4
    more = [*batch, Event.create("build", {"name": "next"}, actor="svc")]
    _append_once(sqlite_ledger, more)  # only the missing event is written
    assert sqlite_ledger.size == 5 and sqlite_ledger.verify().ok


# -- shutdown -----------------------------------------------------------------------------
def _script(tmp_path: Path, body: str) -> int:
    code = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from mlprov.capture.predictions import PredictionLogger
        from mlprov import Event, Ledger
        ledger = Ledger.init(Path({str(tmp_path)!r}))
        build = ledger.append(Event.create("build", {{"name": "m"}}, actor="a")).digest
        logger = PredictionLogger(ledger, build, flush_interval=3600, batch_size=100000)
        """
    ) + textwrap.dedent(body)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 3), run.stderr
    with Ledger.open(cwd=tmp_path) as ledger:
        assert ledger.verify().ok
        return len(predictions(ledger))


def test_the_atexit_hook_writes_what_an_unclosed_logger_holds(tmp_path: Path) -> None:
    body = """
        for i in range(500):
            logger.log(str(i), b"o")
        """  # no close(): the interpreter exits normally
    assert _script(tmp_path, body) == 500


def test_an_unclean_exit_loses_only_what_was_not_flushed(tmp_path: Path) -> None:
    body = """
        for i in range(300):
            logger.log(str(i), b"o")
        assert logger.flush()
        for i in range(200):
            logger.log(str(i), b"late")
        os._exit(3)  # no atexit, no close
        """
    assert _script(tmp_path, body) == 300


def test_ledger_predictions_and_the_track_decorator(sqlite_ledger: Ledger) -> None:
    add_build(sqlite_ledger, "support-classifier-v7")
    with sqlite_ledger.predictions("support-classifier-v7") as logger:

        @logger.track
        def answer(question: str) -> str:
            return question.upper()

        assert answer("why?") == "WHY?"
    [event] = [e.event for e in predictions(sqlite_ledger)]
    assert event.payload["input_digest"] == content_digest("why?")
    assert event.payload["output_digest"] == content_digest("WHY?")
    with pytest.raises(NotFoundError):
        sqlite_ledger.predictions("no-such-build")
