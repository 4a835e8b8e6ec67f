"""Audit: how complete the whole ledger is, as findings with ids and a summary.

`audit(ledger)` verifies the log, then reads it one event type at a time (never the whole
log at once) and reports every gap it finds. An audit with an `error` finding fails.

=====  ========================  ========  ================================================
id     name                      severity  finds
=====  ========================  ========  ================================================
AU001  no-rights-basis           error     a source with no rights basis (opt-out lists
                                           need none)
AU002  vague-rights-basis        error     a rights basis that names nothing checkable
                                           (`internal`, `public`, `n/a`, ...)
AU003  never-reviewed            error     a source nobody reviewed (opt-out lists too)
AU004  open-quarantine           warning   a quarantined source: trigger, blocked uses,
                                           exit condition and since when
AU005  rejected-source-in-use    error     a rejected source that a current dataset uses
AU006  dataset-lint-errors       error     a current dataset whose manifest has lint errors
AU007  build-without-dataset     error     a build that names no recorded dataset
AU008  build-without-manifest    error     a build with no frozen manifest recorded
AU009  frozen-manifest-missing   error     a build's frozen manifest file is not here
AU010  frozen-manifest-altered   error     a build's frozen manifest file does not match
                                           its digest
AU011  forced-build              warning   a build recorded past a gate that blocked it
AU012  unclosed-run              warning   a pipeline run that started and never ended
AU013  failed-step               info      a pipeline step that failed
AU014  unverified-events         warning   events no verified signed checkpoint covers
AU015  integrity-failure         error     the ledger does not verify, or cannot be read
=====  ========================  ========  ================================================

A *current* dataset is the newest of its name, or the one of its name that a build was last
recorded on: older versions, and a version whose name a later build trained on a newer
version of, are history that an append-only ledger cannot change, so they are not linted.
"""

from mlprov.answers.audit.findings import CHECKS, SEVERITIES, Check, Finding, Severity, Subject
from mlprov.answers.audit.report import Audit, Summary, audit

__all__ = [
    "CHECKS",
    "SEVERITIES",
    "Audit",
    "Check",
    "Finding",
    "Severity",
    "Subject",
    "Summary",
    "audit",
]
