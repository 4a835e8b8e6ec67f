"""Answers: what the ledger says about a build or dataset, each read from recorded evidence.

- :mod:`~mlprov.answers.why`: is a record or a person in a model's training set, and why.
- :mod:`~mlprov.answers.triage`: the incident triage table.
- :mod:`~mlprov.answers.explain`: the postmortem sentence of a build.
- :mod:`~mlprov.answers.card`: a model card's provenance lines.
- :mod:`~mlprov.answers.lineage`: the lineage graph of a build or dataset, drawn by
  :mod:`~mlprov.answers.dot` and laid out by Graphviz (:mod:`~mlprov.answers.graphviz`).
- :mod:`~mlprov.answers.reports`: the datasheet and the regulatory disclosure reports.
- :mod:`~mlprov.answers.audit`: the completeness of the whole ledger.
"""
