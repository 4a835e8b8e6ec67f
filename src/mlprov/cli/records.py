"""Record commands: fingerprint a source, prove a record or subject in or out, check a proof,
diff sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlprov.cli.helptext import App, usage_error
from mlprov.cli.options import (
    ActorOpt,
    JsonOpt,
    StoreOpt,
    actor_for,
    read_file,
    record_set_of,
    recording,
    write_output,
)
from mlprov.cli.render import emit_json, err, out, progress_bar
from mlprov.errors import InputError, NotFoundError, ProofError
from mlprov.validation import hex_digest, loads_json, parse_period, split_versioned

sets_app = App(help="Record sets: compare what two sources or datasets hold.")


def _schema(text: str | None) -> Any:
    """`{"col": "int64", ...}` (Arrow type names) for readers that need one, such as CSV."""

    if text is None:
        return None
    import pyarrow as pa

    hint = 'give a JSON object of columns and Arrow types, e.g. {"id": "int64"}, or @FILE'
    raw = read_file(Path(text[1:]), "schema") if text.startswith("@") else text.encode()
    spec = loads_json(raw, "--schema")
    if not isinstance(spec, dict) or not spec:
        raise InputError("--schema is not a JSON object of columns and their types", hint)
    fields = []
    for column, kind in spec.items():
        try:
            fields.append((column, pa.type_for_alias(kind)))
        except (ValueError, TypeError, KeyError):
            raise InputError(
                f"--schema: column {column!r} has no Arrow type {kind!r}",
                "use an Arrow type name: string, int64, float64, bool, date32, timestamp[us]",
            ) from None
    return pa.schema(fields)


def _row_count(path: Path) -> int | None:
    """Rows in the file when its format says so up front (Parquet), for the progress bar."""
    if path.suffix.lower() != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):
        return None  # the reader will say what is wrong with the file


def _check_facts(name: str, version: str, facts: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from mlprov.ledger.events import validation_message
    from mlprov.ledger.payloads import SourcePayload

    given = {k: v for k, v in facts.items() if v is not None}
    try:
        SourcePayload(name=name, version=version, **given)
    except ValidationError as exc:
        raise InputError(
            f"invalid source facts: {validation_message(exc, 'source')}",
            "see `mlprov fingerprint --help` for the values each option takes",
        ) from None


def fingerprint(
    path: Annotated[Path, typer.Argument(help="Parquet, JSONL, CSV (with --schema) or Arrow.")],
    name: Annotated[
        str, typer.Option(metavar="NAME@VERSION", help="The source, e.g. tickets@2026-05.")
    ],
    key: Annotated[
        str | None, typer.Option(metavar="COLUMN", help="Column of stable record keys.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(metavar="COLUMN", help="Column naming whom a record is about.")
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            metavar="JSON|@FILE", help="Column types, as JSON or @FILE (see above); CSV needs it."
        ),
    ] = None,
    rights_basis: Annotated[str | None, typer.Option(help="Why this data may be used.")] = None,
    license: Annotated[str | None, typer.Option(help="SPDX id or licence text.")] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for the source.")] = None,
    personal_data: Annotated[bool | None, typer.Option(help="Does it hold personal data?")] = None,
    collected: Annotated[
        str | None,
        typer.Option(metavar="START..END", help="Collection period (END may be `ongoing`)."),
    ] = None,
    acquisition: Annotated[
        str | None,
        typer.Option(help="public, licensed, purchased, crawled, user, synthetic or other."),
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Why the data was collected.")] = None,
    modality: Annotated[
        str | None, typer.Option(help="The kind of data, e.g. text, image, audio or video.")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="A language of the data; repeatable.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What its data points are.")] = None,
    copyright: Annotated[
        str | None, typer.Option(help="protected, public_domain or mixed.")
    ] = None,
    aggregate_consumer_info: Annotated[
        bool | None, typer.Option(help="Does it hold aggregate consumer information?")
    ] = None,
    uri: Annotated[
        str | None,
        typer.Option(
            metavar="URI", help="Where others find it (default: its path inside the project)."
        ),
    ] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Fingerprint a source and record it.

    Records its byte digest, record count and record-set root, with the facts given (those
    the disclosures of `mlprov report` ask for).

    CSV files need --schema: a JSON object of column names to Arrow type names, such as
    {"id": "int64", "text": "string", "score": "float64", "at": "timestamp[s]"}. The type
    names are Arrow's (pyarrow.type_for_alias), among them bool, int8, int16, int32, int64,
    uint8 to uint64, float32, float64, string, large_string, binary, date32, date64 and
    timestamp[s], timestamp[ms], timestamp[us] or timestamp[ns]."""
    from mlprov.digest import Digest
    from mlprov.records.fingerprint import fingerprint as take
    from mlprov.records.readers import regular_file

    source_name, version = split_versioned(name)
    regular_file(path)  # at once: a FIFO or device is refused before anything opens it
    period = list(parse_period(collected)) if collected is not None else None
    facts = {
        "collected": period,
        "acquisition": acquisition,
        "purpose": purpose,
        "modality": modality,
        "languages": language or None,
        "description": description,
        "copyright": copyright,
        "aggregate_consumer_info": aggregate_consumer_info,
    }
    _check_facts(source_name, version, facts)  # before reading: a typo costs no full read
    types = _schema(schema)
    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        hasher = ledger.subject_hasher() if subject else None
        total = _row_count(path)
        with progress_bar(f"fingerprinting {path.name}", not json and err.is_terminal) as cb:
            found = take(
                path,
                key=key,
                subject=subject,
                hasher=hasher,
                schema=types,
                progress=None if cb is None else (lambda rows: cb(rows, total or rows)),
            )
        payload = {
            "name": source_name,
            "version": version,
            "rights_basis": rights_basis,
            "license": license,
            "owner": owner,
            "personal_data": personal_data,
            **facts,
            "uri": uri if uri is not None else ledger.project_path(path),
            "byte_digest": found.byte_digest,
            "record_count": found.rows,
            "record_root": Digest.from_raw(found.records.root),
            "pairs_root": Digest.from_raw(found.records.pairs.root),
        }
        entry = ledger.recorded_source(payload)  # the same content again: nothing new
        fresh = entry is None
        saved = found.records.save(ledger.blobs_dir)  # before the event: never a dangling root
        if entry is None:
            entry = ledger.record("source", payload, actor=actor)
    if json:
        emit_json(
            {
                **entry.to_json(),
                "record_set": str(saved),
                "members": found.records.size,
                "recorded": fresh,
            }
        )
    else:
        said = "recorded" if fresh else "already recorded (nothing new recorded):"
        out.print(f"{said} source {name} {entry.digest}")
        out.print(f"  rows         {found.rows:,} ({found.records.size:,} distinct records)")
        out.print(f"  bytes        {found.byte_digest}")
        out.print(f"  record root  {found.records.root.hex()}")


def _targets(records: Any, record: str | None, digest: str | None, key: str | None) -> list[bytes]:
    """The record digests to prove: one for --record or --digest, every match for --key."""
    import orjson

    from mlprov.digest import Digest

    if record is not None:
        from mlprov.records.canonical import record_digest

        try:
            value = orjson.loads(record)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"--record is not JSON: {exc}", "quote it for the shell") from None
        if not isinstance(value, dict):
            raise InputError("--record must be a JSON object (one row)")
        return [record_digest(value)]
    if digest is not None:
        return [Digest.parse(digest).raw]
    assert key is not None
    found = sorted(set(records.where("key", key).column("digest").to_pylist()))
    if not found:
        raise NotFoundError(
            f"no record has the key {key!r} in this set",
            "keys are kept beside the set, not committed to by its root: an absent key "
            "cannot be proven absent; prove a record (--record), digest or --subject instead",
        )
    return found


def prove(
    in_: Annotated[
        str,
        typer.Option(
            "--in",
            metavar="REF",
            help="A source or dataset (NAME, NAME@VERSION or a digest), or a set root.",
        ),
    ],
    record: Annotated[
        str | None, typer.Option(metavar="JSON", help="The record as a JSON object.")
    ] = None,
    digest: Annotated[str | None, typer.Option(metavar="DIGEST", help="A record digest.")] = None,
    key: Annotated[str | None, typer.Option(metavar="KEY", help="A record key.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="A subject (hashed here): is it named by any record?")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the proof here.")] = None,
    store: StoreOpt = None,
) -> None:
    """Prove a record or a subject in or out of a record set.

    Membership or non-membership; give exactly one of --record, --digest, --key and
    --subject."""
    import orjson

    from mlprov.facade import Ledger

    if sum(x is not None for x in (record, digest, key, subject)) != 1:
        raise usage_error("give exactly one of --record, --digest, --key and --subject")
    with Ledger.open(store) as ledger:
        records = record_set_of(ledger, in_, whole=False)
        proofs: list[Any]
        if subject is not None:
            # One proof about the subject's hash: some row names it, or none does.
            proofs = [records.prove_subject(ledger.subject_hasher().hash(subject))]
        else:
            found = _targets(records, record, digest, key)
            proofs = [records.prove(d) for d in found]
            if key is not None:  # and that each of them carries the key
                proofs += _pair_proofs(ledger, in_, records, found, key)
    data = (
        proofs[0].dumps()
        if len(proofs) == 1
        else orjson.dumps([orjson.loads(p.dumps()) for p in proofs], option=orjson.OPT_INDENT_2)
        + b"\n"
    )
    kinds = sorted({f"{p.kind} {_PROOF_WORDS.get(type(p).__name__, 'proof')}" for p in proofs})
    write_output(data, output, f": {len(proofs)} {' and '.join(kinds)}")


_PROOF_WORDS = {
    "MembershipProof": "membership proof",
    "NonMembershipProof": "non-membership proof",
    "PairProof": "pair proof",
}


def _pair_proofs(ledger: Any, ref: str, records: Any, digests: list[bytes], key: str) -> list[Any]:
    """Pair proofs (ADR 0020) that each record carries the key, when `ref` names an event
    with a pairs root; none for a bare set root or an event recorded before pairs were
    committed."""
    from mlprov.cli.options import resolve
    from mlprov.digest import Digest

    if ledger.stored_set(ref) is not None:
        return []
    root = resolve(ledger, ref, ("source", "dataset")).event.payload.get("pairs_root")
    if not root:
        return []
    found = [records.prove_pair("key", d, key, Digest(root).raw) for d in sorted(set(digests))]
    return [p for p in found if p is not None]


def check_proof(
    file: Annotated[Path, typer.Argument(help="A record proof file (or a list of them).")],
    root: Annotated[
        str | None, typer.Option(metavar="HEX", help="The set root you expect.")
    ] = None,
    pairs_root: Annotated[
        str | None,
        typer.Option(metavar="HEX", help="The pairs root you expect, for pair proofs."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check record and subject proofs on their own.

    Only the set root is needed, not the ledger. FILE may also be the JSON of `mlprov why`:
    every proof in it is checked against the record root the answer names, and every pair
    proof (a record carries a key, or names a subject) against the pairs root of the event
    it names."""
    from rich.text import Text

    from mlprov.digest import shorten
    from mlprov.records.pairs import PairProof
    from mlprov.records.prooffiles import proofs_in
    from mlprov.records.setproofs import MembershipProof

    pinned = hex_digest(root, "--root") if root is not None else None
    pairs = hex_digest(pairs_root, "--pairs-root") if pairs_root is not None else None
    parsed = loads_json(read_file(file, "proof"), str(file))
    results: list[dict[str, Any]] = []
    claimed = proofs_in(parsed, str(file))
    for found in claimed:
        proof = found.proof
        if isinstance(proof, PairProof):
            results.append(_check_pair(found, pairs, file))
            continue
        proof.verify(_expected_root(pinned, found.root, proof.root, "record", file))
        if found.present is not None and found.present != isinstance(proof, MembershipProof):
            raise ProofError(
                f"{file} says the {proof.noun} {shorten(proof.digest, 16)} is "
                f"{'in' if found.present else 'not in'} the set, but its proof shows otherwise",
                "the answer was altered: ask `mlprov why` again",
            )
        results.append(
            {
                "format": proof.format,
                "kind": proof.kind,
                "digest": proof.digest,
                "root": proof.root,
                "in": isinstance(proof, MembershipProof),
            }
        )
    if json:
        emit_json({"ok": True, "proofs": results})
    else:
        for r in results:
            if "pair" in r:
                out.print(Text.assemble(("valid ", "bold green"), r["pair"]))
                continue
            verdict = "IN" if r["in"] else "NOT IN"
            out.print(
                Text.assemble(
                    ("valid ", "bold green"),
                    f"{r['kind']} {shorten(r['digest'], 16)} {verdict} set "
                    f"{shorten(r['root'], 16)}",
                )
            )
        if root is None and not any(c.root for c in claimed):
            err.print("note: checked against the root inside the proof; pass --root to pin it")
        elif root is None:
            err.print("note: checked against the record root the answer names")


def _check_pair(found: Any, pinned: bytes | None, file: Path) -> dict[str, Any]:
    """Check a pair proof against the pinned pairs root, the one the answer names, or
    its own; its result for the output."""
    from mlprov.digest import shorten

    proof = found.proof
    proof.verify(_expected_root(pinned, found.root, proof.root, "pairs", file))
    what = (
        f"key {proof.key}"
        if proof.key is not None
        else f"subject {shorten(proof.subject or '', 16)}"
    )
    return {
        "format": proof.format,
        "kind": f"{proof.kind}-pair",
        "digest": proof.digest,
        "key": proof.key,
        "subject": proof.subject,
        "root": proof.root,
        "in": True,
        "pair": f"record {shorten(proof.digest, 16)} with {what} IN pairs "
        f"{shorten(proof.root, 16)}",
    }


@sets_app.command("diff")
def sets_diff(
    a: Annotated[str, typer.Argument(help="NAME@VERSION or set root.")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION or set root.")],
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Records and subjects added and removed from A to B."""
    from mlprov.facade import Ledger
    from mlprov.records.sets import diff

    with Ledger.open(store) as ledger:
        change = diff(record_set_of(ledger, a), record_set_of(ledger, b))
    if json:
        emit_json(
            {
                "added": change.added_count,
                "removed": change.removed_count,
                "subjects_added": change.subjects_added,
                "subjects_removed": change.subjects_removed,
                "added_records": [d.hex() for d in change.added],
                "removed_records": [d.hex() for d in change.removed],
            }
        )
    else:
        out.print(f"+{change.added_count:,} records  -{change.removed_count:,} records")
        out.print(f"+{change.subjects_added:,} subjects  -{change.subjects_removed:,} subjects")


def register(app: typer.Typer) -> None:
    app.command()(fingerprint)
    app.command()(prove)
    app.command("check-proof")(check_proof)
    app.add_typer(sets_app, name="sets")


def _expected_root(
    pinned: bytes | None, claimed: str | None, in_proof: str, kind: str, file: Path
) -> bytes:
    """The root a proof is checked against: the one given on the command line, else the
    one the proof file claims beside it, else the proof's own."""
    if pinned is not None:
        return pinned
    if claimed:
        return hex_digest(claimed, f"the {kind} root in {file}")
    return bytes.fromhex(in_proof)
