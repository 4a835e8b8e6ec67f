"""The core ledger: append-only provenance events, the Merkle log and signed checkpoints.

`mlprov.open()` returns the facade, :class:`mlprov.facade.Ledger`, built on
:class:`LedgerCore`.
"""

from mlprov.ledger.core import LedgerCore
from mlprov.ledger.events import Entry, Event
from mlprov.ledger.kinds import EventType, ReviewStatus
from mlprov.ledger.verify import Problem, VerifyReport

__all__ = [
    "Entry",
    "Event",
    "EventType",
    "LedgerCore",
    "Problem",
    "ReviewStatus",
    "VerifyReport",
]
