"""What a version changed that its manifest alone cannot tell: updated rows, info,
rows removed and tensors renamed.

Tensors created or deleted and rows appended are read off the manifests themselves
(names and lengths); a row rewritten in place, a row popped or a tensor renamed leaves no
such trace, so each staging manifest and commit carries a ``Changes`` record of them.
``diff`` merges the records on the path between two versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DATASET_INFO", "Changes"]

DATASET_INFO = ""  # key of the dataset's own info in ``Changes.info``


class Changes:
    """Rows updated per tensor and info edited (dataset and tensors) since a base commit;
    rows of the base removed (``deleted``: how many, per tensor) and tensors renamed
    (``renamed``: current name -> name in the base)."""

    __slots__ = ("deleted", "info", "renamed", "updated")

    def __init__(self) -> None:
        self.updated: dict[str, set[int]] = {}
        self.info: set[str] = set()
        self.deleted: dict[str, int] = {}
        self.renamed: dict[str, str] = {}

    def __bool__(self) -> bool:
        return (
            bool(self.info)
            or any(self.updated.values())
            or any(self.deleted.values())
            or bool(self.renamed)
        )

    def rows_deleted(self, tensor: str, rows: Any, base_rows: int) -> None:
        """``rows`` (row numbers now) were removed, ``base_rows`` of them rows of the
        base; updated rows after them move down."""
        gone = sorted({int(r) for r in rows})
        if base_rows:
            self.deleted[tensor] = self.deleted.get(tensor, 0) + base_rows
        updated = self.updated.get(tensor)
        if updated:
            ends = np.asarray(gone, dtype=np.int64)
            kept = [r for r in updated if r not in set(gone)]
            shift = np.searchsorted(ends, np.asarray(kept, dtype=np.int64))
            self.updated[tensor] = {int(r - k) for r, k in zip(kept, shift.tolist())}

    def tensor_renamed(self, old: str, new: str) -> None:
        for record in (self.updated, self.deleted):
            if old in record:
                record[new] = record.pop(old)  # type: ignore[assignment]
        if old in self.info:
            self.info.discard(old)
            self.info.add(new)
        base = self.renamed.pop(old, old)
        if base != new:
            self.renamed[new] = base

    def rows_updated(self, tensor: str, rows: Any) -> None:
        self.updated.setdefault(tensor, set()).update(int(r) for r in rows)

    def info_updated(self, tensor: str = DATASET_INFO) -> None:
        self.info.add(tensor)

    def tensor_deleted(self, tensor: str) -> None:
        self.updated.pop(tensor, None)
        self.info.discard(tensor)
        self.deleted.pop(tensor, None)
        self.renamed.pop(tensor, None)

    def merge(self, other: Changes) -> None:
        """Add the changes of ``other``, a record of the versions before this one's base
        (its names are the names before this record's renames)."""
        later = {base: now for now, base in self.renamed.items()}
        for tensor, rows in other.updated.items():
            self.updated.setdefault(later.get(tensor, tensor), set()).update(rows)
        self.info |= {later.get(t, t) for t in other.info}
        for tensor, n in other.deleted.items():
            now = later.get(tensor, tensor)
            self.deleted[now] = self.deleted.get(now, 0) + n
        for mid, base in other.renamed.items():
            now = later.get(mid, mid)
            self.renamed.pop(now, None)
            if now != base:
                self.renamed[now] = base

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "updated": {
                t: np.array(sorted(r), dtype=np.int64).tobytes()
                for t, r in self.updated.items()
                if r
            },
            "info": sorted(self.info),
        }
        if any(self.deleted.values()):  # absent when none: records as before pops
            d["deleted"] = {t: n for t, n in self.deleted.items() if n}
        if self.renamed:
            d["renamed"] = dict(self.renamed)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Changes:
        """The record as stored (``to_dict``); ``TypeError`` / ``ValueError`` when a field
        is not what ``to_dict`` writes (the caller names the object in a FormatError)."""
        d = _stored_map(d, "changes")
        changes = cls()
        for t, raw in _stored_map(d.get("updated"), "updated").items():
            if not isinstance(raw, bytes) or len(raw) % 8:
                raise ValueError(f"updated rows of {t!r} are not int64s")
            changes.updated[_name(t)] = set(np.frombuffer(raw, dtype=np.int64).tolist())
        info = d.get("info") or []
        if not isinstance(info, list):
            raise TypeError(f"info is {info!r}, not a list")
        changes.info = {_name(t) for t in info}
        for t, n in _stored_map(d.get("deleted"), "deleted").items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"{n!r} rows deleted from {t!r}")
            changes.deleted[_name(t)] = n
        changes.renamed = {
            _name(a): _name(b) for a, b in _stored_map(d.get("renamed"), "renamed").items()
        }
        return changes


def _stored_map(value: Any, name: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name} is {value!r}, not a map")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"tensor name {value!r} is not a string")
    return value
