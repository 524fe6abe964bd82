"""The rows hidden companion tensors get when their tensor's rows are appended or
updated (which companions exist, and what each holds: ``engine/links/companions.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tensorlake.engine.htypes.base import Encoded, Pending
from tensorlake.engine.links.companions import INFO, SHAPE, companion_names, companion_values
from tensorlake.engine.tensor.engine import TensorEngine

__all__ = ["Prepared", "companion_rows"]

Prepared = tuple[TensorEngine, list[Encoded], Pending]
"""A tensor's rows encoded and validated, with what applying them changes."""


def companion_rows(
    engines: Mapping[str, TensorEngine],
    engine: TensorEngine,
    values: Sequence[Any],
    encoded: Sequence[Encoded],
    pending: Pending,
    new_rows: bool = True,
) -> list[Prepared]:
    """The companions' rows for ``values`` of ``engine``'s tensor (``encoded`` with
    ``pending``), encoded and validated; ``new_rows`` False for an update (ids stay)."""
    extra = engine.meta.extra
    if not companion_names(extra):
        return []
    htype = pending.htype
    shapes = [htype.sample_shape(d, s) for d, s in encoded] if extra.get(SHAPE.key) else None
    infos = htype.sample_infos(values, pending) if extra.get(INFO.key) else None
    out: list[Prepared] = []
    for hidden, rows in companion_values(extra, len(encoded), shapes, infos, new_rows).items():
        companion = engines[hidden]
        p = companion.new_pending()
        out.append((companion, companion.prepare(rows, p), p))
    return out
