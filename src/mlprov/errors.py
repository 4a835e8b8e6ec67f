"""The one exception hierarchy of mlprov.

Every error a user can meet is one of these, with a message that says what is wrong and a
hint that says how to fix it. The command line maps each class to its exit code here, in
one place, so that a tamper alarm and a typo never share a code::

    MlprovError                      exit 1  (an unexpected failure; a bug if you see it)
    ├── InputError                   exit 3  bad input: a malformed value, file or argument
    │   ├── NotFoundError            exit 3  an unknown digest, name or file
    │   ├── KeyFormatError           exit 3  a malformed key file
    │   └── CheckpointFormatError    exit 3  a malformed checkpoint or signed note
    ├── ConflictError                exit 5  a refused change (duplicate, unknown parent)
    │   └── DuplicateError           exit 5  the event is already recorded
    ├── StoreError                   exit 4  the store cannot be opened or used
    ├── MissingExtraError            exit 6  an optional dependency is not installed
    │   └── MissingProgramError      exit 6  a program it runs is not installed (Graphviz)
    ├── GateBlocked                  exit 7  a gate refuses the use (a build on blocked data)
    └── IntegrityError               exit 10 recorded history does not verify
        ├── ProofError               exit 10 an inclusion or consistency proof does not verify
        └── SignatureError           exit 10 a signature does not verify

Exit code 2 is the command line's own usage error (unknown option, missing argument).

A hint speaks the language of the face that shows it: `hint` is for a Python caller
("pass force=True"); where the command line's way differs, the error also carries
`cli_hint` ("pass --force"), which `mlprov` prints instead.
"""

from __future__ import annotations

__all__ = [
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


class MlprovError(Exception):
    """Base of every mlprov error: a user-facing message and a hint on how to fix it."""

    exit_code = 1

    def __init__(
        self, message: str, hint: str | None = None, *, cli_hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.cli_hint = cli_hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(MlprovError):
    """A value, file or argument given by the user is malformed."""

    exit_code = 3


class NotFoundError(InputError):
    """A digest, name or file that was asked for does not exist."""


class KeyFormatError(InputError):
    """A key file is not a well-formed signer or verifier key."""


class CheckpointFormatError(InputError):
    """A checkpoint or signed note is not well formed."""


class StoreError(MlprovError):
    """The store cannot be opened or used (corrupt, foreign, unreachable)."""

    exit_code = 4


class ConflictError(MlprovError):
    """The ledger refuses a change: a duplicate event, an unknown parent."""

    exit_code = 5


class DuplicateError(ConflictError):
    """An event (or row) is already recorded; the ledger records each event once."""


class MissingExtraError(MlprovError):
    """An optional dependency is missing; the message names the extra to install."""

    exit_code = 6

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this needs the Python package {package!r}, which is not installed",
            f"install it with: pip install 'mlprov[{extra}]'",
        )


class MissingProgramError(MissingExtraError):
    """A program mlprov runs is not installed (Graphviz's `dot`); the hint says how to
    install it."""

    def __init__(
        self, program: str, package: str, install: str, *, cli_hint: str | None = None
    ) -> None:
        MlprovError.__init__(
            self,
            f"this needs the program {program!r} ({package}), which is not on PATH",
            install,
            cli_hint=cli_hint,
        )


class GateBlocked(MlprovError):
    """A gate refuses the use: for example a build on a quarantined or unreviewed source.

    `findings` lists each reason; a caller may override with `force`, which is recorded.
    """

    exit_code = 7

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        findings: tuple[str, ...] = (),
        *,
        cli_hint: str | None = None,
    ) -> None:
        super().__init__(message, hint, cli_hint=cli_hint)
        self.findings = findings


class IntegrityError(MlprovError):
    """Recorded history does not verify: something was changed, dropped or reordered."""

    exit_code = 10


class ProofError(IntegrityError):
    """An inclusion, consistency, membership or non-membership proof does not verify."""


class SignatureError(IntegrityError):
    """A signature does not verify against the key it names."""


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        MlprovError,
        InputError,
        NotFoundError,
        KeyFormatError,
        CheckpointFormatError,
        StoreError,
        ConflictError,
        DuplicateError,
        MissingExtraError,
        MissingProgramError,
        GateBlocked,
        IntegrityError,
        ProofError,
        SignatureError,
    )
}
