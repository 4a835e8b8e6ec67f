"""`mlprov demo`: the incident of a support-ticket classifier, recorded and answered.

See :mod:`mlprov.demo.story` for the chapters and :mod:`mlprov.demo.data` for where the
data comes from (real conversational text shipped in `chatterbot-corpus`, synthetic
customers from `Faker`, no network).
"""

from mlprov.demo.story import Demo, Section, run

__all__ = ["Demo", "Section", "run"]
