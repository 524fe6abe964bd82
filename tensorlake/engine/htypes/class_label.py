"""Label htypes, uint32 ids:

* ``class_label``: shape (N,), with the tensor's ``class_names``. Labels may be
  appended as names: new names get the next ids (applied once the batch is valid).
* ``segment_mask``: (H, W) (or (H, W, 1)) class ids per pixel, ``class_names`` in the
  info; lz4 by default (the masks are mostly runs).
* ``instance_label``: shape (N,), instance ids (no names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import Htype, Invalid, Pending
from tensorlake.errors import HtypeError

__all__ = ["ClassLabelHtype", "InstanceLabelHtype", "SegmentMaskHtype", "check_class_names"]


def check_class_names(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The info of a tensor with class names, from ``class_names=``."""
    names = kwargs.get("class_names") or []
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise HtypeError("class_names must be a list of strings.")
    return {"class_names": list(names)}


@dataclass(frozen=True, slots=True)
class ClassLabelHtype(Htype):
    name: str = "class_label"
    dtype: str | None = "uint32"
    ndims: tuple[int, ...] | None = (1,)
    info_keys: tuple[str, ...] = ("class_names",)

    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return check_class_names(kwargs)

    def convert(self, value: Any, pending: Pending) -> Any:
        labels = [value] if isinstance(value, str) else value
        if not isinstance(labels, (list, tuple)) or not any(isinstance(v, str) for v in labels):
            return value
        if not all(isinstance(v, str) for v in labels):
            raise Invalid("class labels must be all names or all integers, not a mix.")
        if pending.class_names is None:
            pending.class_names = []
        ids = []
        for name in labels:
            if name not in pending.class_names:
                if not pending.new_class_names:  # the first new name: copy the meta's list
                    pending.class_names = list(pending.class_names)
                pending.class_names.append(name)
                pending.new_class_names.append(name)
            ids.append(pending.class_names.index(name))
        return np.asarray(ids, dtype=np.uint32)

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        return arr.reshape(1) if arr.ndim == 0 else arr

    def data(self, value: Any, meta: TensorMeta, one_row: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"value": value}
        names = meta.info.get("class_names") or []
        if names:
            rows = [value] if one_row else value
            text = [[names[int(i)] for i in np.asarray(r).reshape(-1)] for r in rows]
            out["text"] = text[0] if one_row else text
        return out


@dataclass(frozen=True, slots=True)
class SegmentMaskHtype(Htype):
    name: str = "segment_mask"
    dtype: str | None = "uint32"
    sample_compression: object = "lz4"
    ndims: tuple[int, ...] | None = (2, 3)
    info_keys: tuple[str, ...] = ("class_names",)

    sample_info: ClassVar[bool] = True

    def initial_info(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return check_class_names(kwargs)

    def empty_shape(self, pending: Pending) -> tuple[int, ...] | None:
        return (0,) * (pending.ndim or 2)


@dataclass(frozen=True, slots=True)
class InstanceLabelHtype(Htype):
    name: str = "instance_label"
    dtype: str | None = "uint32"
    ndims: tuple[int, ...] | None = (1,)
