"""Saved views: a view's rows and the commit it was taken at, stored beside the dataset.

``views/<id>.msgpack`` is a msgpack map: ``format`` (1), ``id``, ``message``, ``commit``
(the commit id the rows refer to), ``branch``, ``time`` (Unix seconds), ``group`` (the
group the view was of, ``""`` for the dataset), ``rows`` (the int64 row numbers, raw
little-endian bytes, in view order), ``tensors`` (the tensor names the view keeps, or
``None``: all) and ``optimized`` (``True`` when the view's rows were also copied into a
dataset of their own under ``views/<id>/``). A view object is written once; deleting
the view deletes it (and its optimized copy). Views are not part of any version: every
branch sees them, and gc keeps the commits they name.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from tensorlake.engine.format import keys
from tensorlake.engine.format.packing import pack, unpack
from tensorlake.errors import DatasetArgumentError, FormatError, KeyNotFoundError
from tensorlake.storage import Storage

__all__ = [
    "VIEW_FORMAT",
    "SavedView",
    "check_view_id",
    "list_views",
    "new_view_id",
    "read_view",
    "write_view",
]

VIEW_FORMAT = 1
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True, slots=True)
class SavedView:
    """A stored view: which rows of which commit."""

    id: str
    message: str | None
    commit: str
    branch: str
    time: float
    group: str
    rows: np.ndarray
    tensors: tuple[str, ...] | None
    optimized: bool = False

    def to_bytes(self) -> bytes:
        return pack(
            {
                "format": VIEW_FORMAT,
                "id": self.id,
                "message": self.message,
                "commit": self.commit,
                "branch": self.branch,
                "time": self.time,
                "group": self.group,
                "rows": np.asarray(self.rows, dtype="<i8").tobytes(),
                "tensors": list(self.tensors) if self.tensors is not None else None,
                "optimized": self.optimized,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> SavedView:
        """A stored view, every field checked; ``FormatError`` naming ``key`` otherwise."""
        raw = unpack(data, f"Saved view {key}", key)
        try:
            if not isinstance(raw, dict):
                raise TypeError(f"the object is a {type(raw).__name__}, not a map")
            fmt = raw.get("format", 0)
            if not isinstance(fmt, int) or isinstance(fmt, bool):
                raise TypeError(f"format {fmt!r}")
            if fmt > VIEW_FORMAT:
                raise FormatError(
                    f"Saved view {key} is of format {fmt}, newer than this "
                    f"tensorlake reads ({VIEW_FORMAT}). Upgrade tensorlake.",
                    key=key,
                )
            tensors = raw.get("tensors")
            if tensors is not None and (
                not isinstance(tensors, list) or not all(isinstance(t, str) for t in tensors)
            ):
                raise TypeError(f"tensors {tensors!r}")
            message, when, rows = raw.get("message"), raw.get("time") or 0, raw["rows"]
            if message is not None and not isinstance(message, str):
                raise TypeError(f"message {message!r}")
            if (
                not isinstance(when, int | float)
                or isinstance(when, bool)
                or not math.isfinite(when)
            ):
                raise ValueError(f"time {when!r}")
            if not isinstance(rows, bytes):
                raise TypeError("rows are not int64 bytes")
            return cls(
                id=_text(raw["id"], "id"),
                message=message,
                commit=_text(raw["commit"], "commit"),
                branch=_text(raw.get("branch") or "", "branch"),
                time=float(when),
                group=_text(raw.get("group") or "", "group"),
                rows=np.frombuffer(rows, dtype="<i8").astype(np.int64),
                tensors=tuple(tensors) if tensors is not None else None,
                optimized=bool(raw.get("optimized", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
            raise FormatError(f"Saved view {key} is malformed: {err!r}", key=key) from err


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} {value!r} is not a string")
    return value


def check_view_id(view_id: object) -> str:
    if not isinstance(view_id, str) or not _ID.match(view_id):
        raise DatasetArgumentError(
            f"A view id is a string of letters, digits, '_', '-', '.' (at most 128), "
            f"got {view_id!r}."
        )
    return view_id


def new_view_id() -> str:
    return f"{int(time.time() * 1000):x}-{np.random.default_rng().integers(1 << 32):08x}"


def write_view(storage: Storage, view: SavedView, overwrite: bool) -> bool:
    """Store ``view``; False when one with its id exists and not ``overwrite``."""
    key = keys.view_key(view.id)
    if overwrite:
        storage.put(key, view.to_bytes())
        return True
    return storage.put_if_absent(key, view.to_bytes())


def read_view(storage: Storage, view_id: str) -> SavedView | None:
    key = keys.view_key(view_id)
    try:
        return SavedView.from_bytes(storage.get(key), key)
    except KeyNotFoundError:
        return None


def list_views(storage: Storage) -> list[SavedView]:
    """Every saved view, oldest first (none where the storage cannot list: HTTP)."""
    if not storage.supports_listing:
        return []
    wanted = [k for k in storage.list(keys.VIEWS_PREFIX) if keys.view_id_of(k) is not None]
    views = [SavedView.from_bytes(data, key) for key, data in storage.get_many(wanted)]
    return sorted(views, key=lambda v: (v.time, v.id))
