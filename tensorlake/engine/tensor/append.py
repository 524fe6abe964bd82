"""Appending rows to several tensors at once: all validated first, then all appended,
so a bad value anywhere leaves every tensor unchanged."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tensorlake.engine.htypes.base import Encoded, Pending
from tensorlake.engine.tensor.companions import companion_rows
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.errors import MissingTensorsError, SampleError

__all__ = ["Fill", "append_columns"]

Fill = Callable[[TensorEngine, int], tuple[list[Encoded], Pending]]
"""``fill(engine, n)``: ``n`` encoded empty rows of a tensor (``append_empty``)."""


def append_columns(
    engines: Mapping[str, TensorEngine],
    columns: Mapping[str, Sequence[Any]],
    skip_ok: bool = False,
    scope: Sequence[str] | None = None,
    fill: Fill | None = None,
) -> None:
    """Validate rows for every tensor first, then append them all (all or nothing).

    With ``fill``, tensors of ``scope`` given no values, and columns shorter than the
    longest, are padded with its empty rows.
    """
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1 and fill is None:
        raise SampleError(
            f"every tensor needs the same number of samples, got {lengths}. Pass "
            "append_empty=True to pad the shorter ones with empty rows."
        )
    names = engines if scope is None else scope
    missing = [n for n in names if n not in columns and not engines[n].meta.hidden]
    if missing and not skip_ok and fill is None:
        raise MissingTensorsError(
            f"Required tensors not provided: {missing}. Pass skip_ok=True to leave them "
            "shorter, append_empty=True to give them empty rows, or include them.",
            missing=missing,
        )
    count = max(lengths.values(), default=0)
    prepared = []
    for name, values in columns.items():
        engine = engines[name]
        pending = engine.new_pending()
        encoded = engine.prepare(values, pending)
        prepared.append((engine, encoded, pending))
        # its hidden companions (shapes, ids, sample infos) get their rows too
        prepared += companion_rows(engines, engine, values, encoded, pending)
    padding = []
    if fill is not None:
        short = [(n, count - k) for n, k in lengths.items() if k < count]
        for name, n in [*short, *((m, count) for m in missing)]:
            if n:
                engine = engines[name]
                encoded, pending = fill(engine, n)
                padding.append((engine, encoded, pending))
                padding += companion_rows(engines, engine, [None] * n, encoded, pending)
    for engine, encoded, pending in [*prepared, *padding]:
        engine.extend_encoded(encoded, pending)
