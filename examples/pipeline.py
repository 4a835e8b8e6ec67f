"""The pipeline of a support-ticket classifier, recorded by mlprov as it runs.

Run inside a folder with a ledger (`mlprov init`): it records two sources, four
versioned steps (one of them removes opted-out customers), the dataset, a reviewer's
judgement of each source, and a build (which the training gates let through only once
the sources are reviewed).
Plain lists of dicts keep it dependency-free; pandas, polars, pyarrow and Hugging Face
datasets work the same way and come back as themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlprov
from mlprov.governance.review import record_review

TICKETS = [
    {"ticket_id": 1, "customer_id": "Ann@Example.com", "text": "  My invoice is WRONG "},
    {"ticket_id": 2, "customer_id": "bob@example.com", "text": "mail me at bob@example.com"},
    {"ticket_id": 3, "customer_id": "cat@example.com", "text": "refund please"},
    {"ticket_id": 4, "customer_id": "dan@example.com", "text": "Refund please"},
    {"ticket_id": 5, "customer_id": "eve@example.com", "text": "login broken since Monday"},
]
OPT_OUT = [{"customer_id": "ann@example.com"}]
EMAIL = re.compile(r"\S+@\S+")
REVIEWER = "carol@example.com"


def normalize(rows: list[dict]) -> list[dict]:
    return [{**r, "text": " ".join(r["text"].split()).lower()} for r in rows]


def redact(rows: list[dict]) -> list[dict]:
    return [{**r, "text": EMAIL.sub("[email]", r["text"])} for r in rows]


@mlprov.transform("dedupe-v2", params={"threshold": 1.0})
def dedupe(rows: list[dict]) -> list[dict]:
    seen: set[str] = set()
    return [r for r in rows if not (r["text"] in seen or seen.add(r["text"]))]


def main() -> None:
    ledger = mlprov.open()
    with ledger.pipeline("support-classifier-training") as p:
        chats = p.source(
            TICKETS,
            "support-chat-export@2026-05-22",
            key="ticket_id",
            subject="customer_id",
            rights_basis="contract-2024-17 §4 (model training permitted)",
            license="LicenseRef-proprietary",
            owner="support-ops",
            personal_data=True,
            collected=("2024-01", "2026-05"),
        )
        optout = p.source(
            OPT_OUT,
            "opt-out-list@2026-05-22",
            subject="customer_id",
            rights_basis="customer-exclusion-log (GDPR Art. 21 objections)",
            owner="privacy-office",
        )
        chats = p.transform(
            "normalize-v1", normalize, chats, params={"whitespace": "collapse", "case": "lower"}
        )
        chats = p.transform("pii-redaction-v3", redact, chats, params={"patterns": ["email"]})
        chats = p.exclude("opt-out-removal-v2", chats, using=optout, on="customer_id")
        chats = dedupe(chats)
        dataset = p.dataset(chats, "support-classifier-training")
    # A build runs the training gates: a source nobody reviewed blocks it (exit 7).
    record_review(
        ledger,
        "support-chat-export@2026-05-22",
        "accepted_with_limits",
        REVIEWER,
        limits=["English tickets only"],
        risks=["legacy tickets before consent-policy migration"],
    )
    record_review(ledger, "opt-out-list@2026-05-22", "accepted", REVIEWER)
    model = Path("model")
    model.mkdir(exist_ok=True)
    (model / "weights.bin").write_bytes(b"\x00" * 1024)
    build = ledger.build(
        "support-classifier-v7",
        dataset=dataset,
        config={"epochs": 3, "lr": 3e-5},
        artifact=model,
    )
    print(f"dataset {dataset.digest} holds {dataset.event.payload['record_count']} records")
    print(f"build   {build.digest}")


if __name__ == "__main__":
    main()
