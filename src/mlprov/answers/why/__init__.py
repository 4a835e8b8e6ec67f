"""`why`: is a record, or any record of a person, in a model's training set — and why.

See :mod:`mlprov.answers.why.answer` for what the answer holds,
:mod:`mlprov.answers.why.trails` for how a record is followed through the steps, and
:mod:`mlprov.answers.why.causes` for the causes named.
"""

from mlprov.answers.why.answer import Answer, why
from mlprov.answers.why.render import to_json, to_markdown, to_text

__all__ = ["Answer", "to_json", "to_markdown", "to_text", "why"]
