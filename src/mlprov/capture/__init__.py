"""Capture: provenance recorded by the pipeline itself, where the data moves.

`Ledger.pipeline()` opens a :class:`Pipeline` that records sources, versioned steps,
exclusions and datasets with record-level lineage; `Ledger.build()` links a model
artifact to its dataset, config, code and eval set; `Ledger.predictions()` logs inference
events in batches.
"""

from __future__ import annotations

from mlprov.capture.decorator import transform
from mlprov.capture.pipeline import Pipeline, active

__all__ = ["Pipeline", "active", "transform"]
