"""Where a ledger lives: `mlprov.store.location.find`, with an explicit cwd and environment.

Every call passes `environ` explicitly, so the tests do not depend on (or leak into) the
environment of the test run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlprov.errors import StoreError
from mlprov.store.location import DIRNAME, Location, find, for_directory


def make_home(folder: Path) -> Path:
    home = folder / DIRNAME
    home.mkdir(parents=True)
    return home


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path)


def no_ledger_above(path: Path) -> bool:
    return not any((p / DIRNAME).is_dir() for p in (path, *path.parents))


def test_walks_up_from_a_nested_directory(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    deep = tmp_path / "data" / "raw" / "2026"
    deep.mkdir(parents=True)
    loc = find(cwd=deep, environ={})
    assert loc == Location(sqlite_url(home.resolve() / "ledger.db"), home.resolve(), home / "keys")


def test_the_nearest_ledger_wins(tmp_path: Path) -> None:
    make_home(tmp_path)
    inner = make_home(tmp_path / "project").resolve()
    deep = tmp_path / "project" / "src"
    deep.mkdir()
    loc = find(cwd=deep, environ={})
    assert loc.home == inner
    assert loc.url == sqlite_url(inner / "ledger.db")


def test_the_start_directory_itself_counts(tmp_path: Path) -> None:
    home = make_home(tmp_path).resolve()
    assert find(cwd=tmp_path, environ={}).home == home


def test_a_file_named_mlprov_is_not_a_ledger(tmp_path: Path) -> None:
    home = make_home(tmp_path).resolve()
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / DIRNAME).write_text("not a directory")
    assert find(cwd=sub, environ={}).home == home


def test_symlinked_start_is_resolved(tmp_path: Path) -> None:
    home = make_home(tmp_path / "real").resolve()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real", target_is_directory=True)
    assert find(cwd=link, environ={}).home == home


def test_nothing_found_is_a_store_error_naming_the_start(tmp_path: Path) -> None:
    start = tmp_path / "empty" / "deeper"
    start.mkdir(parents=True)
    if not no_ledger_above(start):
        pytest.skip("a .mlprov/ directory exists above the test's temporary directory")
    with pytest.raises(StoreError) as caught:
        find(cwd=start, environ={})
    err = caught.value
    assert err.exit_code == 4
    assert str(start.resolve()) in err.message
    assert "no mlprov ledger" in err.message and "parent" in err.message
    assert err.hint is not None
    assert "mlprov init" in err.hint and "MLPROV_STORE" in err.hint


def test_empty_mlprov_store_means_not_set(tmp_path: Path) -> None:
    home = make_home(tmp_path).resolve()
    loc = find(cwd=tmp_path, environ={"MLPROV_STORE": ""})
    assert loc.home == home and loc.url == sqlite_url(home / "ledger.db")


def test_mlprov_store_path_overrides_the_walk(tmp_path: Path) -> None:
    make_home(tmp_path)  # a nearer ledger that must be ignored
    elsewhere = tmp_path / "elsewhere" / "store"
    elsewhere.mkdir(parents=True)
    db = elsewhere / "team.db"
    loc = find(cwd=tmp_path, environ={"MLPROV_STORE": str(db)})
    # A SQLite ledger's home is the folder of its file; its keys live under it.
    assert loc == Location(sqlite_url(db.resolve()), elsewhere.resolve(), elsewhere / "keys")


def test_mlprov_store_sqlite_url_is_kept(tmp_path: Path) -> None:
    db = (tmp_path / "x" / "ledger.db").resolve()
    url = sqlite_url(db) + "?synchronous=FULL"
    loc = find(cwd=tmp_path, environ={"MLPROV_STORE": url})
    assert loc.url == url
    assert loc.home == db.parent
    assert loc.keys_dir == db.parent / "keys"


def test_mlprov_store_server_url_takes_keys_from_nearest_ledger(tmp_path: Path) -> None:
    home = make_home(tmp_path).resolve()
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    url = "postgresql://alice@db.example.com/ledger"
    loc = find(cwd=sub, environ={"MLPROV_STORE": url})
    assert loc == Location(url, home, home / "keys")


def test_server_url_without_any_local_ledger_has_no_home(tmp_path: Path) -> None:
    if not no_ledger_above(tmp_path):
        pytest.skip("a .mlprov/ directory exists above the test's temporary directory")
    url = "postgresql://alice@db.example.com/ledger"
    assert find(cwd=tmp_path, environ={"MLPROV_STORE": url}) == Location(url, None, None)


def test_mlprov_keys_overrides_the_keys_folder(tmp_path: Path) -> None:
    make_home(tmp_path)
    keys = tmp_path / "vault" / "keys"
    url = "postgresql://alice@db.example.com/ledger"
    for environ in ({"MLPROV_KEYS": str(keys)}, {"MLPROV_KEYS": str(keys), "MLPROV_STORE": url}):
        assert find(cwd=tmp_path, environ=environ).keys_dir == keys
    if no_ledger_above(tmp_path / "vault"):
        # Even with no ledger directory at all, MLPROV_KEYS names where keys are.
        loc = find(cwd=tmp_path / "vault", environ={"MLPROV_KEYS": str(keys), "MLPROV_STORE": url})
        assert loc == Location(url, None, keys)


def test_explicit_store_beats_the_environment(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    loc = find(str(a), cwd=tmp_path, environ={"MLPROV_STORE": str(b)})
    assert loc.url == sqlite_url(a.resolve())


def test_find_does_not_read_the_process_environment_when_given_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path).resolve()
    monkeypatch.setenv("MLPROV_STORE", "postgresql://should-not-be-used/db")
    monkeypatch.setenv("MLPROV_KEYS", str(tmp_path / "nor-this"))
    assert find(cwd=tmp_path, environ={}) == Location(
        sqlite_url(home / "ledger.db"), home, home / "keys"
    )


def test_find_reads_the_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("MLPROV_STORE", str(db))
    monkeypatch.delenv("MLPROV_KEYS", raising=False)
    assert find(cwd=tmp_path).url == sqlite_url(db.resolve())


def test_for_directory_is_what_find_finds_after_init(tmp_path: Path) -> None:
    created = for_directory(tmp_path)
    assert created.home is not None
    created.home.mkdir()
    nested = tmp_path / "n"
    nested.mkdir()
    assert find(cwd=nested, environ={}) == created


def test_relative_store_path_is_resolved_against_the_given_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "process-cwd"
    elsewhere.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(elsewhere)
    loc = find(cwd=project, environ={"MLPROV_STORE": os.path.join("state", "ledger.db")})
    assert loc.url == sqlite_url(project.resolve() / "state" / "ledger.db")
