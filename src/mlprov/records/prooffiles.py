"""What a proof file holds: one proof, a list of them, or an answer of `mlprov why`.

Set proofs (:mod:`mlprov.records.setproofs`) and pair proofs (:mod:`mlprov.records.pairs`)
are told apart by their ``format``; an answer's ``proofs`` are checked against the record
root of its dataset, its ``links`` against the pairs root each names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlprov.errors import InputError
from mlprov.records.pairs import PAIR_PROOF, PairProof, load_pair_proof
from mlprov.records.setproofs import MembershipProof, NonMembershipProof, load_set_proof

__all__ = ["AnyProof", "Claimed", "proofs_in"]

AnyProof = MembershipProof | NonMembershipProof | PairProof


@dataclass(frozen=True)
class Claimed:
    """A proof found in a file, with what the file claims of it (None: claims nothing)."""

    proof: AnyProof
    present: bool | None = None  # the answer's "in"
    root: str | None = None  # the record root (pairs root, for a pair) the answer names, hex


def _load(item: Any, source: str) -> AnyProof:
    data = json.dumps(item).encode()
    if isinstance(item, dict) and item.get("format") == PAIR_PROOF:
        return load_pair_proof(data, source)
    return load_set_proof(data, source)


def _links(parsed: dict[str, Any], source: str) -> list[Claimed]:
    """The pair proofs of an answer's `links`, each against the pairs root it names."""
    found = []
    links = parsed.get("links", [])
    for n, item in enumerate(links if isinstance(links, list) else [None], 1):
        if not isinstance(item, dict) or "proof" not in item or "pairs_root" not in item:
            raise InputError(
                f"{source}: link {n} of the answer is not an object with a `proof`",
                "give the JSON of `mlprov why --format json` as it was written",
            )
        proof = load_pair_proof(json.dumps(item["proof"]).encode(), f"{source}: link {n}")
        found.append(Claimed(proof, True, str(item["pairs_root"]).removeprefix("sha256:")))
    return found


def proofs_in(parsed: Any, source: str = "proof") -> list[Claimed]:
    """Every proof in a parsed JSON file: one proof, a list of them, or an answer of
    `mlprov why --format json` (its `proofs`, each with the `in` it claims, against the
    record root of the answer's dataset, and its `links`, pair proofs each against the
    pairs root it names). InputError when the file holds none."""
    if isinstance(parsed, dict) and isinstance(parsed.get("proofs"), list):
        dataset = parsed.get("dataset")
        root = dataset.get("record_root") if isinstance(dataset, dict) else None
        root_hex = str(root).removeprefix("sha256:") if root else None
        found = []
        for n, item in enumerate(parsed["proofs"], 1):
            if not isinstance(item, dict) or "proof" not in item:
                raise InputError(
                    f"{source}: proof {n} of the answer is not an object with a `proof`",
                    "give the JSON of `mlprov why --format json` as it was written",
                )
            proof = load_set_proof(json.dumps(item["proof"]).encode(), f"{source}: proof {n}")
            claim = item.get("in")
            found.append(Claimed(proof, claim if isinstance(claim, bool) else None, root_hex))
        found += _links(parsed, source)
        if not found:
            raise InputError(
                f"{source} is an answer that carries no proof",
                "an answer carries proofs when its record set is here: ask `why` again there",
            )
        return found
    items = parsed if isinstance(parsed, list) else [parsed]
    return [
        Claimed(_load(item, f"{source}: proof {n}" if len(items) > 1 else source))
        for n, item in enumerate(items, 1)
    ]
