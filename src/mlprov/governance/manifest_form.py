"""The hand-written form of a manifest, read into the full form of
:class:`mlprov.governance.manifest.Manifest` (see that module's doc for the short form).

Safe YAML whose timestamps stay text; steps written as `name-vN key=value ...`; `using` as
what an exclusion consulted; and the schema a document is of, taken as 2 when it uses a
field schema 2 added and names none.
"""

from __future__ import annotations

import re
from typing import Any, Final

import yaml

from mlprov.errors import InputError
from mlprov.ledger.payloads import step_version

__all__ = ["V2_FIELDS", "Loader", "normalise"]

_EXCLUSION = re.compile(r"opt[-_]?out|exclu|remov|erasure", re.I)
#: The fields schema 2 added, by the model that holds them.
V2_FIELDS: Final = {
    "Manifest": ("key", "subject"),
    "SourceRecord": ("key", "subject"),
    "Step": ("on", "removed_keys"),
}


class Loader(yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML whose timestamps stay text, and whose booleans are YAML 1.2's (`true`,
    `false`): what is recorded is what was written, and `on: email` is a key `on`."""


_DROPPED = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _scalar(text: str) -> Any:
    try:
        value = yaml.load(text, Loader=Loader)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool) else text


def _step(item: object) -> object:
    if not isinstance(item, str):
        return item
    name, *words = item.split()
    params: dict[str, Any] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise InputError(
                f"transforms: {item!r}: {word!r} is not key=value",
                "write a step as name-vN key=value ..., e.g. dedupe-v2 threshold=0.84",
            )
        params[key] = _scalar(value)
    step: dict[str, Any] = {"name": name, "params": params}
    if version := step_version(name):
        step["version"] = version
    if _EXCLUSION.search(name):
        step["kind"] = "exclusion"
    return step


def _using(step: object) -> object:
    """A step's `using: REF` (or a list of them) as what it used, in the role `using`."""
    if not isinstance(step, dict) or "using" not in step:
        return step
    out = dict(step)
    using = out.pop("using")
    refs = [using] if isinstance(using, str) else using
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError(
            f"transforms: {out.get('name', '?')}: `using` is a source NAME@VERSION or a list",
            "e.g. using: opt-outs@2026-06-01",
        )
    out["used"] = [*out.get("used", ()), *({"role": "using", "ref": r} for r in refs)]
    return out


def _uses_v2(data: dict[str, Any]) -> bool:
    def has(item: object, fields: tuple[str, ...]) -> bool:
        return isinstance(item, dict) and any(item.get(f) is not None for f in fields)

    return (
        has(data, V2_FIELDS["Manifest"])
        or any(has(s, V2_FIELDS["SourceRecord"]) for s in data.get("source_records") or ())
        or any(has(t, V2_FIELDS["Step"]) for t in data.get("transforms") or ())
    )


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """The hand-written short form in the full form (see the module doc)."""
    out = dict(data)
    if "source" in out:
        if "source_records" in out:
            raise InputError("give `source` or `source_records`, not both", "use source_records")
        out["source_records"] = [out.pop("source")]
    sources = out.get("source_records")
    basis = out.pop("rights_basis", None)
    if isinstance(sources, list):
        records = [{"ref": s} if isinstance(s, str) else s for s in sources]
        if basis is not None:
            records = [
                {**r, "rights_basis": basis}
                if isinstance(r, dict) and r.get("rights_basis") is None
                else r
                for r in records
            ]
        out["source_records"] = records
    elif basis is not None:
        raise InputError("rights_basis is given but no source_records", "name the sources")
    if isinstance(out.get("transforms"), list):
        out["transforms"] = [_using(_step(t)) for t in out["transforms"]]
    if "schema_version" not in out and _uses_v2(out):
        out["schema_version"] = 2  # a hand-written manifest using a field of schema 2 is one
    for short, full, key in (
        ("exclusion_report", "exclusion_reports", "file"),
        ("model_build", "builds", "name"),
    ):
        if short in out:
            if full in out:
                raise InputError(f"give `{short}` or `{full}`, not both", f"use {full}")
            out[full] = [out.pop(short)]
        if isinstance(out.get(full), list):
            out[full] = [{key: x} if isinstance(x, str) else x for x in out[full]]
    return out
