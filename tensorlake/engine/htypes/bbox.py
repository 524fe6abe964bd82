"""``bbox``: float32 boxes of shape (N, 4), in the coordinates the tensor's ``coords``
names: ``type`` pixel or fractional, ``mode`` LTWH, LTRB or CCWH."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tensorlake.engine.htypes.base import Htype, Invalid
from tensorlake.errors import HtypeError

__all__ = ["BBOX_MODES", "BBOX_TYPES", "BBoxHtype"]

BBOX_TYPES = ("pixel", "fractional")
BBOX_MODES = ("LTWH", "LTRB", "CCWH")


@dataclass(frozen=True, slots=True)
class BBoxHtype(Htype):
    name: str = "bbox"
    dtype: str | None = "float32"
    ndims: tuple[int, ...] | None = (2,)
    info_keys: tuple[str, ...] = ("coords",)

    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        coords = dict(kwargs.get("coords") or {})
        coords.setdefault("type", "pixel")
        coords.setdefault("mode", "LTWH")
        if coords["type"] not in BBOX_TYPES or coords["mode"] not in BBOX_MODES:
            raise HtypeError(
                f"coords must have type in {BBOX_TYPES} and mode in {BBOX_MODES}, got {coords}."
            )
        return {"coords": coords}

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        if arr.size == 0:
            return arr.reshape(0, 4)
        if arr.ndim == 1 and arr.shape[0] == 4:
            return arr.reshape(1, 4)  # one box
        return arr

    def check_rank(self, shape: tuple[int, ...]) -> None:
        super(BBoxHtype, self).check_rank(shape)
        if shape[1] != 4:
            raise Invalid(f"expected boxes of shape (N, 4), got {shape}.")
