"""Images: ``image`` (1, 3 or 4 channels), ``image.rgb`` and ``image.gray``, uint8 of shape
(H, W, C). The sample compression must be chosen; ``jpeg``/``png`` files read with
``tl.read`` are stored byte for byte when their format matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tensorlake.engine.htypes.base import IMAGE_COMPRESSIONS, UNSET, Htype, Invalid

__all__ = ["IMAGE_HTYPES", "ImageHtype"]


@dataclass(frozen=True, slots=True)
class ImageHtype(Htype):
    dtype: str | None = "uint8"
    sample_compression: object = UNSET
    compressions: tuple[str | None, ...] = (None, "lz4", *IMAGE_COMPRESSIONS)
    ndims: tuple[int, ...] | None = (3,)
    channels: tuple[int, ...] = (1, 3, 4)

    sample_info: ClassVar[bool] = True

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        return arr[:, :, None] if arr.ndim == 2 else arr  # (H, W) -> (H, W, 1)

    def check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[2] not in self.channels:
            raise Invalid(
                f"expected an image of shape (H, W, C) with C in {self.channels}, got {shape}."
            )


IMAGE_HTYPES = (
    ImageHtype("image"),
    ImageHtype("image.rgb", channels=(3,)),
    ImageHtype("image.gray", channels=(1,)),
)
