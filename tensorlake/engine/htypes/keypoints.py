"""``keypoints_coco``: COCO keypoints of shape (3K, N), one column per object.

Deep Lake 3's layout: column ``j`` is object ``j``'s ``[x1, y1, v1, ..., xK, yK, vK]``,
``v`` the COCO visibility (0 not labelled, 1 labelled but hidden, 2 visible); int32
unless ``dtype=`` says otherwise. ``keypoints`` (the K names) and ``connections``
(pairs of 0-based keypoint indices, the lines a viewer draws) are kept in the tensor's
info. Every object of every row has the same K keypoints, in the same order; one that
is not labelled is ``(0, 0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Encoded, Htype, Invalid, Pending, dtype_name
from tensorlake.errors import HtypeError

__all__ = ["KeypointsCocoHtype"]


@dataclass(frozen=True, slots=True)
class KeypointsCocoHtype(Htype):
    name: str = "keypoints_coco"
    ndims: tuple[int, ...] | None = (2,)
    info_keys: tuple[str, ...] = ("keypoints", "connections")

    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        names = kwargs.get("keypoints") or []
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise HtypeError("keypoints must be a list of keypoint names (strings).")
        connections = [list(pair) for pair in kwargs.get("connections") or []]
        for pair in connections:
            if len(pair) != 2 or not all(isinstance(i, int) and i >= 0 for i in pair):
                raise HtypeError(
                    f"connections must be pairs of keypoint indices, got {pair!r} "
                    "(e.g. [[0, 1], [1, 2]])."
                )
            if names and max(pair) >= len(names):
                raise HtypeError(
                    f"connection {pair} names keypoint {max(pair)}, but there are "
                    f"{len(names)} keypoints (indices start at 0)."
                )
        return {"keypoints": list(names), "connections": connections}

    def resolve_dtype(self, dtype: Any) -> str | None:
        return "int32" if dtype is None else dtype_name(dtype)

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        data, shape = Htype.encode(self, meta, value, pending)
        names = meta.info.get("keypoints") or ()
        if names and shape[1] and shape[0] != 3 * len(names):
            raise Invalid(
                f"the tensor's info names {len(names)} keypoints, so each object has "
                f"{3 * len(names)} values (x, y, v each); got shape {shape}."
            )
        return data, shape

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        if arr.size == 0 and arr.ndim < 2:
            return arr.reshape(0, 0)  # a row without objects
        return arr.reshape(-1, 1) if arr.ndim == 1 else arr  # one object

    def cast(self, arr: np.ndarray, pending: Pending) -> np.ndarray:
        if arr.size == 0 and pending.dtype is not None:  # [] is float64 to numpy
            return arr.astype(pending.dtype)
        return Htype.cast(self, arr, pending)

    def check_rank(self, shape: tuple[int, ...]) -> None:
        Htype.check_rank(self, shape)
        if shape[0] % 3:
            raise Invalid(
                f"expected keypoints of shape (3K, N): x, y, visibility for each of K "
                f"keypoints, one column per object; got {shape}."
            )
