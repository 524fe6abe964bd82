"""What a version changed that its manifest alone cannot tell: updated rows and info.

Tensors created or deleted and rows appended are read off the manifests themselves
(names and lengths); a row rewritten in place leaves no such trace, so each staging
manifest and commit carries a ``Changes`` record of them. ``diff`` merges the records on
the path between two versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DATASET_INFO", "Changes"]

DATASET_INFO = ""  # key of the dataset's own info in ``Changes.info``


class Changes:
    """Rows updated per tensor and info edited (dataset and tensors) since a base commit."""

    __slots__ = ("info", "updated")

    def __init__(self) -> None:
        self.updated: dict[str, set[int]] = {}
        self.info: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.info) or any(self.updated.values())

    def rows_updated(self, tensor: str, rows: Any) -> None:
        self.updated.setdefault(tensor, set()).update(int(r) for r in rows)

    def info_updated(self, tensor: str = DATASET_INFO) -> None:
        self.info.add(tensor)

    def tensor_deleted(self, tensor: str) -> None:
        self.updated.pop(tensor, None)
        self.info.discard(tensor)

    def merge(self, other: Changes) -> None:
        for tensor, rows in other.updated.items():
            self.updated.setdefault(tensor, set()).update(rows)
        self.info |= other.info

    def to_dict(self) -> dict[str, Any]:
        return {
            "updated": {
                t: np.array(sorted(r), dtype=np.int64).tobytes()
                for t, r in self.updated.items()
                if r
            },
            "info": sorted(self.info),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Changes:
        changes = cls()
        for t, raw in ((d or {}).get("updated") or {}).items():
            changes.updated[t] = set(np.frombuffer(raw, dtype=np.int64).tolist())
        changes.info = set((d or {}).get("info") or [])
        return changes
