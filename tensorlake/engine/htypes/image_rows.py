"""Rows stored as JPEG or PNG images, whatever their htype, and which codec a row and a
chunk get from a tensor's ``sample_compression`` and ``chunk_compression``.

Deep Lake lets any array tensor (``generic`` too, not only ``image``) be compressed with
an image format, per sample (``sample_compression="png"``) or per chunk
(``chunk_compression="png"``). A row's array is the image of its shape: ``(H, W, C)``
as it is, ``(H, W)`` as one channel, ``(N,)`` as a ``(1, N)`` image; the row keeps its own
shape in the chunk header and reads back as it was appended.

Format decision: an image ``chunk_compression`` is applied row by row (each row is one
JPEG or PNG, the chunk header records no byte compression), where Deep Lake tiles a
chunk's rows onto one image. Values read back alike (PNG exactly, JPEG within its loss);
rows stay independently readable with one ranged read, as every other tensor's are.
"""

from __future__ import annotations

import math

import numpy as np

from tensorlake.compression import IMAGE_FORMATS, decode_image, encode_image, read_image_shape
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.errors import FormatError

__all__ = ["chunk_codec", "decode_image_row", "encode_image_row", "image_shape", "row_codec"]


def row_codec(meta: TensorMeta) -> str | None:
    """The codec each row's bytes are stored with: the sample compression, or an image
    chunk compression (applied per row, see the module docstring)."""
    if meta.sample_compression is not None:
        return meta.sample_compression
    return meta.chunk_compression if meta.chunk_compression in IMAGE_FORMATS else None


def chunk_codec(meta: TensorMeta) -> str | None:
    """The byte codec a chunk's payload is compressed with (``lz4`` or none)."""
    return None if meta.chunk_compression in IMAGE_FORMATS else meta.chunk_compression


def image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The ``(H, W[, C])`` image a row of ``shape`` is stored as (None: no image has it)."""
    if len(shape) == 1:
        return (1, shape[0])
    return shape if len(shape) in (2, 3) else None


def encode_image_row(arr: np.ndarray, fmt: str) -> bytes:
    """One row's array as a ``fmt`` image; ``ValueError`` saying why it cannot be one.
    A row of no elements is stored as no bytes (an empty row)."""
    if arr.dtype != np.uint8:
        raise ValueError(f"{fmt} samples must be uint8, got {arr.dtype}.")
    if arr.size == 0:
        return b""
    shape = image_shape(arr.shape)
    if shape is None:
        raise ValueError(
            f"{fmt} stores arrays of shape (N,), (H, W) or (H, W, C); got {arr.shape}. "
            "Use sample_compression='lz4' (or none) for arrays of other ranks."
        )
    return encode_image(arr.reshape(shape), fmt)


def decode_image_row(
    meta: TensorMeta,
    data: memoryview | bytes,
    shape: tuple[int, ...],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A row stored by ``encode_image_row``, as an array of its stored ``shape``."""
    if not len(data):  # an empty row (None appended, or no elements)
        if out is None:
            return np.zeros(shape, np.uint8)
        out[...] = 0
        return out
    found = read_image_shape(data)  # (H, W, C) from the header alone
    want = image_shape(shape)
    if want is None or math.prod(found) != math.prod(want) or found[:2] != want[:2]:
        raise FormatError(
            f"tensor '{meta.name}': a row's image is {found}, expected one of shape {shape}."
        )
    if out is not None and out.flags.c_contiguous and out.flags.writeable:
        decode_image(data, out=out.reshape(found))  # a view of out: decoded in place
        return out
    arr = decode_image(data).reshape(shape)
    if out is not None:
        out[...] = arr
        return out
    return arr
