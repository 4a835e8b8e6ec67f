"""The demo's data: a support-chat export made from real conversational text, offline.

Customer messages are the distinct opening lines of the English conversations shipped in
the `chatterbot-corpus` package (each file is a category: tech support, money, coding, ...).
Each message becomes a ticket of a synthetic customer made by `Faker` under a fixed seed
(name, e-mail, phone), some tickets quote the customer's e-mail or phone number (PII for
the redaction step to find), and some customers resend a ticket with small edits (near
duplicates for the dedupe step). Two versions of an opt-out list name customers who
objected; the newer one adds the person who later asks why their ticket was used.
Everything is derived from the packages installed here and the seed: the same run gives
the same data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlprov.errors import MissingExtraError

__all__ = ["CATEGORIES", "SEED", "DemoData", "Package", "load"]

SEED = 2026
#: Corpus files used, and the ticket category each one stands for.
CATEGORIES = {
    "tech_support.yml": "tech-support",
    "coding.yml": "coding",
    "ai.yml": "product-ai",
    "money.yml": "billing",
    "computers.yml": "hardware",
    "emotion.yml": "feedback",
    "greetings.yml": "greeting",
}
_CUSTOMERS = 150
_CHANNELS = ("chat", "web", "email")
_OLD_LIST = 12  # customers who opted out by 2026-05-01
_NEW_LIST = 5  # and who joined them by 2026-05-22 (the first of them is the one who asks)


@dataclass(frozen=True)
class Package:
    """Where a part of the data came from: a package, its version and licence."""

    name: str
    version: str
    license: str
    author: str

    @classmethod
    def of(cls, name: str) -> Package:
        try:
            meta = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            raise MissingExtraError(name, "demo") from None

        def field(key: str) -> str:
            return str((meta.get_all(key) or [""])[0])

        licence = field("License-Expression") or field("License")
        if not licence.strip() or len(licence) > 60:  # a whole licence text, or nothing
            classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License")]
            licence = classifiers[0].rpartition(" :: ")[2] if classifiers else "not stated"
        return cls(name, field("Version"), licence, field("Author") or "not stated")

    def __str__(self) -> str:
        by = f", by {self.author}" if self.author != "not stated" else ""
        return f"{self.name} {self.version} ({self.license}{by})"


@dataclass(frozen=True)
class DemoData:
    tickets: list[dict[str, Any]]
    old_list: list[dict[str, Any]]
    new_list: list[dict[str, Any]]
    asker: dict[str, Any]  # the customer who asks why their ticket was used
    corpus: Package
    faker: Package
    files: tuple[str, ...]
    with_pii: int
    resends: int


def _messages() -> list[tuple[str, str]]:
    import yaml

    try:
        import chatterbot_corpus
    except ImportError:
        raise MissingExtraError("chatterbot-corpus", "demo") from None
    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    found: dict[str, tuple[str, str]] = {}  # the corpus repeats openings with other replies
    for name, category in CATEGORIES.items():
        data = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
        for conversation in data.get("conversations", ()):
            if conversation and isinstance(conversation[0], str) and conversation[0].strip():
                text = conversation[0].strip()
                found.setdefault(text.lower(), (category, text))
    return list(found.values())


def _resend(text: str, rng: random.Random) -> str:
    edits: tuple[Callable[[str], str], ...] = (
        lambda t: t + " Please help!",
        lambda t: t.rstrip(".?!") + "??",
        lambda t: "Hi, " + t[0].lower() + t[1:],
        lambda t: t + " (sent again)",
    )
    return rng.choice(edits)(text)


def load() -> DemoData:
    """Build the export, the two opt-out lists and the asker from the packages and SEED."""
    try:
        from faker import Faker
    except ImportError:
        raise MissingExtraError("Faker", "demo") from None
    rng = random.Random(SEED)
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    customers = [
        {"name": fake.name(), "email": fake.unique.email(), "phone": fake.phone_number()}
        for _ in range(_CUSTOMERS)
    ]
    tickets: list[dict[str, Any]] = []
    with_pii = resends = 0
    for category, text in _messages():
        who = customers[rng.randrange(_CUSTOMERS)]
        roll = rng.random()
        if roll < 0.08:
            text += f" You can reach me at {who['email']}."
            with_pii += 1
        elif roll < 0.12:
            text += f" Call me on {who['phone']}."
            with_pii += 1
        day = rng.randrange(1, 29)
        ticket = {
            "ticket_id": len(tickets) + 1,
            "customer_email": who["email"],
            "channel": rng.choice(_CHANNELS),
            "created": f"202{rng.choice((4, 5))}-{rng.randrange(1, 13):02d}-{day:02d}",
            "category": category,
            "text": text,
        }
        tickets.append(ticket)
        if rng.random() < 0.05:
            again = {**ticket, "ticket_id": len(tickets) + 1, "text": _resend(text, rng)}
            tickets.append(again)
            resends += 1
    ticketed = list(dict.fromkeys(t["customer_email"] for t in tickets))
    rng.shuffle(ticketed)
    opted = ticketed[: _OLD_LIST + _NEW_LIST]
    asker_email = opted[_OLD_LIST]  # on the newer list only
    by_email = {c["email"]: c for c in customers}
    return DemoData(
        tickets=tickets,
        old_list=[{"customer_email": e} for e in opted[:_OLD_LIST]],
        new_list=[{"customer_email": e} for e in opted],
        asker=by_email[asker_email],
        corpus=Package.of("chatterbot-corpus"),
        faker=Package.of("Faker"),
        files=tuple(CATEGORIES),
        with_pii=with_pii,
        resends=resends,
    )
