"""Appending rows to several tensors at once: all validated first, then all appended,
so a bad value anywhere leaves every tensor unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tensorlake.engine.links.companions import companion_values
from tensorlake.engine.tensor.engine import TensorEngine
from tensorlake.errors import SampleError

__all__ = ["append_columns"]


def append_columns(
    engines: Mapping[str, TensorEngine],
    columns: Mapping[str, Sequence[Any]],
    skip_ok: bool = False,
    scope: Sequence[str] | None = None,
) -> None:
    """Validate rows for every tensor first, then append them all (all or nothing)."""
    if len(set(map(len, columns.values()))) > 1:
        lengths = {name: len(v) for name, v in columns.items()}
        raise SampleError(f"every tensor needs the same number of samples, got {lengths}.")
    names = engines if scope is None else scope
    if not skip_ok and (scope is not None or len(columns) < len(engines)):
        missing = [n for n in names if n not in columns and not engines[n].meta.hidden]
        if missing:
            raise SampleError(
                f"no values given for tensors {missing}. Pass skip_ok=True to leave them "
                "shorter, or include them."
            )
    prepared = []
    for name, values in columns.items():
        engine = engines[name]
        pending = engine.new_pending()
        prepared.append((engine, engine.prepare(values, pending), pending))
        if pending.linked:  # a link tensor's companions get their rows too
            for hidden, companion_rows in companion_values(
                engine.meta.extra, pending.linked
            ).items():
                companion = engines[hidden]
                p = companion.new_pending()
                prepared.append((companion, companion.prepare(companion_rows, p), p))
    for engine, encoded, pending in prepared:
        engine.extend_encoded(encoded, pending)
