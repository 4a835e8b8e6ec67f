"""A served ledger: the core ledger's reading and recording, done through `mlprov serve`
on another machine, so that the facade and the capture code run unchanged (ADR 0019).

What it records is made here, exactly as a local ledger makes it; the files the events
name (record sets, changes files, frozen manifests) are written to a private folder as
usual and sent up, each checked by the server against its name, before the events that
name them, which the server checks again and records atomically under the token's name.
What it reads comes back as the events' exact bytes, each checked against its digest, so
a server cannot hand back an event other than the one asked for.

The server keeps the log: it signs the checkpoints (`checkpoint()` answers its newest),
and the log's proofs and `verify` are asked of it (`GET /api/v1/verify`) or run where the
store is. A ledger served without a subject secret on this machine cannot hash subjects:
set `MLPROV_KEYS` to a folder holding a copy of the ledger's `subject.secret`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlprov.digest import Digest, canonical_json
from mlprov.errors import IntegrityError, NotFoundError
from mlprov.ledger import names
from mlprov.ledger.blobrefs import SET_SUFFIX, by_bytes, named_blobs
from mlprov.ledger.checkpoint import SignedCheckpoint
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, Event, parse_time
from mlprov.ledger.keys import SignerKey, VerifierKey
from mlprov.ledger.scan import CHUNK
from mlprov.records import subjects
from mlprov.store import Location, SqlStore
from mlprov.store.remote import ServedStore, unsupported

if TYPE_CHECKING:
    from mlprov.ledger.names import Found
    from mlprov.ledger.proofs import ConsistencyProof, InclusionProof
    from mlprov.ledger.verify import VerifyReport
    from mlprov.records.subjects import SubjectHasher

__all__ = ["RemoteCore"]

#: The most events one request carries, and the most JSON (the server takes 1 MiB).
_BATCH, _BATCH_BYTES = 2000, 900_000
_PAGE = 1000  # the most events `GET /events` answers
_ON_SERVER = "ask the server (GET /api/v1/verify), or run it where the ledger's store is"


def _event_of(data: dict[str, Any]) -> Entry:
    """An entry from the server's JSON, checked: its bytes must give its digest."""
    fields = ("type", "schema_version", "payload", "parents", "actor", "recorded_at")
    body = canonical_json({k: data.get(k) for k in fields})
    digest = Digest(data["digest"])
    if Digest.of_bytes(body) != digest:
        raise IntegrityError(
            f"the server sent event {digest} with bytes that do not give that digest",
            "the server's answer was altered on the way, or the server is not honest",
        )
    return Entry(int(data["seq"]), digest, Event.decode(body), body)


class RemoteCore(LedgerCore):
    """The core ledger over a server. Users open it as `mlprov.open("https://…",
    token=…)`, which gives the facade over it (:class:`mlprov.facade.RemoteLedger`)."""

    def __init__(self, served: ServedStore, location: Location | None = None) -> None:
        self.served = served
        self.location = location
        try:
            facts = served.call("GET", "/ledger")
            #: The token's name: the actor of everything this ledger records.
            self.actor = str(served.call("GET", "/whoami")["name"])
        except BaseException:
            served.close()
            raise
        self.origin, self.ledger_id = str(facts["origin"]), str(facts["ledger_id"])
        self._blobs = Path(tempfile.mkdtemp(prefix="mlprov-served-"))
        # What was sent, by name, size and time: a set saved again under its root (with
        # keys it lacked, merged by RecordSet.save) is sent again, and the server merges it.
        self._sent: set[tuple[str, int, int]] = set()

    @property
    def store(self) -> SqlStore:  # type: ignore[override]
        unsupported(
            "be read as a store",
            "run this where the ledger's store is, or ask the server's routes",
        )

    def another(self) -> RemoteCore:
        """A second served ledger: another client of the same server, with the same token."""
        return RemoteCore(self.served.another(), self.location)

    def recorded(self, digests: Iterable[Digest]) -> set[Digest]:
        """Those of `digests` the server holds: one request a digest (this is asked only
        when a batch is sent again after its answer was lost)."""
        held: set[Digest] = set()
        for digest in digests:
            try:
                entry = _event_of(self.served.call("GET", f"/events/{digest.hex}"))
            except NotFoundError:
                continue
            if entry.digest == digest:
                held.add(digest)
        return held

    def close(self) -> None:
        self.served.close()
        shutil.rmtree(self._blobs, ignore_errors=True)

    # -- writing ------------------------------------------------------------------------
    def record(
        self,
        type: str,
        payload: Any,
        *,
        parents: Iterable[Digest | str] = (),
        actor: str | None = None,
    ) -> Entry:
        """As `LedgerCore.record`; the actor defaults to the token's name."""
        return super().record(type, payload, parents=parents, actor=actor or self.actor)

    def append_many(self, events: Sequence[Event]) -> list[Entry]:
        """Send the files the events name, then the events: atomically in batches of up to
        2000 events (and 900 kB), so a longer list may be recorded in part."""
        for event in events:
            for name in named_blobs(event):
                path = self._blobs / name
                if not path.is_file():
                    continue  # not written here: the server must hold it already
                stat = path.stat()
                sent = (name, stat.st_size, stat.st_mtime_ns)
                if sent not in self._sent:
                    self.served.put_blob(name, path)
                    self._sent.add(sent)
        entries: list[Entry] = []
        for batch in _batches(events):
            answered = self.served.call("POST", "/events", json=[e.to_json() for e in batch])
            for event, data in zip(batch, answered, strict=True):
                entry = _event_of(data)
                if entry.digest != event.digest:
                    raise IntegrityError(
                        f"the server recorded {entry.digest} for the event {event.digest}",
                        "the server did not record the event as sent; check its ledger",
                    )
                entries.append(entry)
        return entries

    # -- reading ------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.served.call("GET", "/ledger")["size"])

    def resolve(self, ref: str | Digest) -> Digest:
        text = str(ref).strip().lower().removeprefix("sha256:")
        if len(text) == 64:
            return Digest("sha256:" + text)
        return self.get(ref).digest

    def _shown(self, ref: str | Digest) -> dict[str, Any]:
        text = str(ref).strip().lower()
        if not text or "/" in text or "?" in text or "#" in text:
            raise NotFoundError(f"no event {ref} in this ledger", "see `mlprov log`")
        shown: dict[str, Any] = self.served.call("GET", f"/events/{text}")
        return shown

    def get(self, ref: str | Digest) -> Entry:
        entry = _event_of(self._shown(ref))
        asked = str(ref).strip().lower().removeprefix("sha256:")
        if not entry.digest.hex.startswith(asked):
            raise IntegrityError(
                f"the server sent event {entry.digest} when asked for {ref}",
                "the server's answer was altered on the way, or the server is not honest",
            )
        return entry

    def parents(self, ref: str | Digest) -> list[Entry]:
        return sorted((self.get(p) for p in self.get(ref).event.parents), key=lambda e: e.seq)

    def children(self, ref: str | Digest) -> list[Entry]:
        shown = self._shown(ref)
        return sorted((self.get(c) for c in shown["children"]), key=lambda e: e.seq)

    def trace(self, ref: str | Digest) -> list[Entry]:
        """The event and its ancestors, oldest first: one request an event."""
        first = self.get(ref)
        found, todo = {first.digest: first}, list(first.event.parents)
        while todo:
            digest = todo.pop()
            if digest not in found:
                found[digest] = entry = self.get(digest)
                todo.extend(entry.event.parents)
        return sorted(found.values(), key=lambda e: e.seq)

    def entries(
        self,
        *,
        type: str | None = None,
        name: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[Entry]:
        """As `LedgerCore.entries`, at most 1000 at a time (the server's page)."""
        params: dict[str, Any] = {
            "type": type,
            "name": name,
            "since": parse_time(since) if since is not None else None,
            "until": parse_time(until) if until is not None else None,
            "limit": min(limit, _PAGE) if limit is not None else _PAGE,
            "oldest_first": not newest_first,
        }
        rows = self.served.call(
            "GET", "/events", params={k: v for k, v in params.items() if v is not None}
        )
        if limit is None and len(rows) >= _PAGE:
            unsupported(
                f"list more than {_PAGE} events of one query",
                "narrow it by type, name or time, or run it where the ledger's store is",
            )
        for data in rows:
            yield _event_of(data)

    # -- files ----------------------------------------------------------------------------
    @property
    def blobs_dir(self) -> Path:
        """A private folder for the files this ledger writes and fetches; sent up or
        fetched as they are named, removed on `close()`."""
        return self._blobs

    def fetch(self, name: str) -> Path | None:
        """The blob `name` in `blobs_dir`, fetched from the server if it is not there (the
        reader checks it against its name, as for a local file); None if none is held."""
        path = self._blobs / name
        if path.is_file():
            return path
        return self.served.get_blob(name, self._blobs)

    def fetch_named(self, entries: Iterable[Entry]) -> None:
        """Fetch the changes files and manifests the entries name, for answers that read
        them from `blobs_dir` (record sets are fetched when they are opened)."""
        for entry in entries:
            for name in named_blobs(entry.event):
                if by_bytes(name):
                    self.fetch(name)

    def find(self, ref: Entry | Digest | str, types: tuple[str, ...] = names.SUBJECTS) -> Found:
        """As `LedgerCore.find`; for a build or dataset, the changes files and manifests of
        its history are fetched too, as the answers about it read them from `blobs_dir`."""
        found = super().find(ref, types)
        if found.entry.event.type.value in ("build", "dataset"):
            self.fetch_named(self.trace(found.entry.digest))
        return found

    def stored_set(self, ref: str) -> Path | None:
        text = ref.strip().lower().removeprefix("sha256:")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            return None
        return self.fetch(text + SET_SUFFIX)

    def _set_path(self, ref: Entry | str) -> Path:
        path = super()._set_path(ref)
        return self.fetch(path.name) or path

    def project_path(self, path: Path) -> None:
        """None: a path on this machine means nothing to the server's ledger."""
        return None

    def subject_hasher(self) -> SubjectHasher:
        folder = self.location.keys_dir if self.location else None
        if folder is None or not (folder / subjects.SECRET_FILE).is_file():
            raise NotFoundError(
                "subjects are hashed under the ledger's secret, which is not on this machine",
                f"set MLPROV_KEYS to a folder holding a copy of the ledger's "
                f"{subjects.SECRET_FILE} (from its keys folder)",
            )
        return subjects.load_secret(folder)

    # -- what the server keeps ------------------------------------------------------------
    def checkpoints(self) -> list[SignedCheckpoint]:
        rows = self.served.call("GET", "/checkpoints")
        return [SignedCheckpoint.parse(str(row["note"]).encode()) for row in rows]

    def checkpoint(self, signer: SignerKey | None = None) -> SignedCheckpoint:
        """The server's newest checkpoint: it signs one after every request that records.
        NotFoundError when it has none (a ledger served without a signing key)."""
        if signer is not None:
            unsupported("sign a checkpoint with a key of this machine", _ON_SERVER)
        stored = self.checkpoints()
        if not stored:
            raise NotFoundError("the server has signed no checkpoint", "see `mlprov serve`")
        return stored[-1]

    def signer(self, path: Path | None = None) -> SignerKey:
        unsupported("sign with the ledger's key, which stays with the server", _ON_SERVER)

    def root(self, size: int | None = None) -> bytes:
        unsupported("compute the log's root here", _ON_SERVER)

    def inclusion_proof(self, ref: str | Digest, size: int | None = None) -> InclusionProof:
        unsupported("prove inclusion from here", _ON_SERVER)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        unsupported("prove consistency from here", _ON_SERVER)

    def verify(
        self,
        keys: Iterable[VerifierKey] = (),
        *,
        external: Sequence[SignedCheckpoint] = (),
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
        chunk: int = CHUNK,
    ) -> VerifyReport:
        unsupported("verify the whole ledger from here", _ON_SERVER)


def _batches(events: Sequence[Event]) -> Iterator[Sequence[Event]]:
    start, size = 0, 0
    for i, event in enumerate(events):
        size += len(event.encode()) + 64
        if i > start and (i - start >= _BATCH or size > _BATCH_BYTES):
            yield events[start:i]
            start, size = i, len(event.encode()) + 64
    if start < len(events):
        yield events[start:]
