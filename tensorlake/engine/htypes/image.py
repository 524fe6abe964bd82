"""Images: ``image`` (1, 3 or 4 channels), ``image.rgb`` and ``image.gray``, uint8 of shape
(H, W, C). The sample compression must be chosen; ``jpeg``/``png`` files read with
``tl.read`` are stored byte for byte when their format matches. An (H, W) array is the
image (H, W, 1), as in Deep Lake.

As Deep Lake does, ``image.rgb`` and ``image.gray`` convert what they are given: gray to
RGB by repeating the channel, RGBA to RGB by dropping alpha, RGB(A) to gray by ITU-R 601
luma (each channel's weighted value rounded down, then summed). A file of the other
kind is decoded, converted and encoded again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes.base import (
    IMAGE_COMPRESSIONS,
    UNSET,
    Encoded,
    Htype,
    Invalid,
    Pending,
)
from tensorlake.engine.htypes.sample import Sample

__all__ = ["IMAGE_HTYPES", "ImageHtype"]

_ANY = (1, 3, 4)
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True, slots=True)
class ImageHtype(Htype):
    dtype: str | None = "uint8"
    sample_compression: object = UNSET
    compressions: tuple[str | None, ...] = (None, "lz4", *IMAGE_COMPRESSIONS)
    ndims: tuple[int, ...] | None = (3,)
    channels: tuple[int, ...] = _ANY

    sample_info: ClassVar[bool] = True

    def encode(self, meta: TensorMeta, value: Any, pending: Pending) -> Encoded:
        if (
            isinstance(value, Sample)
            and self.channels != _ANY
            and value.compression is not None
            and value.shape[2] not in self.channels
        ):
            value = value.array  # converted by normalize, then encoded again
        return Htype.encode(self, meta, value, pending)

    def normalize(self, arr: np.ndarray) -> np.ndarray:
        arr = arr[:, :, None] if arr.ndim == 2 else arr  # (H, W) -> (H, W, 1)
        if self.channels != _ANY and arr.ndim == 3 and arr.shape[2] not in self.channels:
            return _convert(arr, self.channels)
        return arr

    def check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 3 or shape[2] not in self.channels:
            raise Invalid(
                f"expected an image of shape (H, W, C) with C in {self.channels}, got {shape}."
            )


def _convert(arr: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    have = arr.shape[2]
    if channels == (3,) and have == 1:
        return np.repeat(arr, 3, axis=2)
    if channels == (3,) and have == 4:
        return arr[:, :, :3]
    if channels == (1,) and have in (3, 4):
        luma = sum(np.floor(arr[:, :, i] * w) for i, w in enumerate(_LUMA))
        return np.asarray(luma).astype(arr.dtype)[:, :, None]
    return arr  # nothing to convert from: check_rank says what was expected


IMAGE_HTYPES = (
    ImageHtype("image"),
    ImageHtype("image.rgb", channels=(3,)),
    ImageHtype("image.gray", channels=(1,)),
)
