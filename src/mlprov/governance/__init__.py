"""Governance: the rules a training set is held to, and the judgements recorded on it.

- :mod:`~mlprov.governance.manifest`: the dataset manifest, generated from the ledger or
  hand-written; :mod:`~mlprov.governance.manifest_files` records hand-written ones and
  freezes the manifest a build was allowed on.
- :mod:`~mlprov.governance.lint` and :mod:`~mlprov.governance.sarif`: the manifest's lint
  rules (MP001...) and their SARIF log.
- :mod:`~mlprov.governance.diff`: process drift from one manifest, dataset or build to
  another.
- :mod:`~mlprov.governance.review` and :mod:`~mlprov.governance.signoff`: reviews,
  quarantines and releases, their state table, and reviewers' signatures.
- :mod:`~mlprov.governance.gates` and :mod:`~mlprov.governance.policy`: the gates of a
  use (MPG001...), their composition and the policy file.
"""
