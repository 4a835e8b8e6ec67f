"""Documentation that is tested: README's command and exit-code tables, its opening
commands, its links and its Python example must match the code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

import mlprov
import mlprov.errors
from mlprov.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Options README documents once for all commands instead of in each row.
DOCUMENTED_GLOBALLY = {
    "--json": "Every read command takes `--json`",
    "--store": "makes its own) takes `--store` (or `MLPROV_STORE`)",
    "--actor": "The actor written into events is `--actor`",
}


def leaf_commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every runnable command of the click tree, as ('keys generate', command)."""
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from leaf_commands(sub, (*path, name))
    else:
        yield " ".join(path), command


COMMANDS = dict(leaf_commands(typer.main.get_command(app)))


def long_options(command: Any) -> list[str]:
    return [
        opt
        for p in command.params
        if p.param_type_name == "option"
        for opt in p.opts
        if opt.startswith("--")
    ]


def arguments(command: Any) -> list[str]:
    return [p.name for p in command.params if p.param_type_name == "argument"]


def section(title: str) -> str:
    """README text from the heading `title` to the next heading of the same or higher level."""
    level = title.split(" ")[0]
    start = README.index(title + "\n")
    rest = README[start + len(title) :]
    stop = re.search(rf"^#{{1,{len(level)}}} ", rest, re.M)
    return rest[: stop.start()] if stop else rest


def command_rows() -> dict[str, str]:
    """README's command table: {'keys generate': 'mlprov keys generate NAME [--dir DIR]'}."""
    rows = re.findall(r"^\| `(mlprov [^`]*)` \|", section("## Commands"), re.M)
    table: dict[str, str] = {}
    for row in rows:
        words = row.split()[1:]
        path = []
        for word in words:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            path.append(word)
        table[" ".join(path)] = row.replace("\\|", "|")
    return table


def exit_rows() -> dict[int, str]:
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*$", section("### Exit codes"), re.M)
    return {int(code): meaning for code, meaning in rows}


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return [(m[0], m[1].strip()) for m in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)]


def test_the_app_has_the_expected_commands() -> None:
    # Guards the enumeration itself: if it found nothing, the tests below would pass vacuously.
    assert {"init", "record", "log", "verify", "keys generate", "proof check"} <= set(COMMANDS)
    assert len(COMMANDS) >= 11


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_in_the_readme_table(name: str) -> None:
    assert name in command_rows(), f"`mlprov {name}` is missing from README's command table"


def test_the_readme_table_names_no_command_that_does_not_exist() -> None:
    assert set(command_rows()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_and_argument_is_documented(name: str) -> None:
    row = command_rows().get(name, "")
    for opt in long_options(COMMANDS[name]):
        if re.search(rf"{re.escape(opt)}\b", row):
            continue
        assert opt in DOCUMENTED_GLOBALLY, f"{opt} of `mlprov {name}` is not in README"
        assert DOCUMENTED_GLOBALLY[opt] in README
    for arg in arguments(COMMANDS[name]):
        spelled = {arg.upper(), arg.upper()[:3]}
        assert any(re.search(rf"\b{s}\b", row) for s in spelled), (name, arg, row)


def test_readme_options_exist() -> None:
    for name, row in command_rows().items():
        for opt in re.findall(r"--[a-z][a-z-]*", row):
            assert opt in long_options(COMMANDS[name]), f"README documents {opt} for {name}"


def test_global_option_claims_hold() -> None:
    # "Every command takes --store" (proof check works without a ledger, so it has none).
    without_store = {n for n, c in COMMANDS.items() if "--store" not in long_options(c)}
    assert without_store == {"proof check", "check-proof", "attest verify", "demo", "whoami"}
    # "Every read command takes --json".
    for name in ("log", "show", "trace", "verify", "checkpoint", "proof check"):
        assert "--json" in long_options(COMMANDS[name]), name


def test_exit_code_table_lists_every_code_and_only_those() -> None:
    codes = set(mlprov.errors.EXIT_CODES.values()) | {0, 2}
    assert set(exit_rows()) == codes
    assert list(exit_rows()) == sorted(exit_rows())


def test_cli_help_lists_every_exit_code() -> None:
    help_text = app.info.help
    assert isinstance(help_text, str)
    listed = {int(n) for n in re.findall(r"\b(\d+) [a-z]", help_text.split("Exit codes:", 1)[1])}
    assert listed == set(exit_rows())


def test_readme_opens_with_the_example_and_the_test_command() -> None:
    before_first_heading = README.split("\n## ", 1)[0]
    blocks = fenced_blocks(before_first_heading)
    assert blocks[:2] == [
        ("bash", "pip install '.[demo]' && mlprov demo"),
        ("bash", "bash .ci/run"),
    ]
    assert fenced_blocks(README)[:2] == blocks[:2]  # nothing above them but the title and prose
    assert (ROOT / "examples" / "quickstart.sh").is_file()
    assert (ROOT / ".ci" / "run").is_file()


def ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_pytest_as_the_last_step() -> None:
    commands = ci_commands()
    pytest_runs = [c for c in commands if re.fullmatch(r"python3? -m pytest( .*)?", c)]
    assert pytest_runs == ["python3 -m pytest"]
    assert commands[-1] == "python3 -m pytest"
    assert "set -euo pipefail" in commands  # a failing step fails the run


def readme_test_command() -> str:
    intro = README.split("bash .ci/run", 1)[0]
    found = re.findall(r"`([^`]*-m pytest[^`]*)`", intro)
    assert found, "README does not name the test command before `bash .ci/run`"
    return found[-1]


def test_readme_names_the_exact_test_command_ci_runs() -> None:
    assert readme_test_command() in ci_commands()


def test_readme_names_a_pytest_command() -> None:
    assert re.fullmatch(r"python3? -m pytest", readme_test_command())


def test_readme_relative_links_resolve() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link]
    assert local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlprov.facade import Ledger

    blocks = [code for lang, code in fenced_blocks(section("## Python")) if lang == "python"]
    assert len(blocks) == 2
    for var in ("MLPROV_STORE", "MLPROV_KEYS"):
        monkeypatch.delenv(var, raising=False)
    Ledger.init(tmp_path).close()
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    ledger, proof = namespace["ledger"], namespace["proof"]
    try:
        assert ledger.size == 1 and namespace["report"].ok
        proof.verify()
        assert proof.event == namespace["src"].digest
    finally:
        ledger.close()


def test_readme_answers_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from mlprov.facade import Ledger

    blocks = [code for lang, code in fenced_blocks(section("## Python")) if lang == "python"]
    for var in ("MLPROV_STORE", "MLPROV_KEYS"):
        monkeypatch.delenv(var, raising=False)
    Ledger.init(tmp_path).close()
    monkeypatch.chdir(tmp_path)
    example = ROOT / "examples" / "pipeline.py"
    subprocess.run([sys.executable, str(example)], check=True, capture_output=True)
    with Ledger.open(cwd=tmp_path) as ledger:
        namespace: dict[str, Any] = {"ledger": ledger}
        exec(compile(blocks[1], "README.md", "exec"), namespace)
        assert "opt-out-removal-v2" in namespace["sentence"]
        assert namespace["proofs"] and "AB 2013" in namespace["disclosure"]


def test_readme_your_own_data_runs_exactly_as_written(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.test_cli import cli_env

    blocks = [code for lang, code in fenced_blocks(section("## Your own data")) if lang == "bash"]
    assert len(blocks) == 1
    env = cli_env(COLUMNS="100")
    env.pop("MLPROV_ACTOR")  # the block sets its own
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[0]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "Model ticket-router-v1 trained on manifest" in out
    assert "NOT IN set" in out  # Ann, proven out by the proof in the answer's JSON
    assert "Yes: the key 2 is in the training set of ticket-router-v1." in out
    assert "its subject is not on opt-outs@2026-06-01" in out
    answer = json.loads((tmp_path / "ann.json").read_text(encoding="utf-8"))
    assert answer["present"] is False and answer["proofs"]
    with mlprov.open(cwd=tmp_path) as ledger:
        assert {e.event.actor for e in ledger.entries()} == {"you@example.com"}


def test_readme_without_a_pipeline_runs_exactly_as_written(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.test_cli import cli_env

    blocks = [
        code for lang, code in fenced_blocks(section("## Without a pipeline")) if lang == "bash"
    ]
    assert len(blocks) == 1
    env = cli_env(COLUMNS="100")
    env.pop("MLPROV_ACTOR", None)  # the block sets its own
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[0]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = " ".join(done.stdout.split())
    assert "recorded dataset ticket-training@v1" in out
    assert "step opt-out-removal-v1: removed 2, shown by the files the manifest names" in out
    assert "ticket-training@v1 for training: clear" in out  # so the build needs no --force
    assert "recorded build ticket-router-v1" in out
    assert "NOT IN set" in out  # Ann, proven out by the proof in the answer's JSON
    assert "Yes: the key 2 is in the training set of ticket-router-v1." in out
    assert "recorded from a hand-written manifest" in out
    assert "Did exclusion run? yes" in out
    answer = json.loads((tmp_path / "ann.json").read_text(encoding="utf-8"))
    assert answer["present"] is False and answer["proofs"]
    assert {t["removed_by"] for t in answer["trails"]} == {"opt-out-removal-v1"}
    with mlprov.open(cwd=tmp_path) as ledger:
        build = ledger.find("ticket-router-v1").entry
        assert build.event.payload["gate"] == "passed" and "forced" not in build.event.payload
