"""The public Python API and the error hierarchy, pinned.

A change here is a change of mlprov's public contract: update these lists on purpose, and
README and CHANGELOG with them.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import mlprov
import mlprov.errors as errors

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mlprov"

PUBLIC_API = [
    "ConflictError",
    "Digest",
    "Entry",
    "Event",
    "EventType",
    "InputError",
    "IntegrityError",
    "Ledger",
    "MlprovError",
    "NotFoundError",
    "StoreError",
    "VerifyReport",
    "__version__",
    "open",
    "transform",
]

ERRORS_API = [
    "EXIT_CODES",
    "CheckpointFormatError",
    "ConflictError",
    "DuplicateError",
    "GateBlocked",
    "InputError",
    "IntegrityError",
    "KeyFormatError",
    "MissingExtraError",
    "MissingProgramError",
    "MlprovError",
    "NotFoundError",
    "ProofError",
    "SignatureError",
    "StoreError",
]

EXIT_CODES = {
    "MlprovError": 1,
    "InputError": 3,
    "NotFoundError": 3,
    "KeyFormatError": 3,
    "CheckpointFormatError": 3,
    "StoreError": 4,
    "ConflictError": 5,
    "DuplicateError": 5,
    "MissingExtraError": 6,
    "MissingProgramError": 6,
    "GateBlocked": 7,
    "IntegrityError": 10,
    "ProofError": 10,
    "SignatureError": 10,
}

# What README's exit-code table must say, in the row of each class's code.
README_WORDS = {
    "MlprovError": "unexpected error",
    "InputError": "bad input",
    "NotFoundError": "not found",
    "KeyFormatError": "key",
    "CheckpointFormatError": "checkpoint",
    "StoreError": "store cannot be opened",
    "ConflictError": "refuses the change",
    "DuplicateError": "duplicate event",
    "MissingExtraError": "optional dependency",
    "MissingProgramError": "program",
    "GateBlocked": "gate blocks",
    "IntegrityError": "integrity failure",
    "ProofError": "proof does not verify",
    "SignatureError": "does not verify",
}

# Exception classes inside mlprov that are allowed not to derive from MlprovError: private
# control flow that never leaves its module. Adding one is a decision, not an accident.
PRIVATE_EXCEPTIONS = {"mlprov.digest._Refused"}


def readme_exit_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(.+?)\s*\|\s*$", section, re.M)
    return {int(code): meaning for code, meaning in rows}


def error_classes() -> dict[str, type[errors.MlprovError]]:
    return {
        name: obj
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }


def all_modules() -> list[str]:
    names = ["mlprov"]
    names += [m.name for m in pkgutil.walk_packages(mlprov.__path__, "mlprov.")]
    return names


def test_public_api_is_pinned_and_sorted() -> None:
    assert mlprov.__all__ == PUBLIC_API
    assert sorted(mlprov.__all__) == mlprov.__all__


@pytest.mark.parametrize("name", PUBLIC_API)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from mlprov import {name}", namespace)
    assert namespace[name] is getattr(mlprov, name)


def test_version_is_the_package_version() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{mlprov.__version__}"' in pyproject


def test_open_is_the_ledger_opener() -> None:
    assert callable(mlprov.open)
    assert inspect.signature(mlprov.open).parameters.keys() == {"store", "cwd", "token"}


def test_errors_api_is_pinned() -> None:
    assert errors.__all__ == ERRORS_API
    for name in errors.__all__:
        assert hasattr(errors, name), name


def test_every_error_class_is_exported_and_has_its_exit_code() -> None:
    classes = error_classes()
    assert set(classes) == set(EXIT_CODES)
    assert set(classes) <= set(errors.__all__)
    assert errors.EXIT_CODES == EXIT_CODES
    for name, cls in classes.items():
        assert cls.exit_code == EXIT_CODES[name], name


def test_errors_reexported_by_mlprov_are_the_same_objects() -> None:
    for name in PUBLIC_API:
        if name in EXIT_CODES:
            assert getattr(mlprov, name) is getattr(errors, name)


def test_readme_exit_code_table_matches_every_error_class() -> None:
    table = readme_exit_codes()
    assert set(README_WORDS) == set(EXIT_CODES), "describe the new error class here"
    for name, code in EXIT_CODES.items():
        assert code in table, f"README has no row for exit code {code} ({name})"
        assert README_WORDS[name] in table[code].lower(), (name, code, table[code])


def test_exit_codes_are_distinct_by_meaning() -> None:
    # A tamper alarm and a typo never share a code; neither do a usage error and success.
    integrity = {"IntegrityError", "ProofError", "SignatureError"}
    assert {EXIT_CODES[n] for n in integrity} == {10}
    assert 10 not in {c for n, c in EXIT_CODES.items() if n not in integrity}
    assert len({EXIT_CODES[n] for n in ("InputError", "StoreError", "ConflictError")}) == 3
    assert {0, 2}.isdisjoint(EXIT_CODES.values())


def test_error_carries_message_and_hint() -> None:
    exc = errors.NotFoundError("no event sha256:00", "see `mlprov log`")
    assert (exc.message, exc.hint) == ("no event sha256:00", "see `mlprov log`")
    assert str(exc) == "no event sha256:00 (see `mlprov log`)"
    assert str(errors.StoreError("broken")) == "broken"
    extra = errors.MissingExtraError("psycopg", "postgres")
    assert "psycopg" in extra.message and "mlprov[postgres]" in (extra.hint or "")


def test_one_root_every_mlprov_exception_is_an_mlprov_error() -> None:
    seen: set[str] = set()
    for modname in all_modules():
        module = importlib.import_module(modname)
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and issubclass(obj, BaseException)):
                continue
            if obj.__module__ != modname:
                continue  # imported, not defined here
            qualified = f"{modname}.{name}"
            seen.add(qualified)
            if qualified in PRIVATE_EXCEPTIONS:
                assert name.startswith("_")
                continue
            assert issubclass(obj, errors.MlprovError), f"{qualified} is not an MlprovError"
            # exactly one root: no second hierarchy (ValueError, OSError...) mixed in
            outside = [b for b in obj.__mro__ if not b.__module__.startswith("mlprov")]
            assert outside == [Exception, BaseException, object], qualified
    assert seen >= PRIVATE_EXCEPTIONS, "an allowed private exception no longer exists"
    assert "mlprov.errors.MlprovError" in seen


def test_no_exception_class_hides_in_a_function_either() -> None:
    """Catch classes the import walk cannot see: any class deriving a builtin exception."""
    builtin_exceptions = {
        name
        for name, obj in vars(builtins).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }
    allowed = {("errors.py", "MlprovError"), ("digest.py", "_Refused")}
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                base_name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
                if base_name in builtin_exceptions:
                    found.add((path.name, node.name))
    assert found == allowed
