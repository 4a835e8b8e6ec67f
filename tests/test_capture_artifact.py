"""Artifact digests (`mlprov-artifact/1`) on real files: rules, refusals, and the spec
recomputed here from hashlib and json alone."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from mlprov.capture.artifact import SEMANTICS, ArtifactDigest, artifact_digest
from mlprov.errors import InputError, NotFoundError

TREE = {
    "config.json": b'{"layers": 2}',
    "weights/part-0.bin": bytes(range(256)) * 17,
    "weights/part-1.bin": b"\x00" * 5000,
    "tokenizer/vocab.txt": "héllo\nworld\n".encode(),
    "empty": b"",
}


def make(root: Path, files: dict[str, bytes], order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[rel])
    return root


def digest_of(root: Path, **kw: object) -> ArtifactDigest:
    return artifact_digest(root, **kw)  # type: ignore[arg-type]


# -- the spec, recomputed without mlprov --------------------------------------------------
def reference_directory_digest(root: Path, ignore: tuple[str, ...] = ()) -> str:
    """ADR 0007 by hand: per-file SHA-256, POSIX paths sorted by component, JCS, SHA-256."""
    resources = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if any(rel == i or rel.startswith(i + "/") for i in ignore):
                continue
            digest = hashlib.sha256(full.read_bytes()).hexdigest()
            resources.append({"name": rel, "algorithm": "sha256", "digest": digest})
    resources.sort(key=lambda r: r["name"].split("/"))
    # For objects of text with ASCII keys, RFC 8785 is exactly this json.dumps form.
    body = json.dumps(
        {"semantics": "mlprov-artifact/1", "resources": resources},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_directory_digest_is_reproducible_from_the_documented_rules(tmp_path: Path) -> None:
    root = make(tmp_path / "model", {**TREE, "a-b": b"1", "a/b": b"2", "Zeta": b"3"})
    got = digest_of(root)
    assert got.kind == "directory" and got.semantics == SEMANTICS
    assert got.digest == reference_directory_digest(root)
    assert [f.path for f in got.files][:4] == ["Zeta", "a/b", "a-b", "config.json"]
    assert got.size == sum(len(v) for v in TREE.values()) + 3
    assert all(f.size == (root / f.path).stat().st_size for f in got.files)


def test_a_file_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"tensor bytes" * 1000)
    got = digest_of(model)
    assert got.kind == "file"
    assert got.digest == "sha256:" + hashlib.sha256(model.read_bytes()).hexdigest()
    assert [(f.path, f.size) for f in got.files] == [(".", 12000)]
    assert got.to_json()["files"][0]["digest"] == got.digest


def test_a_file_and_a_directory_holding_it_differ(tmp_path: Path) -> None:
    folder = make(tmp_path / "m", {"model.bin": b"weights"})
    assert digest_of(folder).digest != digest_of(folder / "model.bin").digest


def test_matches_model_signing_files_serialization(tmp_path: Path) -> None:
    """Vectors from model_signing 1.1.1 (`hashing.Config().set_allow_symlinks(True)`, then
    `signing.Payload(manifest)`): its resources and its in-toto subject digest."""
    root = make(
        tmp_path / "m",
        {
            "a/b": b"hello",
            "a-b": b"x",
            "sub/deep/w.bin": b"weights",
            ".git/HEAD": b"git",
            "empty": b"",
            "é.txt": "é".encode(),
            "Z": b"Z",
        },
    )
    (root / "link").symlink_to("a/b")
    got = digest_of(root, allow_symlinks=True)
    assert [f.path for f in got.files] == [
        "Z",
        "a/b",
        "a-b",
        "empty",
        "link",
        "sub/deep/w.bin",
        "é.txt",
    ]
    assert got.model_signing_subject == (
        "sha256:390ec0c11ebe975da750ceac2c18665e1a2cae559488a99bb7b68c393b988cf2"
    )
    single = digest_of(root / "sub/deep/w.bin")
    assert single.model_signing_subject == (
        "sha256:59f3d85be3f9f90be09b43a08eb32a38a952135242e650039e4c4ccefd93d0a3"
    )
    # model_signing's own resource entries, lifted into mlprov's digest unchanged
    resources = [f.resource() for f in got.files]
    assert resources[1] == {
        "name": "a/b",
        "algorithm": "sha256",
        "digest": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    }


# -- determinism and sensitivity ----------------------------------------------------------
def test_creation_order_and_worker_count_do_not_matter(tmp_path: Path) -> None:
    one = make(tmp_path / "one", TREE)
    two = make(tmp_path / "two", TREE, order=list(reversed(TREE)))
    digests = {
        digest_of(one).digest,
        digest_of(two, workers=1).digest,
        digest_of(two, workers=8).digest,
    }
    assert len(digests) == 1
    assert digest_of(one).files == digest_of(two).files


@pytest.mark.parametrize("change", ["byte", "rename", "add", "remove", "move", "empty_file"])
def test_every_change_changes_the_digest(tmp_path: Path, change: str) -> None:
    root = make(tmp_path / "m", TREE)
    before = digest_of(root).digest
    part = root / "weights/part-1.bin"
    if change == "byte":
        data = bytearray(part.read_bytes())
        data[2500] ^= 1
        part.write_bytes(bytes(data))
    elif change == "rename":
        part.rename(root / "weights/part-2.bin")
    elif change == "add":
        (root / "README.md").write_text("card")
    elif change == "remove":
        part.unlink()
    elif change == "move":
        part.rename(root / "part-1.bin")
    else:
        (root / "another-empty").write_bytes(b"")
    assert digest_of(root).digest != before


def test_empty_subdirectories_are_not_part_of_the_artifact(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    before = digest_of(root).digest
    (root / "logs" / "nested").mkdir(parents=True)
    assert digest_of(root).digest == before


# -- ignore rules -------------------------------------------------------------------------
def test_git_paths_and_the_signature_are_ignored_by_default(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    before = digest_of(root).digest
    make(root, {".git/HEAD": b"ref", ".gitignore": b"*.tmp", "model.sig": b"{}"})
    (root / ".github").mkdir()
    (root / ".github" / "x").symlink_to("/etc/hostname")  # ignored before it is inspected
    assert digest_of(root).digest == before
    assert digest_of(root, ignore=(".github",)).digest != before  # .git etc. now counted


def test_ignore_entries_are_anchored_at_the_root(tmp_path: Path) -> None:
    root = make(tmp_path / "m", {**TREE, "sub/.git/HEAD": b"nested", "logs/run1/a": b"1"})
    got = digest_of(root, ignore=(".git", "logs/run1/"))
    paths = {f.path for f in got.files}
    assert "sub/.git/HEAD" in paths  # only the root's .git is ignored, as model_signing does
    assert not any(p.startswith("logs/") for p in paths)
    assert "weights/part-0.bin" not in {f.path for f in digest_of(root, ignore=("weights",)).files}
    assert got.digest == reference_directory_digest(root, ignore=(".git", "logs/run1"))


@pytest.mark.parametrize("entry", ["../m", "/etc", "a/../../x", "", "."])
def test_ignore_entries_outside_the_artifact_are_refused(tmp_path: Path, entry: str) -> None:
    root = make(tmp_path / "m", TREE)
    with pytest.raises(InputError, match="not a path inside the artifact"):
        digest_of(root, ignore=(entry,))


# -- symbolic links -----------------------------------------------------------------------
def test_symlinks_are_refused_by_default(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    (root / "alias.json").symlink_to("config.json")
    with pytest.raises(InputError, match=r"alias\.json is a symbolic link") as err:
        digest_of(root)
    assert err.value.hint is not None and "allow_symlinks" in err.value.hint
    link = tmp_path / "to-model"
    link.symlink_to(root / "config.json")
    with pytest.raises(InputError, match="symbolic link"):
        digest_of(link)


def test_an_allowed_link_inside_the_root_counts_under_its_own_name(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    (root / "tokenizer" / "alias.txt").symlink_to("../config.json")
    got = digest_of(root, allow_symlinks=True)
    by_path = {f.path: f for f in got.files}
    assert by_path["tokenizer/alias.txt"].digest == by_path["config.json"].digest
    copy = make(tmp_path / "copy", {**TREE, "tokenizer/alias.txt": TREE["config.json"]})
    assert got.digest == digest_of(copy).digest  # a link is hashed as the file it names


@pytest.mark.parametrize("how", ["absolute", "relative", "chain", "via_dir"])
def test_links_never_lead_outside_the_root(tmp_path: Path, how: str) -> None:
    root = make(tmp_path / "m", TREE)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    link = root / "escape"
    if how == "absolute":
        link.symlink_to(secret)
    elif how == "relative":
        link.symlink_to("../secret.txt")
    elif how == "chain":  # a link inside the root, which itself points outside
        (root / "hop").symlink_to(secret)
        link.symlink_to("hop")
    else:  # a path through a linked directory outside the root (itself ignored)
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "w.bin").write_bytes(b"w")
        (root / "dirlink").symlink_to(tmp_path / "elsewhere")
        link.symlink_to("dirlink/w.bin")
    with pytest.raises(InputError, match=r"escape is a symbolic link to .* outside the artifact"):
        digest_of(root, allow_symlinks=True, ignore=("dirlink", "hop"))


def test_links_to_directories_and_dangling_links_are_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    (root / "w").symlink_to("weights", target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link to a directory"):
        digest_of(root, allow_symlinks=True)
    (root / "w").unlink()
    (root / "gone").symlink_to("nothing-here")
    with pytest.raises(NotFoundError, match="gone is a link to nothing"):
        digest_of(root, allow_symlinks=True)


def test_a_linked_root_is_followed_only_when_allowed(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    link = tmp_path / "current"
    link.symlink_to(root, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        digest_of(link)
    assert digest_of(link, allow_symlinks=True).digest == digest_of(root).digest


# -- bad input ----------------------------------------------------------------------------
def test_missing_path_and_empty_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no model artifact at .*nope"):
        digest_of(tmp_path / "nope")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no file"):
        digest_of(empty)
    make(empty, {".git/HEAD": b"x"})
    with pytest.raises(InputError, match="holds no file") as err:
        digest_of(empty)
    assert err.value.hint is not None and ".git" in err.value.hint


def test_a_worker_count_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="workers must be at least 1"):
        digest_of(make(tmp_path / "m", TREE), workers=0)


def test_special_files_are_refused_without_being_opened(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    os.mkfifo(root / "pipe")  # opening it would block forever
    with pytest.raises(InputError, match="pipe is a FIFO"):
        digest_of(root)
    with pytest.raises(InputError, match="is a FIFO"):
        digest_of(root / "pipe")
    assert digest_of(root, ignore=("pipe",)).digest == reference_directory_digest(
        root, ignore=("pipe",)
    )


def test_sockets_are_refused(tmp_path: Path) -> None:
    import socket

    short = Path(f"/tmp/mlprov-sock-{os.getpid()}")  # AF_UNIX paths are short
    short.mkdir()
    try:
        make(short, {"a": b"1"})
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(short / "sock"))
            with pytest.raises(InputError, match="sock is a socket"):
                digest_of(short)
    finally:
        shutil.rmtree(short)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_files_are_named(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    (root / "config.json").chmod(0)
    try:
        with pytest.raises(InputError, match=r"cannot read .*config\.json"):
            digest_of(root)
    finally:
        (root / "config.json").chmod(0o644)


def test_names_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    fd = os.open(os.fsencode(root) + b"/caf\xe9", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    with pytest.raises(InputError, match="not valid UTF-8"):
        digest_of(root)


# -- progress -----------------------------------------------------------------------------
def test_progress_reports_bytes_up_to_the_total(tmp_path: Path) -> None:
    big = {f"shard-{i}.bin": os.urandom(3 * (1 << 20) + i) for i in range(4)}
    root = make(tmp_path / "m", {**TREE, **big})
    calls: list[tuple[int, int]] = []
    got = digest_of(root, progress=lambda done, total: calls.append((done, total)), workers=2)
    assert calls and calls[-1] == (got.size, got.size)
    assert {total for _, total in calls} == {got.size}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert got.size == sum(len(v) for v in (TREE | big).values())


def test_to_json_lists_every_file(tmp_path: Path) -> None:
    root = make(tmp_path / "m", TREE)
    data = digest_of(root).to_json()
    assert data["semantics"] == "mlprov-artifact/1" and data["kind"] == "directory"
    assert [f["path"] for f in data["files"]] == sorted(TREE, key=lambda p: p.split("/"))
    json.dumps(data)  # plain JSON types only
