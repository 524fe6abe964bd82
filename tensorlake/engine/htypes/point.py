"""``point``: points of shape (N, 2) or (N, 3), int32 unless ``dtype=`` says otherwise
(Deep Lake's ``point``). One point alone, ``[x, y]``, is the row ``[[x, y]]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.engine.htypes.base import Htype, Invalid, dtype_name

__all__ = ["PointHtype"]


@dataclass(frozen=True, slots=True)
class PointHtype(Htype):
    name: str = "point"
    ndims: tuple[int, ...] | None = (2,)

    def resolve_dtype(self, dtype: Any) -> str | None:
        return "int32" if dtype is None else dtype_name(dtype)

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        if arr.ndim == 1 and arr.shape[0] in (2, 3):
            return arr.reshape(1, -1)  # one point
        return arr

    def check_rank(self, shape: tuple[int, ...]) -> None:
        Htype.check_rank(self, shape)
        if shape[0] and shape[1] not in (2, 3):
            raise Invalid(f"expected points of shape (N, 2) or (N, 3), got {shape}.")
