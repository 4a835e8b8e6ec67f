"""The digest of a model artifact: one file, or a directory of files.

A build record names the model it produced by this digest, so an outsider must be able to
recompute it from the artifact alone. The rules, `mlprov-artifact/1` (ADR 0007):

* **A file**'s digest is the SHA-256 of its bytes (`sha256:<hex>`), nothing else.
* **A directory**'s digest is ``digest_json({"semantics": "mlprov-artifact/1",
  "resources": [...]})``: SHA-256 of the RFC 8785 (JCS) JSON of that object, where each
  resource is ``{"name": path, "algorithm": "sha256", "digest": <64 hex>}`` for one
  regular file below the directory, and

  - ``path`` is relative to the directory, components joined by ``/`` (POSIX form), and
    must be valid UTF-8;
  - the list is sorted by path *components* (``path.split("/")``), each compared by
    code point, so ``a/b`` sorts before ``a-b``;
  - directories themselves are not listed: an empty subdirectory changes nothing;
  - a path equal to, or below, an ``ignore`` entry is left out. The entries are paths
    relative to the root, not patterns (a single file ignores nothing). The default is
    ``.git``, ``.gitattributes``, ``.github``, ``.gitignore`` and ``model.sig`` (a
    signature is not part of what it signs);
  - a symbolic link is refused unless ``allow_symlinks``; then a link to a regular file
    inside the root is listed under the link's own path with the target's digest. A link
    that leads outside the root, dangles, or leads to a directory is refused always;
  - a FIFO, socket or device file is refused; so is a directory holding no file.

This is model_signing's (OpenSSF, sigstore/model-transparency v1.x) "files" serialization
with SHA-256: its per-file resources are the same triples in the same order, so a
model_signing statement's ``predicate.resources`` can be dropped unchanged into the object
above. The digests themselves differ on purpose: model_signing's in-toto subject digest is
SHA-256 over the concatenated raw file digests, which commits to no name (renaming a file
keeps it), and a single file's subject is hashed a second time. That subject digest is
offered, for cross-checking a signed model, as :attr:`ArtifactDigest.model_signing_subject`.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlprov.digest import Digest, digest_file, digest_json, sha256_hasher
from mlprov.errors import InputError, NotFoundError

__all__ = ["DEFAULT_IGNORE", "SEMANTICS", "ArtifactDigest", "ArtifactFile", "artifact_digest"]

SEMANTICS = "mlprov-artifact/1"
# model_signing's git paths, plus the signature file its command line writes by default.
DEFAULT_IGNORE: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore", "model.sig")
_CHUNK = 1 << 20  # hashlib releases the GIL on large buffers: threads hash in parallel
_TICK = 0.1  # seconds between progress reports while files are being hashed
_SYMLINK_HINT = "pass allow_symlinks=True to follow links inside the artifact, or ignore it"
_SYMLINK_CLI_HINT = "replace the link with the file it points to, or move it out of the artifact"


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    """One file of an artifact: its path below the root (POSIX form), digest and size."""

    path: str
    digest: Digest
    size: int

    def resource(self) -> dict[str, str]:
        """The file as a model_signing / in-toto resource: name, algorithm, hex digest."""
        return {"name": self.path, "algorithm": "sha256", "digest": self.digest.hex}


@dataclass(frozen=True, slots=True)
class ArtifactDigest:
    """The digest of an artifact, with the per-file list it was computed from."""

    digest: Digest
    kind: Literal["file", "directory"]
    files: tuple[ArtifactFile, ...]
    size: int
    semantics: str = SEMANTICS

    @property
    def model_signing_subject(self) -> Digest:
        """The subject digest model_signing's in-toto statement would carry for the same
        files: SHA-256 over their raw SHA-256 digests, concatenated in list order."""
        hasher = sha256_hasher()
        for f in self.files:
            hasher.update(f.digest.raw)
        return Digest.from_raw(hasher.digest())

    def to_json(self) -> dict[str, Any]:
        return {
            "semantics": self.semantics,
            "kind": self.kind,
            "digest": str(self.digest),
            "size": self.size,
            "files": [
                {"path": f.path, "digest": str(f.digest), "size": f.size} for f in self.files
            ],
            "model_signing_subject": str(self.model_signing_subject),
        }


def _directory_digest(files: Sequence[ArtifactFile]) -> Digest:
    """The digest of a directory holding `files` (already in artifact order)."""
    return digest_json({"semantics": SEMANTICS, "resources": [f.resource() for f in files]})


def artifact_digest(
    path: Path,
    *,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    allow_symlinks: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> ArtifactDigest:
    """Digest the model artifact at `path` (a file or a directory) per `mlprov-artifact/1`.

    Files are hashed once each, in parallel on `workers` threads (default: the pool's
    own choice). `progress(done, total)` is called with bytes hashed so far, always on the
    calling thread. Raises NotFoundError for a missing path and InputError for a path
    this module refuses (see the module doc); a file that changes while being read is
    refused too, as its digest would describe no state the file was ever in.
    """
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, not {workers}", "or leave it unset")
    path = Path(path)
    try:
        top = path.lstat()
    except FileNotFoundError:
        raise NotFoundError(f"no model artifact at {path}", "check the path") from None
    except OSError as exc:
        raise InputError(
            f"cannot inspect {path}: {exc.strerror}", "check its permissions"
        ) from None
    if stat.S_ISLNK(top.st_mode):
        if not allow_symlinks:
            raise InputError(
                f"{path} is a symbolic link", _SYMLINK_HINT, cli_hint=_SYMLINK_CLI_HINT
            )
        path = path.resolve()  # the root itself is what the user named: follow it
        try:
            top = path.stat()
        except OSError:
            raise NotFoundError(f"{path} is a link to nothing", "check the path") from None
    if stat.S_ISREG(top.st_mode):
        found = [_Found(".", path, top.st_size, top)]
        files = _hash_all(found, progress, workers)
        return ArtifactDigest(files[0].digest, "file", tuple(files), files[0].size)
    if not stat.S_ISDIR(top.st_mode):
        raise InputError(f"{path} is {_what(top.st_mode)}", "give a model file or directory")
    skip = _ignore_set(ignore)
    found = sorted(_walk(path, path.resolve(), (), skip, allow_symlinks), key=_order)
    if not found:
        raise InputError(
            f"{path} holds no file to digest",
            "check the path; ignored paths are " + (", ".join(sorted(skip)) or "none"),
        )
    files = _hash_all(found, progress, workers)
    return ArtifactDigest(_directory_digest(files), "directory", tuple(files), _total(files))


# -- finding files ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Found:
    rel: str
    real: Path  # what is opened: the file itself, or a link's target inside the root
    size: int
    before: os.stat_result


def _order(f: _Found) -> list[str]:
    return f.rel.split("/")


def _total(files: Sequence[ArtifactFile]) -> int:
    return sum(f.size for f in files)


def _ignore_set(ignore: Sequence[str]) -> frozenset[str]:
    if isinstance(ignore, str):  # one path, not a sequence of one-letter paths
        ignore = (ignore,)
    out: set[str] = set()
    for entry in ignore:
        text = str(entry).replace(os.sep, "/").strip("/")
        parts = [p for p in text.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or Path(str(entry)).is_absolute():
            raise InputError(
                f"ignore entry {entry!r} is not a path inside the artifact",
                "give paths relative to the artifact's root, e.g. '.git' or 'logs/run1'",
            )
        out.add("/".join(parts))
    return frozenset(out)


def _ignored(rel: str, skip: frozenset[str]) -> bool:
    if rel in skip:
        return True
    return any(rel.startswith(s + "/") for s in skip)


def _walk(
    folder: Path, root: Path, parts: tuple[str, ...], skip: frozenset[str], links: bool
) -> Iterator[_Found]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"cannot list {folder}: {exc.strerror}", "check its permissions") from None
    for entry in entries:
        name = entry.name
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"the name {name!r} in {folder} is not valid UTF-8",
                "rename it: artifact paths are recorded as UTF-8 text",
            ) from None
        rel = "/".join((*parts, name))
        if _ignored(rel, skip):  # before any other check, so an ignored link is no error
            continue
        full = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(full, root, (*parts, name), skip, links)
        elif stat.S_ISREG(st.st_mode):
            yield _Found(rel, full, st.st_size, st)
        elif stat.S_ISLNK(st.st_mode):
            yield _link(full, rel, root, links)
        else:
            raise InputError(f"{full} is {_what(st.st_mode)}", "remove it or ignore it")


def _link(full: Path, rel: str, root: Path, allowed: bool) -> _Found:
    if not allowed:
        raise InputError(f"{full} is a symbolic link", _SYMLINK_HINT, cli_hint=_SYMLINK_CLI_HINT)
    target = full.resolve()  # every link on the way, relative or absolute
    if not target.is_relative_to(root):
        raise InputError(
            f"{full} is a symbolic link to {target}, outside the artifact {root}",
            "a link is followed only inside the artifact: copy the file in instead",
        )
    try:
        st = target.stat()
    except OSError:
        raise NotFoundError(f"{full} is a link to nothing", "remove it or ignore it") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{full} is a symbolic link to {_what(st.st_mode)}",
            "only links to files are followed: ignore it, or copy the files in",
        )
    return _Found(rel, target, st.st_size, st)


def _what(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


# -- hashing ----------------------------------------------------------------------------
def _hash_all(
    found: Sequence[_Found],
    progress: Callable[[int, int], None] | None,
    workers: int | None,
) -> list[ArtifactFile]:
    total = sum(f.size for f in found)
    done = [0]
    lock = threading.Lock()

    def one(f: _Found) -> ArtifactFile:
        seen = [0]  # bytes read from this file: its size is what was hashed, not a stat

        def tick(n: int) -> None:
            with lock:
                done[0] += n - seen[0]
            seen[0] = n

        digest = digest_file(f.real, progress=tick, chunk_size=_CHUNK)
        _check_unchanged(f, seen[0])
        return ArtifactFile(f.rel, digest, seen[0])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlprov-artifact") as pool:
        futures: list[Future[ArtifactFile]] = [pool.submit(one, f) for f in found]
        pending: set[Future[ArtifactFile]] = set(futures)
        reported = -1
        try:
            while pending:
                finished, pending = wait(pending, timeout=_TICK, return_when=FIRST_COMPLETED)
                for fut in finished:
                    fut.result()  # a refused or unreadable file stops the walk now
                if progress is not None and done[0] != reported:
                    reported = done[0]
                    progress(reported, total)
            files = [fut.result() for fut in futures]
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    if progress is not None and reported != total:
        progress(total, total)
    return files


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_unchanged(f: _Found, read: int) -> None:
    """Refuse a file that was replaced, grown or written to while it was hashed."""
    try:
        after = _identity(os.lstat(f.real))
    except OSError:
        after = None
    if read != f.size or after != _identity(f.before):
        raise InputError(
            f"{f.real} changed while it was read", "digest the artifact once it is fully written"
        )
