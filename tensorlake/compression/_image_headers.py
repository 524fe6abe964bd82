"""Read an image's size and layout from its header, without decoding pixels.

JPEG and PNG headers are parsed here, in a few microseconds, rather than through
``PIL.Image.open`` (tens of microseconds): ``read_image_shape`` runs on every
linked image at ingest, and ``decode_image`` needs the size before it can decode
into caller-provided memory.

The channel count is the one :func:`tensorlake.compression.decode_image` returns,
and it is decided here, once, for both:

==========================================  ==========================================
source                                      decoded as
==========================================  ==========================================
JPEG, 1 component                           gray, C = 1
JPEG, 3 components (YCbCr or RGB)           RGB, C = 3
JPEG, 4 components (CMYK, YCCK)             RGB, C = 3 (Pillow's CMYK -> RGB)
PNG gray, 1/2/4/8 bit                       gray, C = 1 (1-bit: 0 or 255)
PNG gray, 16 bit                            gray, C = 1, the high byte (value >> 8)
PNG RGB, 8/16 bit                           RGB, C = 3 (16 bit: the high byte)
PNG palette                                 RGB, C = 3; RGBA, C = 4 with a tRNS chunk
PNG gray + alpha                            RGBA, C = 4 (gray repeated, alpha kept)
PNG RGBA, 8/16 bit                          RGBA, C = 4
==========================================  ==========================================

A tRNS chunk on a gray or RGB PNG (one colour marked transparent) is ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tensorlake.errors import FormatError

__all__ = [
    "JPEG_MAGIC",
    "PNG_MAGIC",
    "ImageHeader",
    "as_byte_view",
    "detect_format",
    "parse_header",
]

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Start-of-frame markers: every one but DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(
    (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
)
# Baseline, extended and progressive Huffman: what the fast decode path accepts.
_JPEG_SOF_COMMON = frozenset((0xC0, 0xC1, 0xC2))
_JPEG_STANDALONE = frozenset((0x01, *range(0xD0, 0xD9)))  # TEM, RSTn, SOI
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9

_PNG_CHANNELS = {0: 1, 2: 3, 4: 4, 6: 4}  # colour type -> channels (3, palette, varies)
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What a header says: ``shape`` is what ``decode_image`` will return."""

    format: str  # "jpeg" or "png"
    height: int
    width: int
    channels: int
    # The decoded layout before any conversion, in Pillow's mode names ("L", "RGB",
    # "CMYK", "P", "LA", "RGBA", "I;16", "1"): decides whether a fast path applies.
    mode: str
    # JPEG: a common 8-bit SOF (baseline/extended/progressive Huffman). PNG: always True.
    simple: bool = True

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


def as_byte_view(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """``data`` itself when it is bytes-like, else a flat unsigned-byte memoryview of it."""
    if isinstance(data, bytes | bytearray):
        return data
    try:
        return memoryview(data).cast("B")
    except TypeError as err:  # not a buffer, or not contiguous
        raise ValueError(
            f"expected bytes or a contiguous buffer, got {type(data).__name__}"
        ) from err


def detect_format(data: bytes | bytearray | memoryview) -> str | None:
    head = bytes(as_byte_view(data)[:8])
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head == PNG_MAGIC:
        return "png"
    return None


def parse_header(data: bytes | bytearray | memoryview) -> ImageHeader:
    """Parse a JPEG or PNG header; :class:`FormatError` for anything else."""
    view = as_byte_view(data)
    fmt = detect_format(view)
    try:
        if fmt == "jpeg":
            return _parse_jpeg(view)
        if fmt == "png":
            return _parse_png(view)
    except (IndexError, struct.error) as err:
        raise FormatError(f"{fmt} header is truncated ({len(view)} bytes)") from err
    head = bytes(view[:8])
    raise FormatError(
        f"not a JPEG or PNG image: {len(view)} bytes starting with {head!r}; "
        "expected the JPEG (FF D8 FF) or PNG (89 'PNG' 0D 0A 1A 0A) signature"
    )


def _parse_jpeg(view: bytes | bytearray | memoryview) -> ImageHeader:
    # Walk the marker segments up to the first SOF, as libjpeg's reader does: junk
    # between segments and 0xFF fill bytes are skipped, standalone markers have no
    # length. The size found here must be the one libjpeg decodes (the fast path
    # decodes into a buffer of exactly this size), so anything unusual is refused.
    i, end = 2, len(view)
    while i < end:
        if view[i] != 0xFF:
            i += 1
            continue
        while i < end and view[i] == 0xFF:
            i += 1
        marker = view[i]
        i += 1
        if marker == 0x00 or marker in _JPEG_STANDALONE:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break
        (length,) = struct.unpack_from(">H", view, i)
        if marker in _JPEG_SOF:
            precision, height, width, components = struct.unpack_from(">BHHB", view, i + 2)
            if height == 0 or width == 0:
                raise FormatError(f"JPEG declares an empty or deferred size ({width}x{height})")
            if components == 1:
                mode, channels = "L", 1
            elif components == 3:
                mode, channels = "RGB", 3
            elif components == 4:
                mode, channels = "CMYK", 3
            else:
                raise FormatError(f"JPEG with {components} components is not supported")
            simple = marker in _JPEG_SOF_COMMON and precision == 8 and components != 4
            return ImageHeader("jpeg", height, width, channels, mode, simple)
        if length < 2:
            raise FormatError(f"JPEG marker segment 0x{marker:02X} has a bad length {length}")
        i += length
    raise FormatError("JPEG has no frame header (SOF marker) before its image data")


def _parse_png(view: bytes | bytearray | memoryview) -> ImageHeader:
    length, kind = struct.unpack_from(">I4s", view, 8)
    if kind != b"IHDR" or length != 13:
        raise FormatError("PNG does not start with an IHDR chunk")
    width, height, depth, color = struct.unpack_from(">IIBB", view, 16)
    if width == 0 or height == 0:
        raise FormatError(f"PNG declares an empty size ({width}x{height})")
    if depth not in _PNG_DEPTHS.get(color, ()):
        raise FormatError(f"PNG has an invalid colour type {color} / bit depth {depth}")
    if color == 0:
        mode = "1" if depth == 1 else "I;16" if depth == 16 else "L"
    else:
        mode = {2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}[color]
    channels = _PNG_CHANNELS.get(color) or (4 if _png_has_trns(view) else 3)
    return ImageHeader("png", height, width, channels, mode)


def _png_has_trns(view: bytes | bytearray | memoryview) -> bool:
    i = 8
    while i + 8 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, i)
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        i += 12 + length  # length, type, data, crc
    raise FormatError("PNG is truncated before its image data")
