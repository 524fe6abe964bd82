"""The text tables printed by ``ds.summary()`` and ``tensor.summary()``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

__all__ = ["summary_table", "tensor_lines"]

if TYPE_CHECKING:
    from tensorlake.api.dataset import Dataset
    from tensorlake.api.tensor import Tensor


def tensor_lines(tensors: Mapping[str, Tensor]) -> list[str]:
    """One aligned line per tensor (htype, shape, dtype, compression), under a header."""
    header = ("tensor", "htype", "shape", "dtype", "compression")
    rows = [header, tuple("-" * len(h) for h in header)]
    for name, t in tensors.items():
        shape = "(" + ", ".join("?" if d is None else str(d) for d in t.shape) + ")"
        rows.append((name, t.htype, shape, str(t.meta.dtype), str(t.sample_compression)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def summary_table(ds: Dataset) -> str:
    title = f"Dataset(path='{ds.path}', {'read-only, ' if ds.read_only else ''}tensors={len(ds.tensors)}, rows={len(ds)})"
    return "\n".join([title, *tensor_lines(ds.tensors)])
