"""Compression: ``bytes <-> bytes`` codecs, image bytes <-> uint8 arrays, mask bit-packing.

The lowest layer beside storage: it imports nothing from tensorlake but ``errors``.

* :mod:`.codecs` - ``compress`` / ``decompress`` with a byte codec (``"lz4"``) or ``None``.
* :mod:`.images` - JPEG and PNG via Pillow: ``encode_image``, ``decode_image`` (into
  reused memory with ``out=``), ``read_image_shape`` from headers, format names.
* :mod:`.masks` - ``pack_bool`` / ``unpack_bool`` for boolean masks.
"""

from __future__ import annotations

from tensorlake.compression.codecs import BYTE_CODECS, compress, decompress
from tensorlake.compression.images import (
    IMAGE_FORMATS,
    SAMPLE_COMPRESSIONS,
    decode_image,
    detect_image_format,
    encode_image,
    image_exif,
    normalize_compression,
    read_image_shape,
)
from tensorlake.compression.masks import pack_bool, pack_bool_array, packed_size, unpack_bool

__all__ = [
    "BYTE_CODECS",
    "IMAGE_FORMATS",
    "SAMPLE_COMPRESSIONS",
    "compress",
    "decode_image",
    "decompress",
    "detect_image_format",
    "encode_image",
    "image_exif",
    "normalize_compression",
    "pack_bool",
    "pack_bool_array",
    "packed_size",
    "read_image_shape",
    "unpack_bool",
]
