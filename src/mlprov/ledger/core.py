"""The core ledger: append-only events, their DAG, the Merkle log, signed checkpoints,
keys and record sets.

It imports nothing above the core: the pipeline, builds, predictions and answers are
offered to users by the facade, :class:`mlprov.facade.Ledger`, which subclasses it.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import orjson

from mlprov.digest import Digest, sha256_raw
from mlprov.errors import (
    ConflictError,
    DuplicateError,
    InputError,
    NotFoundError,
    StoreError,
)
from mlprov.identity import default_actor
from mlprov.ledger import keys as keyfiles
from mlprov.ledger import names
from mlprov.ledger.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from mlprov.ledger.events import Entry, Event, parse_time, utc_now
from mlprov.ledger.keys import SignerKey, VerifierKey
from mlprov.ledger.log import TileAppender, TileCache, TileReader, store_tiles
from mlprov.ledger.prefix import PrefixReader
from mlprov.ledger.scan import CHUNK
from mlprov.ledger.verify import VerifyReport, verify_ledger
from mlprov.records import subjects
from mlprov.records.subjects import SubjectHasher
from mlprov.store import (
    EventFilter,
    EventRow,
    Location,
    Reader,
    SqlStore,
    Writer,
    find,
    for_directory,
)

if TYPE_CHECKING:
    from mlprov.ledger.proofs import ConsistencyProof, InclusionProof
    from mlprov.records.sets import RecordSet
    from mlprov.records.setviews import SetView

__all__ = ["LedgerCore", "RightEdge"]

_MIN_PREFIX = 6


class RightEdge:
    """The right edge of the log's tree as the last append left it, kept so the next append
    need not read and hash the newest leaves again. A ledger has its own, or shares one with
    the other ledgers of its process over the same store (a server's requests): only a
    writer holding the write lock takes it, and it hands it back once committed, so one
    thread uses it at a time. An edge another writer has since moved past is never used:
    its size no longer matches the log's."""

    __slots__ = ("_appender",)

    def __init__(self) -> None:
        self._appender: TileAppender | None = None

    def take(self) -> TileAppender | None:
        appender, self._appender = self._appender, None
        return appender

    def keep(self, appender: TileAppender) -> None:
        self._appender = appender


class LedgerCore:
    """The core of a provenance ledger over a store: events, the log, checkpoints, keys and
    record sets. Users open the facade, `mlprov.open()` (a :class:`mlprov.facade.Ledger`)."""

    def __init__(
        self,
        store: SqlStore,
        location: Location | None = None,
        *,
        meta: Mapping[str, str] | None = None,
        edge: RightEdge | None = None,
    ) -> None:
        """`meta`: the store's settings, when the caller has read them already; `edge`: the
        right edge of the log shared with other ledgers of this process (a server opens a
        ledger for each request, over settings that never change and one log)."""
        self.store = store
        self.location = location
        if meta is None:
            with store.reader() as r:
                meta = r.meta()
        missing = [k for k in ("origin", "ledger_id") if not meta.get(k)]
        if missing:
            raise StoreError(
                f"the store's settings lack the ledger's {' and '.join(missing)}",
                "the store was damaged: restore it from a backup",
            )
        self.origin = meta["origin"]
        self.ledger_id = meta["ledger_id"]
        self._tiles = TileCache()
        self._past: int | None = None  # at_size: the log size this view stands at
        self._edge = edge or RightEdge()

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, store: str | None = None, *, cwd: Path | None = None) -> Self:
        """Open the ledger named by `store`, `MLPROV_STORE`, or the nearest `.mlprov/`."""
        location = find(store, cwd=cwd)
        return cls(SqlStore.open(location.url), location)

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        store: str | None = None,
        origin: str | None = None,
    ) -> Self:
        """Create `.mlprov/` in `directory` with a new store and the ledger's signing key."""
        location = for_directory(directory)
        if store:
            location = Location(find(store, cwd=directory).url, location.home, location.keys_dir)
        assert location.home is not None and location.keys_dir is not None
        ledger_id = secrets.token_hex(8)
        origin = origin or f"mlprov/{ledger_id}"
        problem = keyfiles.key_name_problem(origin)
        if problem:
            raise InputError(f"invalid origin {origin!r}: {problem}", "use e.g. example.com/ledger")
        location.home.mkdir(parents=True, exist_ok=True)
        (location.home / "blobs").mkdir(exist_ok=True)
        location.keys_dir.mkdir(mode=0o700, exist_ok=True)
        sql = SqlStore.create(location.url, {"origin": origin, "ledger_id": ledger_id})
        if not list(location.keys_dir.glob("*.key")):
            keyfiles.write_keypair(SignerKey.generate(origin), location.keys_dir)
        if not (location.keys_dir / subjects.SECRET_FILE).exists():
            subjects.create_secret(location.keys_dir)
        return cls(sql, location)

    def another(self) -> LedgerCore:
        """A second ledger on the same store, sharing no state and no connection with this
        one: for another thread (open it in that thread, and close it there)."""
        return LedgerCore(SqlStore.open(self.store.connect_url), self.location)

    def recorded(self, digests: Iterable[Digest]) -> set[Digest]:
        """Those of `digests` that are recorded in this ledger."""
        wanted = list(digests)
        with self.store.reader() as r:
            found = r.seqs_of([d.raw for d in wanted])
        return {d for d in wanted if d.raw in found}

    def close(self) -> None:
        if self._past is None:  # a view of the past shares its ledger's store
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------
    def append(self, event: Event) -> Entry:
        """Record one event; its parents must already be in the ledger."""
        return self.append_many([event])[0]

    def record(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        parents: Iterable[Digest | str] = (),
        actor: str | None = None,
    ) -> Entry:
        """Create and append one event: `payload` is validated against its type's model
        (fields left None are not recorded); the actor defaults to `default_actor()`."""
        event = Event.create(type, payload, actor=actor or default_actor(), parents=parents)
        return self.append(event)

    def append_many(self, events: Sequence[Event]) -> list[Entry]:
        """Record events in order, atomically: all of them or none.

        A parent may be an earlier event of the same batch. Duplicates and unknown parents
        are refused with ConflictError, and nothing of the batch is written.
        """
        self._refuse_in_past("record events")
        bodies = [ev.encode() for ev in events]
        raws = [sha256_raw(b) for b in bodies]
        digests = [Digest.from_raw(r) for r in raws]
        batch: dict[bytes, int] = {}
        for i, raw in enumerate(raws):
            if raw in batch:
                raise DuplicateError(f"event {digests[i]} appears twice in the batch")
            batch[raw] = i
        outside = {p.raw for ev in events for p in ev.parents} - batch.keys()
        try:
            with self.store.writer() as w:
                size = w.size()
                known = w.seqs_of(outside) if outside else {}
                rows: list[EventRow] = []
                edges: list[tuple[int, int]] = []
                for i, (ev, body, raw) in enumerate(zip(events, bodies, raws, strict=True)):
                    seq = size + i
                    for parent in ev.parents:
                        pseq = known.get(parent.raw)
                        if pseq is None:
                            j = batch.get(parent.raw)
                            if j is None or j >= i:
                                raise ConflictError(
                                    f"parent {parent} of event {i + 1} of the batch is not in "
                                    "the ledger",
                                    "record the parent first; `mlprov log` lists what is recorded",
                                )
                            pseq = size + j
                        edges.append((seq, pseq))
                    rows.append(EventRow(seq, raw, ev.type.value, ev.name, ev.recorded_at, body))
                _one_content_per_version(w, events, raws)
                # The cached right edge is reused only if nobody appended since; it is dropped
                # until this commit succeeds, so a failed append never leaves it ahead.
                cached = self._edge.take()
                appender = cached if cached is not None and cached.size == size else None
                appender = appender or TileAppender(w, size)
                appender.extend(raws)
                w.insert(rows, edges)  # the unique digest index refuses a recorded event
                w.put_tiles(appender.changed())
                w.set_size(size + len(rows))
        except DuplicateError:
            with self._read() as r:
                found = r.seqs_of(raws)
            first = next((i for i, raw in enumerate(raws) if raw in found), 0)
            raise DuplicateError(
                f"event {digests[first]} is already recorded (at position "
                f"{found.get(raws[first], '?')})",
                "an event is recorded once; refer to it by its digest",
            ) from None
        appender.mark_written()
        self._edge.keep(appender)
        return [Entry(r.seq, d, ev, r.body) for r, d, ev in zip(rows, digests, events, strict=True)]

    # -- reading ------------------------------------------------------------------------
    def at_size(self, size: int) -> Self:
        """The ledger as it stood when its log held its first `size` events: a read-only
        view over the same store in which every read (events, names, the DAG, the log,
        checkpoints) leaves out what was recorded later (`mlprov.ledger.prefix`), so that
        whatever is computed from it is what the ledger said then. Recording, signing and
        verifying through it are refused; closing it leaves the store open. Code that opens
        `ledger.store` itself reads the whole store, not the view."""
        with self._read() as r:
            self._check_size(size, r.size())
        past = copy.copy(self)
        past._past, past._edge = size, RightEdge()
        return past

    @contextmanager
    def _read(self) -> Iterator[Reader]:
        """One reader snapshot of the store, cut at the view's size for a view of the past."""
        with self.store.reader() as r:
            yield r if self._past is None else PrefixReader(r, self._past)

    def _refuse_in_past(self, what: str) -> None:
        if self._past is not None:
            raise InputError(
                f"cannot {what} in the ledger as it stood at size {self._past}: it is read-only",
                "do it in the ledger itself",
            )

    @property
    def size(self) -> int:
        with self._read() as r:
            return r.size()

    def resolve(self, ref: str | Digest) -> Digest:
        """A digest from its full form, its hex, or a unique hex prefix of 6+ digits."""
        text = str(ref).strip().lower().removeprefix("sha256:")
        if len(text) == 64:
            return Digest("sha256:" + text)
        if not _MIN_PREFIX <= len(text) < 64 or any(c not in "0123456789abcdef" for c in text):
            raise InputError(
                f"{ref!r} is not a digest",
                f"give sha256:<64 hex digits> or a unique prefix of at least {_MIN_PREFIX}",
            )
        with self._read() as r:
            rows = r.by_hex_prefix(text, 2)
        if not rows:
            raise NotFoundError(f"no event digest starts with {text}", "see `mlprov log`")
        if len(rows) > 1:
            raise InputError(f"prefix {text} matches several events", "give more digits")
        return Digest.from_raw(rows[0].digest)

    def get(self, ref: str | Digest) -> Entry:
        """The recorded event with this digest (or unique prefix)."""
        digest = self.resolve(ref)
        with self._read() as r:
            return Entry.of_row(self._row(r, digest))

    @staticmethod
    def _row(r: Reader, digest: Digest) -> EventRow:
        rows = r.by_digest([digest.raw])
        if not rows:
            raise NotFoundError(f"no event {digest} in this ledger", "see `mlprov log`")
        return rows[0]

    # The event and its relatives are read in one snapshot (one transaction, not two).
    def parents(self, ref: str | Digest) -> list[Entry]:
        digest = self.resolve(ref)
        with self._read() as r:
            seq = self._row(r, digest).seq
            return [Entry.of_row(x) for x in r.by_seq(r.parent_seqs([seq]).get(seq, []))]

    def children(self, ref: str | Digest) -> list[Entry]:
        digest = self.resolve(ref)
        with self._read() as r:
            return [Entry.of_row(x) for x in r.by_seq(r.child_seqs(self._row(r, digest).seq))]

    def trace(self, ref: str | Digest) -> list[Entry]:
        """The event and all its ancestors back to every root, oldest first (log order)."""
        digest = self.resolve(ref)
        with self._read() as r:
            return [Entry.of_row(x) for x in r.by_seq(r.ancestor_seqs(self._row(r, digest).seq))]

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
        """Recorded events, filtered by type, name and time (`since` <= recorded_at < `until`).

        Times are ISO 8601 (`2026-05-22`, `2026-05-22T09:30:00+02:00`); no zone means UTC.
        """
        since = parse_time(since) if since is not None else None
        until = parse_time(until) if until is not None else None
        where = EventFilter(type, name, since, until, limit, newest_first)
        with self._read() as r:
            for row in r.select(where):
                yield Entry.of_row(row)

    # -- the log ------------------------------------------------------------------------
    def root(self, size: int | None = None) -> bytes:
        with self._read() as r:
            n = r.size() if size is None else self._check_size(size, r.size())
            return TileReader(store_tiles(r, n), n, self._tiles).root()

    @staticmethod
    def _check_size(size: int, current: int) -> int:
        if not 0 <= size <= current:
            raise InputError(f"tree size {size} is out of range", f"the log has {current} events")
        return size

    def inclusion_proof(self, ref: str | Digest, size: int | None = None) -> InclusionProof:
        """Prove the event is in the log: at the newest checkpoint covering it, else now."""
        entry = self.get(ref)
        with self._read() as r:
            current = r.size()
            note = None
            covering = [c for c in r.checkpoints() if c.size > entry.seq]
            if size is None and covering:
                signed = SignedCheckpoint.parse(covering[-1].note)
                size, note = signed.checkpoint.size, signed.serialize().decode()
            n = current if size is None else self._check_size(size, current)
            if entry.seq >= n:
                raise InputError(f"event {entry.digest} is not in the log of size {n}")
            tiles = TileReader(store_tiles(r, n), n, self._tiles)
            hashes = tiles.inclusion_proof(entry.seq, n)
            root = tiles.root()
        from mlprov.ledger.proofs import InclusionProof  # pydantic: only when asked

        return InclusionProof(
            origin=self.origin,
            event=entry.digest,
            index=entry.seq,
            tree_size=n,
            root=root.hex(),
            hashes=[h.hex() for h in hashes],
            checkpoint=note,
        )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Prove the log of `old_size` is a prefix of the log of `new_size` (default: now)."""
        notes = {c.checkpoint.size: c.serialize().decode() for c in self.checkpoints()}
        with self._read() as r:
            current = r.size()
            n = current if new_size is None else self._check_size(new_size, current)
            m = self._check_size(old_size, n)
            tiles = TileReader(store_tiles(r, n), n, self._tiles)
            hashes = tiles.consistency_proof(m, n) if m else []
            old_root, new_root = tiles.root(m), tiles.root(n)
        from mlprov.ledger.proofs import ConsistencyProof

        return ConsistencyProof(
            origin=self.origin,
            old_size=m,
            new_size=n,
            old_root=old_root.hex(),
            new_root=new_root.hex(),
            hashes=[h.hex() for h in hashes],
            old_checkpoint=notes.get(m),
            new_checkpoint=notes.get(n),
        )

    # -- record sets ----------------------------------------------------------------------
    @property
    def blobs_dir(self) -> Path:
        """Where record sets are kept, content-addressed: `.mlprov/blobs/`."""
        if self.location is None or self.location.home is None:
            raise NotFoundError(
                "this ledger has no local folder for record sets",
                "run from the folder that holds its .mlprov/",
            )
        return self.location.home / "blobs"

    def find(
        self, ref: Entry | Digest | str, types: tuple[str, ...] = names.SUBJECTS
    ) -> names.Found:
        """The source, dataset or build (or other `types`) that `ref` names: NAME (the
        newest), NAME@VERSION, or a digest or unique prefix (see `mlprov.ledger.names`)."""
        return names.find(self, ref, types)

    def recorded_source(self, payload: Mapping[str, Any]) -> Entry | None:
        """The event already recording this source's NAME@VERSION with the same content
        and facts; None if there is none; ConflictError if it differs (`names`)."""
        return names.recorded_source(self, payload)

    def project_path(self, path: Path) -> str | None:
        """How a source's `uri` names a local file: its path relative to the project (the
        folder holding `.mlprov/`), with `/`; None for a file outside the project, whose
        absolute path would mean nothing elsewhere and show this machine's layout."""
        home = self.location.home if self.location else None
        if home is None:
            return None
        try:
            return Path(path).resolve().relative_to(home.resolve().parent).as_posix()
        except ValueError:
            return None

    def stored_set(self, ref: str) -> Path | None:
        """The file of the record set whose root `ref` is (64 hex digits, optionally after
        `sha256:`), when this ledger keeps one; else None (`ref` may name an event)."""
        text = ref.strip().lower().removeprefix("sha256:")
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            return None
        path = self.blobs_dir / f"{text}.parquet"
        return path if path.exists() else None

    def _set_path(self, ref: Entry | str) -> Path:
        """The file of the record set of a set root (hex), or of the source or dataset `ref`
        names (NAME, NAME@VERSION or an event digest; see `find`)."""
        stored = self.stored_set(ref) if isinstance(ref, str) else None
        if stored is not None:
            return stored
        entry = self.find(ref, ("source", "dataset")).entry
        root = entry.event.payload.get("record_root")
        if root is None:
            raise NotFoundError(
                f"{entry.event.name} ({entry.digest}) has no record set",
                "record one with `mlprov fingerprint`, or give a set root",
            )
        return self.blobs_dir / f"{Digest(root).hex}.parquet"

    def record_set(self, ref: Entry | str) -> RecordSet:
        """The record set of a set root (hex), or of the source or dataset `ref` names,
        read whole."""
        from mlprov.records.sets import RecordSet

        return RecordSet.load(self._set_path(ref))

    def open_record_set(self, ref: Entry | str) -> SetView:
        """The record set of `ref` (as for :meth:`record_set`), read a shard at a time as
        questions need them, each checked against the root (``mlprov.records.setreader``)."""
        from mlprov.records.setreader import open_set

        return open_set(self._set_path(ref))

    def subject_hasher(self) -> SubjectHasher:
        """Keyed hashing of subjects under this ledger's secret (kept with its keys)."""
        folder = self.location.keys_dir if self.location else None
        if folder is None:
            raise NotFoundError("this ledger has no keys folder", "set MLPROV_KEYS")
        return subjects.load_secret(folder)

    # -- checkpoints and keys -----------------------------------------------------------
    def signer(self, path: Path | None = None) -> SignerKey:
        """The signing key: the file given, else the keys folder's key named for the log's
        origin (the one `init` made), else its only key."""
        if path is not None:
            return keyfiles.load_signer(path)
        folder = self.location.keys_dir if self.location else None
        found = sorted(folder.glob("*.key")) if folder and folder.is_dir() else []
        signers = [keyfiles.load_signer(p) for p in found]
        own = [s for s in signers if s.name == self.origin]
        if own or len(signers) == 1:
            return (own or signers)[0]
        raise NotFoundError(
            f"{'no' if not found else 'more than one'} signing key in {folder}, and none "
            f"named {self.origin}",
            "pass --key FILE, or create one with `mlprov keys generate`",
        )

    def trusted_keys(self, extra: Iterable[VerifierKey] = ()) -> list[VerifierKey]:
        """The verifier keys trusted here: those given, and the keys folder's `.pub` files."""
        keys = list(extra)
        folder = self.location.keys_dir if self.location else None
        if folder and folder.is_dir():
            keys.extend(keyfiles.load_verifier(p) for p in sorted(folder.glob("*.pub")))
        return keys

    def checkpoint(self, signer: SignerKey | None = None) -> SignedCheckpoint:
        """Sign the current tree head and store the checkpoint; returns it."""
        self._refuse_in_past("sign a checkpoint")
        key = signer or self.signer()
        with self.store.writer() as w:
            size = w.size()
            root = TileReader(store_tiles(w, size), size, self._tiles).root()
            signed = sign_checkpoint(Checkpoint(self.origin, size, root), [key])
            w.add_checkpoint(size, signed.serialize(), utc_now())
        return signed

    def checkpoints(self) -> list[SignedCheckpoint]:
        """The stored checkpoints, oldest first, parsed from their exact stored bytes."""
        with self._read() as r:
            rows = r.checkpoints()
        return [SignedCheckpoint.parse(row.note) for row in rows]

    def verify(
        self,
        keys: Iterable[VerifierKey] = (),
        *,
        external: Sequence[SignedCheckpoint] = (),
        progress: Callable[[int, int], None] | None = None,
        workers: int | None = None,
        chunk: int = CHUNK,
    ) -> VerifyReport:
        """Recompute every digest, link, tile, root and checkpoint; report every problem.

        A large log is scanned by `workers` processes (default: the CPUs, up to 4), each
        with its own connection, in chunks of `chunk` events.
        """
        self._refuse_in_past("verify")
        trusted = self.trusted_keys(keys)
        with self._read() as r:
            return verify_ledger(
                r,
                self.origin,
                trusted,
                external,
                progress,
                url=self.store.connect_url,
                workers=workers,
                chunk=chunk,
            )


#: The kinds of event a `NAME@VERSION` names once (ADR 0013, ADR 0018).
_VERSIONED = frozenset({"source", "dataset"})


def _one_content_per_version(w: Writer, events: Sequence[Event], raws: Sequence[bytes]) -> None:
    """Refuse, under the write lock, a `NAME@VERSION` that is already recorded.

    The friendly checks (`names.recorded_source`, `names.recorded_dataset`) run before the
    append, answering the same content with the recorded event; this one closes the gap
    between them and the lock, where two writers recording one new version at the same
    moment would otherwise both succeed. The same event again is left to the store's
    unique digest, which refuses it as a duplicate."""
    seen: set[tuple[str, str, str]] = set()
    for ev, raw in zip(events, raws, strict=True):
        version = ev.payload.get("version")
        if ev.type.value not in _VERSIONED or not isinstance(version, str) or ev.name is None:
            continue
        key = (ev.type.value, ev.name, version)
        taken = key in seen or any(
            row.digest != raw and orjson.loads(row.body)["payload"].get("version") == version
            for row in w.select(EventFilter(type=ev.type.value, name=ev.name))
        )
        if taken:
            shown = ev.name if ev.type.value == "source" else f"{ev.name}@{version}"
            raise ConflictError(
                f"{ev.type.value} {shown} was recorded a moment ago by another writer",
                "a name and version name one content: run again to take the recorded "
                "version if the content is the same, or give a new version",
            )
        seen.add(key)
