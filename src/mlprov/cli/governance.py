"""Governance commands: review, quarantine and release a source or dataset, check it
against the gates of a use, and show where it stands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlprov.cli.options import ActorOpt, JsonOpt, StoreOpt, actor_for, recording, resolve
from mlprov.cli.render import emit_json, out, print_lines, short_ids, wrap

if TYPE_CHECKING:
    from mlprov.governance.review import ReviewState
    from mlprov.ledger.events import Entry

Target = Annotated[
    str, typer.Argument(help="A source or dataset: NAME, NAME@VERSION, or a digest.")
]
Source = Annotated[str, typer.Argument(help="The source NAME@VERSION (or a quarantined dataset).")]


def _recorded(entry: Entry, json: bool) -> None:
    from rich.text import Text

    if json:
        emit_json(entry.to_json())
    else:
        out.print(Text(f"recorded {entry.event.type.value} {entry.digest}"))


def review(
    target: Target,
    status: Annotated[
        str,
        typer.Option(
            metavar="STATUS", help="accepted, accepted_with_limits, quarantined or rejected."
        ),
    ],
    limit: Annotated[
        list[str] | None, typer.Option(help="A limit the model owner carries; repeatable.")
    ] = None,
    risk: Annotated[list[str] | None, typer.Option(help="An unresolved risk; repeatable.")] = None,
    note: Annotated[str | None, typer.Option(help="A note on the judgement.")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Who judged (default: the actor).")] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="Sign with this key (default: the keys folder's key named REVIEWER)."),
    ] = None,
    separate_duties: Annotated[
        bool,
        typer.Option(
            "--separate-duties", help="Refuse an approval by whoever recorded the target."
        ),
    ] = False,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Record a reviewer's judgement of a source or dataset.

    Signed if the reviewer has a key."""
    from rich.text import Text

    from mlprov.governance.review import record_review
    from mlprov.governance.signoff import reviewer_signer
    from mlprov.ledger import keys as keyfiles

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        who = reviewer or actor
        signer = keyfiles.load_signer(key) if key else reviewer_signer(ledger, who)
        entry = record_review(
            ledger,
            resolve(ledger, target, ("source", "dataset")),
            status,
            who,
            limits=limit or (),
            risks=risk or (),
            note=note,
            signer=signer,
            actor=actor,
            separate_duties=separate_duties,
        )
    _recorded(entry, json)
    if not json and signer is not None:
        out.print(Text(f"  signed by {signer.key_id}"))


def quarantine(
    source: Source,
    trigger: Annotated[str, typer.Option(help="What prompted it.")],
    exit_condition: Annotated[str, typer.Option(help="What must be shown to release it.")],
    blocked_use: Annotated[
        list[str] | None, typer.Option(help="A use it blocks (default: training); repeatable.")
    ] = None,
    allowed_use: Annotated[
        list[str] | None, typer.Option(help="A use still allowed; repeatable.")
    ] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Quarantine a source.

    Every use but the allowed ones is blocked until a release."""
    from mlprov.governance.review import record_quarantine

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        entry = record_quarantine(
            ledger,
            resolve(ledger, source, ("source", "dataset")),
            trigger,
            exit_condition,
            blocked_use=blocked_use or ("training",),
            allowed_use=allowed_use or (),
            actor=actor,
        )
    _recorded(entry, json)


def release(
    source: Source,
    evidence: Annotated[
        list[str], typer.Option(help="An event meeting the exit condition; repeatable.")
    ],
    note: Annotated[str | None, typer.Option(help="A note on the release.")] = None,
    actor: ActorOpt = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Lift a quarantine, citing evidence recorded after it."""
    from mlprov.governance.review import record_release

    with recording(store) as ledger:
        actor = actor_for(ledger, actor)
        subject = resolve(ledger, source, ("source", "dataset"))
        entry = record_release(ledger, subject, evidence, note=note, actor=actor)
    _recorded(entry, json)


def check(
    target: Target,
    use: Annotated[str, typer.Option(help="The use, e.g. training.")] = "training",
    policy: Annotated[
        Path | None, typer.Option(help="A policy file, TOML or JSON (default: the ledger's).")
    ] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check a source or dataset against the gates of a use.

    Exit 7 when a gate blocks it."""
    from mlprov.facade import Ledger
    from mlprov.governance.manifest import WRITTEN
    from mlprov.governance.policy import check as run_checks
    from mlprov.governance.policy import load_policy
    from mlprov.ledger.names import label as label_of

    with Ledger.open(store) as ledger:
        chosen = load_policy(policy, ledger=ledger)
        entry = resolve(ledger, target, ("source", "dataset"))
        findings = run_checks(ledger, entry, use, chosen)
        gate = chosen.gate_for(use).id
    name = label_of(entry)
    written = "manifest" in entry.event.payload
    if json:
        emit_json(
            {
                "target": str(entry.digest),
                "name": name,
                "use": use,
                "clear": not findings,
                "gates": gate,
                "policy": chosen.origin,
                "recorded_from": "manifest" if written else "capture",
                "findings": [f.to_json() for f in findings],
            }
        )
    else:
        for f in findings:
            label = "UNKNOWN" if f.verdict == "unknown" else "BLOCKED"
            print_lines(wrap(f"{label} {f.gate} {f.name}: {f.message}"))
            print_lines(wrap(f"  hint: {f.hint}", hang=6))
        n = len(findings)
        verdict = f"blocked ({n} finding{'s' * (n != 1)})" if findings else "clear"
        print_lines(wrap(f"{name} for {use}: {verdict}; gates {gate} ({chosen.origin})"))
        if written:
            print_lines(wrap(f"  {name} {WRITTEN}", hang=4))
    if findings:
        raise typer.Exit(7)


def status(target: Target, store: StoreOpt = None, json: JsonOpt = False) -> None:
    """Where a source or dataset stands.

    Its review state, limits, risks and quarantine."""
    from mlprov.facade import Ledger
    from mlprov.governance.review import status_of
    from mlprov.governance.signoff import check_review

    with Ledger.open(store) as ledger:
        state = status_of(ledger, resolve(ledger, target, ("source", "dataset")))
        keys = ledger.trusted_keys()
    signature = check_review(state.review, keys) if state.review else None
    if json:
        emit_json({**state.to_json(), "signature": signature.to_json() if signature else None})
        return
    _describe(state)
    if signature is not None and signature.verdict != "unsigned":
        print_lines(wrap(f"  signature   {signature.verdict} ({signature.key_id})", hang=12))


def _describe(state: ReviewState) -> None:
    """Plain lines (stored text is never read as markup, and a read needs no rich)."""
    lines = [f"{state.label}  {state.state.value}"]
    if state.review is not None:
        ev = state.review.event
        lines.append(f"  review      {state.review.digest.short} by {ev.payload['reviewer']}")
    for label, values in (("limits", state.limits), ("risks", state.risks)):
        lines += [f"  {label:<11} {value}" for value in values]
    if state.quarantine is not None:
        q = state.quarantine.event.payload
        lines.append(f"  quarantine  {state.quarantine.digest.short}: {q.get('trigger', '')}")
        if "exit_condition" in q:
            lines.append(f"  exit when   {q['exit_condition']}")
            lines.append(f"  allowed     {', '.join(q.get('allowed_use', ())) or 'no use'}")
    if state.release is not None:
        lines.append(f"  released    {state.release.digest.short}")
    lines.append(f"  moves       {', '.join(m.value for m in state.moves) or 'none'}")
    print_lines(line for text in lines for line in wrap(text, hang=12))
    if state.ignored:
        print_lines(
            wrap(f"warning: {len(state.ignored)} recorded moves break the state table, ignored"),
            stderr=True,
        )


_ANSWER_STYLE = {"yes": "green", "no": "red", "partially": "yellow", "unknown": "bold red"}


def triage(
    target: Annotated[str, typer.Argument(help="A build or dataset: name or digest.")],
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """The incident triage of a build or dataset.

    Did the file change, was the source allowed, did exclusion run, who approved, can the
    build be explained — `unknown` where there is no evidence."""
    from rich.text import Text

    from mlprov.answers.triage import triage as take
    from mlprov.facade import Ledger

    with Ledger.open(store) as ledger:
        found = take(ledger, resolve(ledger, target, ("build", "dataset")))
    if json:
        emit_json(found.to_json())
        return
    of = found.target
    title, shortened = short_ids(f"triage of {of.event.type.value} {of.event.name} ({of.digest})")
    print_lines(wrap(title))
    for row in found.rows:
        out.print()
        out.print(
            Text.assemble((row.question, "bold"), "  ", (row.answer, _ANSWER_STYLE[row.answer]))
        )
        for label, value in (("evidence", row.evidence), ("risk", row.risk)):
            text, cut = short_ids(value)
            shortened = shortened or cut
            print_lines(wrap(f"  {label:<9} {text}", hang=10))
    if shortened:
        out.print()
        print_lines(wrap("ids ending in … are shortened; `--json` gives every one whole", hang=0))


def whoami(
    actor: Annotated[
        str | None, typer.Option(metavar="NAME", help="The --actor you would give.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Who events are recorded as here, and by which rule.

    The actor is --actor, else MLPROV_ACTOR, else git's user.email, else the login name;
    a personal identity taken from the machine is warned about."""
    from rich.text import Text

    from mlprov.identity import who

    found = who(actor)
    if json:
        emit_json({"actor": found.name, "origin": found.origin, "personal": found.personal})
        return
    out.print(Text(found.describe()))
    if found.personal:
        out.print(
            Text(
                "a ledger meant to be shared should not hold it: set MLPROV_ACTOR "
                "(a role will do) or pass --actor"
            )
        )


def register(app: typer.Typer) -> None:
    for command in (review, quarantine, release, check, status, triage, whoami):
        app.command()(command)
