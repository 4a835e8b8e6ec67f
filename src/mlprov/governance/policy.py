"""Policy: which gates a source or dataset must pass before a use, and the check itself.

`check(ledger, target, use)` returns every finding of the gates chosen for `use`;
`require_clear` raises GateBlocked with all of them. The gates are in :mod:`mlprov.governance.gates`
(MPG001…); they compose with :func:`all_of` (every member must pass) and :func:`any_of`
(one passing member is enough).

Default gates per use (:data:`DEFAULT_GATES`); any other use gets the training gates:

- `training`, `benchmark-publication`: MPG001–MPG006 and MPG008 (lint errors);
- `incident-reproduction`: MPG002 (a quarantine's allowed uses) and MPG004 (the same bytes).

A policy file, TOML or JSON by its suffix, chooses gates per use; a use it does not name
keeps its defaults, and `"*"` names every other use. Gates are named by id or name, and a
table `{any_of = [...]}` or `{all_of = [...]}` composes them::

    version = 1

    [uses.training]
    gates = ["MPG001", "MPG002", "MPG003", "MPG004", "MPG005", "MPG006", "separate-duties"]

    [uses.benchmark-publication]
    gates = ["quarantined", "rejected", {any_of = ["MPG001", "MPG007"]}]

Without an explicit file, `.mlprov/policy.toml` is used when it exists, so `mlprov check`
and `ledger.build` apply the same policy.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Protocol

from mlprov.digest import Digest
from mlprov.errors import GateBlocked, InputError, NotFoundError
from mlprov.governance.gates import GATES, Finding
from mlprov.governance.review import check_use, target_of
from mlprov.ledger import names
from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry

__all__ = [
    "DEFAULT_GATES",
    "POLICY_FILE",
    "AllOf",
    "AnyOf",
    "Finding",
    "Gate",
    "Policy",
    "all_of",
    "any_of",
    "build_gates",
    "check",
    "load_policy",
    "parse_policy",
    "require_clear",
]

#: The policy file a ledger folder may hold.
POLICY_FILE = "policy.toml"
_VERSION = 1


class Gate(Protocol):
    """Anything with an id that checks a target for a use: a rule, or a composition."""

    @property
    def id(self) -> str: ...

    def check(self, ledger: LedgerCore, target: Entry, use: str) -> list[Finding]: ...


@dataclass(frozen=True)
class AllOf:
    """Passes when every gate passes; reports every finding of every gate."""

    gates: tuple[Gate, ...]

    @property
    def id(self) -> str:
        return "all_of(" + ", ".join(g.id for g in self.gates) + ")"

    def check(self, ledger: LedgerCore, target: Entry, use: str) -> list[Finding]:
        return [f for gate in self.gates for f in gate.check(ledger, target, use)]


@dataclass(frozen=True)
class AnyOf:
    """Passes when at least one gate passes; otherwise reports the findings of all."""

    gates: tuple[Gate, ...]

    @property
    def id(self) -> str:
        return "any_of(" + ", ".join(g.id for g in self.gates) + ")"

    def check(self, ledger: LedgerCore, target: Entry, use: str) -> list[Finding]:
        found: list[Finding] = []
        for gate in self.gates:
            mine = gate.check(ledger, target, use)
            if not mine:
                return []
            found += mine
        return found


def all_of(*gates: Gate) -> AllOf:
    return AllOf(tuple(gates))


def any_of(*gates: Gate) -> AnyOf:
    if not gates:
        raise InputError("any_of needs at least one gate", "name the gates to choose from")
    return AnyOf(tuple(gates))


def _ids(*ids: str) -> tuple[Gate, ...]:
    return tuple(GATES[i] for i in ids)


_TRAINING = _ids("MPG001", "MPG002", "MPG003", "MPG004", "MPG005", "MPG006", "MPG008")
#: The gates of each use when no policy file chooses; any other use gets `training`'s.
DEFAULT_GATES: Final[Mapping[str, tuple[Gate, ...]]] = MappingProxyType(
    {
        "training": _TRAINING,
        "benchmark-publication": _TRAINING,
        "incident-reproduction": _ids("MPG002", "MPG004"),
    }
)


@dataclass(frozen=True)
class Policy:
    """The gates chosen per use; uses it does not name keep their defaults."""

    uses: Mapping[str, Gate] = field(default_factory=dict)
    origin: str = "defaults"  # the file it was read from

    def gate_for(self, use: str) -> Gate:
        chosen = self.uses.get(use) or self.uses.get("*")
        if chosen is not None:
            return chosen
        return AllOf(DEFAULT_GATES.get(use, DEFAULT_GATES["training"]))


# -- the policy file -------------------------------------------------------------------------


def _gate(spec: object, where: str) -> Gate:
    if isinstance(spec, str):
        found = GATES.get(spec) or next((g for g in GATES.values() if g.name == spec), None)
        if found is None:
            known = ", ".join(f"{g.id} ({g.name})" for g in GATES.values())
            raise InputError(f"{where}: unknown gate {spec!r}", f"known gates: {known}")
        return found
    if isinstance(spec, dict) and len(spec) == 1:
        ((how, members),) = spec.items()
        if how in ("all_of", "any_of") and isinstance(members, list) and members:
            gates = tuple(_gate(m, f"{where}.{how}[{i}]") for i, m in enumerate(members))
            return AllOf(gates) if how == "all_of" else AnyOf(gates)
    raise InputError(
        f"{where}: a gate is an id, a name, or {{all_of = [...]}} / {{any_of = [...]}}",
        'e.g. gates = ["MPG001", {any_of = ["MPG004", "MPG005"]}]',
    )


def parse_policy(data: object, origin: str) -> Policy:
    """A policy from its parsed TOML or JSON document (see the module doc)."""
    hint = "see the policy file format in README (Reviews, quarantine and gates)"
    if not isinstance(data, dict) or set(data) - {"version", "uses"}:
        raise InputError(f"{origin}: a policy has only `version` and `uses`", hint)
    if data.get("version", _VERSION) != _VERSION:
        raise InputError(f"{origin}: policy version {data['version']!r} is not supported", hint)
    uses = data.get("uses", {})
    if not isinstance(uses, dict):
        raise InputError(f"{origin}: `uses` must be a table of uses", hint)
    chosen: dict[str, Gate] = {}
    for use, body in uses.items():
        where = f"{origin}: uses.{use}"
        if use != "*":
            check_use(use)
        if not isinstance(body, dict) or set(body) != {"gates"}:
            raise InputError(f"{where} must hold exactly `gates = [...]`", hint)
        if not isinstance(body["gates"], list):
            raise InputError(f"{where}.gates must be a list", hint)
        gates = tuple(_gate(g, f"{where}.gates[{i}]") for i, g in enumerate(body["gates"]))
        chosen[use] = AllOf(gates)
    return Policy(MappingProxyType(chosen), origin)


def load_policy(path: Path | str | None = None, *, ledger: LedgerCore | None = None) -> Policy:
    """The policy in `path` (`.toml` or `.json`); else the ledger folder's `policy.toml`,
    if there is one; else the defaults."""
    if path is None:
        home = ledger.location.home if ledger is not None and ledger.location else None
        if home is None or not (home / POLICY_FILE).is_file():
            return Policy()
        path = home / POLICY_FILE
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no policy file at {path}", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the policy file {path}: {exc}") from None
    try:
        if path.suffix == ".toml":
            data: object = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise InputError(f"{path} is neither .toml nor .json", "name the policy file so")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the policy file {path} does not parse: {exc}") from None
    return parse_policy(data, str(path))


# -- checking --------------------------------------------------------------------------------


def _policy(policy: Policy | Path | str | None, ledger: LedgerCore) -> Policy:
    return policy if isinstance(policy, Policy) else load_policy(policy, ledger=ledger)


def check(
    ledger: LedgerCore,
    target: Entry | Digest | str,
    use: str = "training",
    policy: Policy | Path | str | None = None,
) -> list[Finding]:
    """Every finding of the gates `policy` chooses for `use` on the source or dataset
    `target` (name, `name@version`, digest or Entry); none means it is clear."""
    entry = target_of(ledger, target)
    return _policy(policy, ledger).gate_for(check_use(use)).check(ledger, entry, use)


def require_clear(
    ledger: LedgerCore,
    target: Entry | Digest | str,
    use: str = "training",
    policy: Policy | Path | str | None = None,
) -> None:
    """Raise GateBlocked, with every finding, unless `target` is clear for `use`."""
    found = check(ledger, target, use, policy)
    if found:
        name = names.label(target_of(ledger, target))
        raise GateBlocked(
            f"{name} is blocked for {use}: " + "; ".join(str(f) for f in found),
            f"resolve each finding; `mlprov check {name} --use {use}` shows how",
            tuple(str(f) for f in found),
        )


def build_gates(
    ledger: LedgerCore, use: str = "training", policy: Policy | Path | str | None = None
) -> list[Callable[[LedgerCore, Entry], Sequence[str]]]:
    """The gates of `use` as `record_build` takes them: `(ledger, dataset) -> reasons`."""
    gate = _policy(policy, ledger).gate_for(check_use(use))

    def run(led: LedgerCore, dataset: Entry) -> list[str]:
        return [str(f) for f in gate.check(led, dataset, use)]

    return [run]
