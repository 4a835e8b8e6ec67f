"""The demo's story: the incident of a support-ticket classifier, from first byte to answer.

Each chapter records what a team would record, then reports what the ledger now says —
every figure, digest, cause and verdict printed is read back from the ledger or computed
by mlprov in this run, never written in advance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlprov.demo import steps
from mlprov.demo.data import SEED, DemoData, Package, load
from mlprov.digest import Digest
from mlprov.errors import ConflictError, GateBlocked
from mlprov.facade import Ledger
from mlprov.ledger.events import Entry

__all__ = ["Demo", "Section", "run"]

# The story's people: every event of the demo is recorded under one of them, never under
# the identity of the machine it runs on (git's user.email, the login name).
ENGINEER = "erin@example.com"  # the ML engineer who runs the pipeline and trains
REVIEWER = "carol@example.com"  # the data reviewer
PRIVACY = "dana@example.com"  # the privacy office
EXPORT = "support-chat-export@2026-05-22"
OLD_LIST, NEW_LIST = "opt-out-list@2026-05-01", "opt-out-list@2026-05-22"
DATASET = "support-classifier-training"
_EXPORT_FACTS: dict[str, Any] = {
    "key": "ticket_id",
    "subject": "customer_email",
    "rights_basis": "customer-terms-2024-17 §4 (support data may train support models)",
    "license": "LicenseRef-proprietary",
    "owner": "support-ops",
    "collected": ("2024-01", "2026-05"),
    "personal_data": True,
    "acquisition": "user",
    "purpose": "answering customer support requests",
    "modality": "text",
    "languages": ("en",),
    "description": "support tickets: message text, category label, channel and date",
    "copyright": "protected",
    "aggregate_consumer_info": False,
}
_LIST_FACTS: dict[str, Any] = {
    "subject": "customer_email",
    "rights_basis": "customer-exclusion-log (GDPR Art. 21 objections)",
    "owner": "privacy-office",
    "personal_data": True,
    "acquisition": "user",
    "purpose": "honouring customers' objections to training",
}


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Run:
    dataset: Entry
    evaluation: Entry
    train: pa.Table
    held: pa.Table


@dataclass
class Demo:
    """What the demo recorded, for the reader (and its tests) to look up in the ledger."""

    directory: Path
    asker: str = ""
    v7: Entry | None = None
    v8: Entry | None = None
    card: Path | None = None


class _Story:
    def __init__(self, directory: Path, report: Callable[[Section], None]) -> None:
        self.dir = directory
        self.report = report
        self.data: DemoData = load()  # first: a missing extra leaves no half-made ledger
        self.classifier = Package.of("scikit-learn")
        self.ledger = Ledger.init(directory)
        self.demo = Demo(directory, asker=self.data.asker["email"])

    def say(self, title: str, *lines: str) -> None:
        self.report(Section(title, lines))

    def files(self) -> dict[str, Path]:
        folder = self.dir / "data"
        folder.mkdir(exist_ok=True)
        paths = {}
        for name, rows in (
            (EXPORT, self.data.tickets),
            (OLD_LIST, self.data.old_list),
            (NEW_LIST, self.data.new_list),
        ):
            path = folder / (name.replace("@", "-") + ".parquet")
            pq.write_table(pa.Table.from_pylist(rows), path)
            paths[name] = path
        return paths

    # -- chapters -----------------------------------------------------------------------
    def the_data(self, paths: dict[str, Path]) -> None:
        d = self.data
        self.say(
            "1. The data",
            f"{len(d.tickets):,} support tickets: the distinct opening lines of the English "
            f"conversations in {len(d.files)} files of {d.corpus}",
            f"each joined to a synthetic customer from {d.faker}, seed {SEED}",
            f"{d.with_pii} tickets quote the customer's e-mail or phone number; "
            f"{d.resends} were sent again with small edits",
            f"opt-out list of 2026-05-01: {len(d.old_list)} customers; of 2026-05-22: "
            f"{len(d.new_list)}, among them {d.asker['name']} <{d.asker['email']}>",
            f"written to {paths[EXPORT].parent}",
        )

    def sources(self, paths: dict[str, Path]) -> None:
        from mlprov.governance.review import record_review, status_of

        with self.ledger.pipeline("source-intake", actor=ENGINEER) as p:
            p.source(str(paths[EXPORT]), EXPORT, **_EXPORT_FACTS)
            p.source(str(paths[OLD_LIST]), OLD_LIST, **_LIST_FACTS)
        with self.ledger.pipeline(
            "opt-out-intake", actor=PRIVACY
        ) as p:  # the privacy office's newer list
            p.source(str(paths[NEW_LIST]), NEW_LIST, **_LIST_FACTS)
        record_review(
            self.ledger,
            EXPORT,
            "accepted_with_limits",
            REVIEWER,
            limits=["English tickets only"],
            risks=["legacy tickets before consent-policy migration"],
            actor=REVIEWER,
        )
        for ref in (OLD_LIST, NEW_LIST):
            record_review(self.ledger, ref, "accepted", PRIVACY, actor=PRIVACY)
        lines = []
        for ref in (EXPORT, OLD_LIST, NEW_LIST):
            entry = next(self.ledger.entries(type="source", name=ref, newest_first=True))
            facts = entry.event.payload
            state = status_of(self.ledger, entry)
            lines.append(
                f"{ref}: {facts['record_count']:,} records, record root "
                f"{Digest(facts['record_root']).short}, file "
                f"{Digest(facts['byte_digest']).short}; rights basis "
                f"{facts['rights_basis']}; {state.state.value} by "
                f"{state.review.event.payload['reviewer'] if state.review else 'nobody'}"
            )
        self.say("2. Sources recorded and reviewed", *lines)

    def pipeline(self, version: str, paths: dict[str, Path]) -> _Run:
        """v7 as the team first ran it (the opt-out removal still used the list of
        2026-05-01, and ran on the subject only after redaction and before dedupe); v8
        fixed."""
        with self.ledger.pipeline(DATASET, actor=ENGINEER) as p:
            chats = p.source(str(paths[EXPORT]), EXPORT, **_EXPORT_FACTS)
            listing = OLD_LIST if version == "v7" else NEW_LIST
            optout = p.source(str(paths[listing]), listing, **_LIST_FACTS)

            def remove_opt_outs(name: str, data: pa.Table) -> pa.Table:
                return p.exclude(
                    name,
                    data,
                    using=optout,
                    on="customer_email",
                    purpose="remove every ticket of a customer who objected",
                )

            if version == "v8":
                chats = remove_opt_outs("opt-out-removal-v3", chats)
            chats = p.transform(
                "normalize-v1",
                steps.normalize,
                chats,
                params={"whitespace": "collapse"},
                purpose="consistent text for training",
            )
            chats = p.transform(
                "pii-redaction-v3",
                steps.redact,
                chats,
                params={"patterns": ["email", "phone"]},
                purpose="keep contact details out of the model",
            )
            if version == "v7":
                chats = remove_opt_outs("opt-out-removal-v2", chats)
            dupes, kept = steps.near_duplicates(chats, 0.84)
            chats = p.exclude(
                "dedupe-v2",
                chats,
                where=dupes,
                duplicate_of=kept,
                params={"threshold": 0.84, "method": "char 3-5-gram tf-idf cosine"},
                purpose="one copy of each ticket",
            )
            split = "hold out every fifth ticket to evaluate the model"
            train = p.transform(
                "split-v1",
                steps.split,
                chats,
                holdout=False,
                params={"holdout": False},
                purpose=split,
            )
            held = p.transform(
                "split-v1",
                steps.split,
                chats,
                holdout=True,
                params={"holdout": True},
                purpose=split,
            )
            dataset = p.dataset(train, DATASET, version=version)
            evaluation = p.dataset(held, "support-classifier-eval", version=version)
        return _Run(dataset, evaluation, train, held)

    def describe_run(self, title: str, dataset: Entry, note: str) -> None:
        lines = []
        for entry in self.ledger.trace(dataset.digest):
            p = entry.event.payload
            if entry.event.type.value != "transform":
                continue
            c = p.get("counts", {})
            using = [u["name"] for u in p.get("used", ()) if u.get("role") == "using"]
            lines.append(
                f"step {p['step']} {p['name']}: {c.get('in', 0):,} in, removed "
                f"{c.get('removed', 0):,}, changed {c.get('changed', 0):,}"
                + (f", using {', '.join(using)}" if using else "")
            )
        p = dataset.event.payload
        lines.append(
            f"dataset {p['name']} {p.get('version')}: {p['record_count']:,} records, "
            f"record root {Digest(p['record_root']).short}"
        )
        self.say(title, *lines, note)

    def list_note(self, run: _Run) -> str:
        """Which list the opt-out step used, and whether a newer one was recorded before it."""
        for entry in self.ledger.trace(run.dataset.digest):
            p = entry.event.payload
            used = [u for u in p.get("used", ()) if u.get("role") == "using"]
            if entry.event.type.value != "transform" or not used:
                continue
            listing = self.ledger.get(used[0]["event"])
            name = listing.event.payload["name"]
            newer = [
                e
                for e in self.ledger.entries(type="source")
                if e.event.payload["name"] == name
                and e.seq > listing.seq
                and e.event.recorded_at < p["started_at"]
            ]
            if newer:
                return (
                    f"{p['name']} used {listing.event.name}, though {newer[-1].event.name} "
                    "had been recorded before it ran"
                )
            return f"{p['name']} used {listing.event.name}, the newest recorded when it ran"
        return "no step removed opt-outs"

    def build(self, name: str, run: _Run) -> tuple[Entry, float, list[str]]:
        """Train and record the build; a build the gates block is recorded as forced, as
        the team first did, with the findings it overrode."""
        folder = self.dir / "models" / name
        accuracy, config = steps.train(run.train, run.held, folder)
        options: dict[str, Any] = {
            "dataset": run.dataset,
            "eval_set": run.evaluation,
            "artifact": folder,
            "config": {**config, "intended_purpose": "route support tickets to the right team"},
            "code_version": "mlprov-demo",
            "actor": ENGINEER,
        }
        blocked: list[str] = []
        try:
            build = self.ledger.build(name, **options)
        except GateBlocked as exc:
            blocked = list(exc.findings)
            build = self.ledger.build(name, force=True, **options)
        self.ledger.evaluation(
            build, "holdout", {"accuracy": accuracy}, eval_set=run.evaluation, actor=ENGINEER
        )
        return build, accuracy, blocked

    def train_v7(self, run: _Run) -> Entry:
        build, accuracy, blocked = self.build("support-classifier-v7", run)
        p = build.event.payload
        lines = [f"the training gates block it: {b}" for b in blocked]
        if blocked:
            lines.append("the team trained it anyway: the override and its findings are recorded")
        lines += [
            f"build {build.event.name} {build.digest.short}: artifact "
            f"{Digest(p['artifact_digest']).short} ({p['artifact_files']} files), "
            f"manifest {Digest(p['manifest_digest']).short}"
            + (", forced past the gates" if p.get("forced") else ""),
            f"holdout accuracy {accuracy:.1%} on {run.held.num_rows:,} tickets, "
            f"with {self.classifier}",
        ]
        self.say("4. Training support-classifier-v7", *lines)
        return build

    def asks(self, build: Entry, chapter: str, *before: str) -> Any:
        from mlprov.answers.why import why

        who = self.data.asker
        answer = why(self.ledger, build, subject=who["email"])
        command = f"$ mlprov why --model {build.event.name} --subject {who['email']}"
        self.say(chapter, *before, command, *_answer_lines(answer))
        return answer

    def triage(self, build: Entry) -> None:
        from mlprov.answers.triage import triage

        table = triage(self.ledger, build)
        self.say(
            "6. Triage",
            *(f"{r.question} {r.answer} — {r.evidence}; risk: {r.risk}" for r in table.rows),
        )

    def quarantine(self, run: _Run) -> Entry:
        from mlprov.governance.policy import check
        from mlprov.governance.review import record_quarantine

        entry = record_quarantine(
            self.ledger,
            EXPORT,
            trigger="opt-out record found in model-review sample",
            exit_condition="opt-out-removal evidence and reviewer status attached",
            blocked_use=("training", "benchmark-publication"),
            allowed_use=("incident-reproduction",),
            actor=PRIVACY,
        )
        findings = check(self.ledger, run.dataset, "training")
        q = entry.event.payload
        self.say(
            "7. Quarantine",
            f"{EXPORT} quarantined ({entry.digest.short}) because: {q['trigger']}",
            f"blocked: {', '.join(q['blocked_use'])}; allowed: {', '.join(q['allowed_use'])}; "
            f"until: {q['exit_condition']}",
            f"check {DATASET} v7 --use training: {'blocked' if findings else 'clear'}",
            *(f"  {f}" for f in findings),
        )
        return entry

    def fix(self, paths: dict[str, Path], quarantine: Entry) -> Entry:
        from mlprov.governance.review import record_release, record_review

        run = self.pipeline("v8", paths)
        review = record_review(
            self.ledger,
            run.dataset,
            "accepted_with_limits",
            REVIEWER,
            limits=["English tickets only"],
            risks=["legacy tickets before consent-policy migration"],
            actor=REVIEWER,
        )
        removal = next(
            e
            for e in self.ledger.trace(run.dataset.digest)
            if e.event.payload.get("name") == "opt-out-removal-v3"
        )
        release = record_release(
            self.ledger,
            EXPORT,
            [removal, review],
            note="v8 removes opted-out customers with the newest list, before any other step",
            actor=PRIVACY,
        )
        self.describe_run(
            "8. Pipeline v8, fixed",
            run.dataset,
            f"reviewed {review.digest.short}; quarantine {quarantine.digest.short} released "
            f"({release.digest.short}) citing the opt-out step and the review",
        )
        build, accuracy, blocked = self.build("support-classifier-v8", run)
        gates = "the training gates pass" if not blocked else "blocked: " + "; ".join(blocked)
        self.say(
            "9. Training support-classifier-v8",
            f"{gates}; build {build.digest.short}, manifest "
            f"{Digest(build.event.payload['manifest_digest']).short}",
            f"holdout accuracy {accuracy:.1%} on {run.held.num_rows:,} tickets",
        )
        return build

    def diff(self, v7: Entry, v8: Entry) -> None:
        from mlprov.governance.diff import diff
        from mlprov.governance.manifest import from_ledger

        a = from_ledger(self.ledger, v7.event.payload["dataset"])
        b = from_ledger(self.ledger, v8.event.payload["dataset"])
        changes = diff(a, b, self.ledger).changes
        self.say("10. What changed: the manifest diff, v7 to v8", *(str(c) for c in changes))

    def card(self, v7: Entry, v8: Entry) -> Path:
        from mlprov.answers.card import searchable_line, write_card
        from mlprov.answers.explain import build_facts, explain

        path = self.dir / "models" / "support-classifier-v8" / "README.md"
        path.write_text(
            "---\nlicense: other\nlanguage: en\npipeline_tag: text-classification\n---\n"
            "# support-classifier-v8\n\nRoutes support tickets to the right team.\n",
            encoding="utf-8",
        )
        facts = build_facts(self.ledger, v8)
        write_card(path, facts)
        # The line's fields said in words: its whole digest would not fit a line of 80.
        line = dict(field.split("=", 1) for field in searchable_line(facts).split("; "))
        self.say(
            "12. Model card and postmortem",
            f"patched {path}: its searchable line names the training manifest "
            f"{line['training_manifest']}, reviewer_status={line['reviewer_status']} and "
            f"unresolved_risks={line['unresolved_risks']}",
            explain(self.ledger, v7).sentence,
            explain(self.ledger, v8).sentence,
        )
        return path

    def audit(self, v7: Entry) -> None:
        from mlprov.answers.audit import audit

        self.say("14. Audit", *_audit_lines(audit(self.ledger), v7))

    def verify(self) -> None:
        signed = self.ledger.checkpoint()
        found = self.ledger.verify(self.ledger.trusted_keys())
        verdict = "verified" if found.ok else f"NOT VERIFIED ({len(found.problems)} problems)"
        self.say(
            "13. Verify",
            f"signed checkpoint at size {signed.checkpoint.size}",
            f"{verdict}: {found.summary()}",
        )


# The findings the finished story leaves on purpose: v7 was forced past its gate (chapter 4),
# and the ledger is append-only, so that record stays.
INTENDED = {"AU011": "support-classifier-v7 was trained past the gate that blocked it (chapter 4)"}


def _audit_lines(found: Any, v7: Entry) -> list[str]:
    intended = [f for f in found.findings if f.id in INTENDED and f.subject.digest == v7.digest]
    other = [f for f in found.findings if f not in intended]
    verdict = "passes" if found.ok else "fails"
    lines = [
        f"the audit {verdict} with {len(found.findings)} "
        + ("finding" if len(found.findings) == 1 else "findings")
    ]
    lines += [f"{f.id} {f.severity}, as the story intends: {INTENDED[f.id]}" for f in intended]
    lines += [f"{f.id} {f.severity}, not intended: {f.subject}: {f.message}" for f in other]
    lines.append(
        "v7's dataset is history now that v8 was trained on a newer version, so it is not linted"
    )
    return lines


def _answer_lines(answer: Any) -> list[str]:
    from mlprov.answers.why import to_text

    return [line for line in to_text(answer).splitlines() if line.strip()]


def run(directory: Path, report: Callable[[Section], None]) -> Demo:
    """Tell the whole story in `directory` (which must not hold a ledger yet)."""
    directory = Path(directory)
    if (directory / ".mlprov").exists():
        raise ConflictError(
            f"{directory} already holds a ledger: the demo runs once per folder",
            f"explore it (cd {directory}; mlprov log), or give another --dir",
        )
    story = _Story(directory, report)
    paths = story.files()
    story.the_data(paths)
    story.sources(paths)
    v7_run = story.pipeline("v7", paths)
    story.describe_run(
        "3. Pipeline v7, as the team first ran it", v7_run.dataset, story.list_note(v7_run)
    )
    v7 = story.train_v7(v7_run)
    who = story.data.asker
    story.asks(
        v7,
        "5. A customer asks",
        f'{who["name"]} <{who["email"]}>: "I opted out. Why was my ticket used to train '
        'support-classifier-v7?"',
    )
    story.triage(v7)
    quarantine = story.quarantine(v7_run)
    v8 = story.fix(paths, quarantine)
    story.diff(v7, v8)
    story.asks(v8, "11. The customer, in the retrained model")
    card = story.card(v7, v8)
    story.verify()
    story.audit(v7)
    story.demo.v7, story.demo.v8, story.demo.card = v7, v8, card
    return story.demo
