"""Who events are recorded as: the rule (flag, MLPROV_ACTOR, git, login name) and `whoami`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import assert_error, mlprov, ok

from mlprov.identity import who


def _git(tmp_path: Path, email: str) -> dict[str, str]:
    config = tmp_path / "gitconfig"
    config.write_text(f"[user]\n\temail = {email}\n", encoding="utf-8")
    return {
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "user.email",
        "GIT_CONFIG_VALUE_0": email,
    }


def test_the_rule_in_order(tmp_path: Path) -> None:
    env = {"MLPROV_ACTOR": "pipeline@example.com"}
    assert (who("erin@example.com", env).name, who("erin@example.com", env).origin) == (
        "erin@example.com",
        "flag",
    )
    found = who(None, env)
    assert (found.name, found.origin, found.personal) == (
        "pipeline@example.com",
        "environment",
        False,
    )


def test_whoami_names_the_step_and_warns_of_a_personal_identity(tmp_path: Path) -> None:
    git = _git(tmp_path, "someone@personal.invalid")
    mine = json.loads(ok(mlprov("whoami", "--json", cwd=tmp_path, MLPROV_ACTOR="", **git)))
    assert mine == {"actor": "someone@personal.invalid", "origin": "git", "personal": True}
    text = ok(mlprov("whoami", cwd=tmp_path, MLPROV_ACTOR="", **git))
    assert "from git's user.email" in text and "set MLPROV_ACTOR" in text
    chosen = ok(mlprov("whoami", cwd=tmp_path, MLPROV_ACTOR="role@example.com", **git))
    assert chosen.strip() == "role@example.com (from MLPROV_ACTOR)"
    flag = ok(mlprov("whoami", "--actor", "erin@example.com", cwd=tmp_path, **git))
    assert flag.strip() == "erin@example.com (given with --actor)"


def test_a_bad_choice_reads_without_the_validation_librarys_prefix(tmp_path: Path) -> None:
    error, _ = assert_error(mlprov("report", "eu", "x", cwd=tmp_path), 2, "'eu' is not one of")
    assert "Value error" not in error


def test_init_says_who_events_will_name_and_warns_of_a_personal_identity(tmp_path: Path) -> None:
    git = _git(tmp_path, "someone@personal.invalid")
    made = mlprov("init", tmp_path / "a", cwd=tmp_path, MLPROV_ACTOR="", **git)
    assert "  actor  someone@personal.invalid (from git's user.email" in ok(made)
    assert "set MLPROV_ACTOR" in made.stderr
    chosen = mlprov("init", tmp_path / "b", cwd=tmp_path, MLPROV_ACTOR="role@example.com", **git)
    assert "  actor  role@example.com (from MLPROV_ACTOR)" in ok(chosen)
    assert chosen.stderr == ""
