"""The append-only Merkle ledger of provenance events and its signed checkpoints."""

from mlprov.ledger.events import Entry, Event
from mlprov.ledger.ledger import Ledger
from mlprov.ledger.payloads import EventType, ReviewStatus
from mlprov.ledger.verify import Problem, VerifyReport

__all__ = ["Entry", "Event", "EventType", "Ledger", "Problem", "ReviewStatus", "VerifyReport"]
