"""Rows of a tensor replaced in place (``ds.boxes[7] = ...``), its companions with them:
every value validated first, so a bad one leaves every tensor unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tensorlake.engine.htypes import codec
from tensorlake.engine.tensor.companions import companion_rows
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.errors import SampleError

__all__ = ["update_column"]


def update_column(
    engines: Mapping[str, TensorEngine],
    name: str,
    rows: Sequence[int],
    values: Sequence[Any],
) -> list[str]:
    """Replace ``rows`` of tensor ``name`` by ``values``, and the same rows of its hidden
    companions (shapes, sample infos; ids stay). Returns the tensors changed."""
    engine = engines[name]
    if len(rows) != len(values):
        raise SampleError(f"{len(rows)} rows selected but {len(values)} values given.", tensor=name)
    pending = engine.new_pending()
    pending.htype.prepare_batch(engine.meta, values, pending)
    encoded = [codec.encode(engine.meta, v, pending, int(r)) for r, v in zip(rows, values)]
    updates = [(engine, encoded, pending)]
    updates += companion_rows(engines, engine, values, encoded, pending, new_rows=False)
    for target, samples, p in updates:
        for row, sample in zip(rows, samples):
            target.update_encoded(int(row), sample, p)
    return [target.meta.name for target, _, _ in updates]
