"""The text table printed by ``ds.summary()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["summary_table"]

if TYPE_CHECKING:
    from tensorlake.api.dataset import Dataset


def summary_table(ds: Dataset) -> str:
    header = ("tensor", "htype", "shape", "dtype", "compression")
    rows = [header, tuple("-" * len(h) for h in header)]
    for name, t in ds.tensors.items():
        shape = "(" + ", ".join("?" if d is None else str(d) for d in t.shape) + ")"
        rows.append((name, t.htype, shape, str(t.meta.dtype), str(t.sample_compression)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    title = f"Dataset(path='{ds.path}', {'read-only, ' if ds.read_only else ''}tensors={len(ds.tensors)}, rows={len(ds)})"
    return "\n".join([title, *lines])
