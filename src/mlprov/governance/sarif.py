"""Lint findings as a SARIF 2.1.0 log (OASIS Static Analysis Results Interchange Format).

One run, whose `tool.driver` is mlprov with every lint rule (id, name, short description,
help, default level); one result per finding, at the manifest's file and, where the
manifest text is at hand, at the line of the field or value it is about. A manifest made
from the ledger has no file: its location is the dataset's logical name (`mlprov:NAME`).
The log validates against the official schema (kept in tests/vectors/sarif/).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mlprov.governance.lint import RULES, Finding

__all__ = ["SCHEMA_URI", "sarif_log"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


def _key_line(lines: list[str], field: str) -> int:
    key = re.compile(rf"^\s*-?\s*[\"']?{re.escape(field)}[\"']?\s*:")
    return next((i for i, ln in enumerate(lines) if key.match(ln)), -1)


def _line(text: str, finding: Finding) -> int | None:
    """The 1-based line of the finding's value (after its field, when both are found), else
    of its field as a key, else (a missing field) of `dataset`; None when none is found."""
    lines = text.splitlines()
    start = 0
    if finding.field:
        start = _key_line(lines, finding.field)
        if start < 0 and not finding.value:
            start = _key_line(lines, "dataset")
    if finding.value:
        order = [*range(max(start, 0), len(lines)), *range(max(start, 0))]
        hit: int | None = next((i for i in order if finding.value in lines[i]), None)
        if hit is not None:
            return hit + 1
    return start + 1 if start >= 0 and finding.field else None


def _location(finding: Finding, uri: str, text: str | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    line = _line(text, finding) if text is not None else None
    if line is not None:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def sarif_log(
    findings: Iterable[Finding],
    uri: str,
    text: str | None = None,
    version: str = "0.1.0",
) -> dict[str, Any]:
    """The SARIF 2.1.0 log of `findings` on the manifest at `uri` (a relative path or URI),
    with line regions found in `text`, the manifest's text, when given."""
    rules = list(RULES.values())
    index = {r.id: i for i, r in enumerate(rules)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": f.severity,
            "message": {"text": f"{f.message}. Fix: {f.hint}"},
            "locations": [_location(f, uri, text)],
        }
        for f in findings
    ]
    driver = {
        "name": "mlprov",
        "version": version,
        "rules": [
            {
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.description},
                "help": {"text": r.hint},
                "defaultConfiguration": {"level": r.severity},
                "properties": {"needsLedger": r.needs_ledger},
            }
            for r in rules
        ],
    }
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
