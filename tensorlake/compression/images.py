"""Image bytes <-> uint8 arrays: JPEG and PNG through Pillow.

Arrays are always ``uint8`` of shape ``(H, W, C)``: gray images are ``(H, W, 1)``,
colour ``(H, W, 3)``, with alpha ``(H, W, 4)``. How other layouts (palette, CMYK,
16-bit, gray + alpha) are converted is tabled in ``_image_headers``; the rule that
holds for every input is ``decode_image(data).shape == read_image_shape(data)``.
Pixels are returned as stored: EXIF orientation is not applied.

``decode_image(data, out=buf)`` decodes into memory the caller reuses, which is
what makes reading fast (see ``_decode`` for why and for the numbers).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from tensorlake.compression._decode import check_bomb, decode_into
from tensorlake.compression._image_headers import as_byte_view, detect_format, parse_header
from tensorlake.compression.codecs import BYTE_CODECS

__all__ = [
    "IMAGE_FORMATS",
    "SAMPLE_COMPRESSIONS",
    "decode_image",
    "detect_image_format",
    "encode_image",
    "image_exif",
    "normalize_compression",
    "read_image_shape",
]

IMAGE_FORMATS: tuple[str, ...] = ("jpeg", "png")
"""Image formats ``encode_image`` writes and ``decode_image`` reads."""

SAMPLE_COMPRESSIONS: tuple[str | None, ...] = (None, *BYTE_CODECS, *IMAGE_FORMATS)
"""Every valid ``sample_compression``: none, a byte codec, or an image format."""

_ALIASES = {"jpg": "jpeg"}
_CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG"}


def normalize_compression(name: str | None) -> str | None:
    """The canonical name of a sample compression: case-insensitive, ``"jpg"`` -> ``"jpeg"``.

    >>> normalize_compression("JPG"), normalize_compression("lz4"), normalize_compression(None)
    ('jpeg', 'lz4', None)
    """
    if name is None:
        return None
    if isinstance(name, str):
        key = name.strip().lower()
        key = _ALIASES.get(key, key)
        if key in SAMPLE_COMPRESSIONS:
            return key
    valid = ", ".join(repr(c) for c in SAMPLE_COMPRESSIONS)
    raise ValueError(f"unknown compression {name!r}; expected one of {valid} (or 'jpg')")


def detect_image_format(data: bytes | bytearray | memoryview) -> str | None:
    """``"jpeg"`` or ``"png"`` from the leading magic bytes, else ``None``; decodes nothing."""
    return detect_format(data)


def read_image_shape(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``(H, W, C)`` of a JPEG or PNG from its header alone: the shape ``decode_image`` returns.

    Raises :class:`~tensorlake.errors.FormatError` for bytes that are not a JPEG or PNG
    image or whose header is corrupt.

    >>> read_image_shape(encode_image(np.zeros((4, 6), np.uint8), "png"))
    (4, 6, 1)
    """
    return parse_header(data).shape


def encode_image(arr: np.ndarray, fmt: str, *, quality: int = 90) -> bytes:
    """Encode a uint8 ``(H, W)`` or ``(H, W, C)`` array (C in 1, 3, 4) as ``fmt``.

    ``fmt`` is ``"jpeg"`` (alias ``"jpg"``) or ``"png"``; ``quality`` (1-100) applies to
    JPEG only. JPEG has no alpha channel, so 4 channels need ``"png"``.

    >>> data = encode_image(np.full((8, 8, 3), 200, np.uint8), "jpg", quality=95)
    >>> detect_image_format(data), read_image_shape(data)
    ('jpeg', (8, 8, 3))
    """
    name = normalize_compression(fmt)
    if name not in IMAGE_FORMATS:
        raise ValueError(f"{fmt!r} is not an image format; expected one of {IMAGE_FORMATS}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int from 1 to 100, got {quality!r}")
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., np.newaxis]
    if arr.ndim != 3 or arr.shape[2] not in _CHANNEL_MODES:
        raise ValueError(
            f"images must have shape (H, W) or (H, W, C) with C in 1, 3, 4; got {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"cannot encode an empty image of shape {arr.shape}")
    channels = arr.shape[2]
    if name == "jpeg" and channels == 4:
        raise ValueError(
            "JPEG cannot store an alpha channel: encode (H, W, 4) images as 'png', "
            "or drop the alpha channel first (arr[..., :3])"
        )
    pixels = np.ascontiguousarray(arr[..., 0] if channels == 1 else arr)
    image = Image.fromarray(pixels)  # uint8 (H, W) / (H, W, 3) / (H, W, 4): L / RGB / RGBA
    options = {"quality": quality} if name == "jpeg" else {}
    buf = io.BytesIO()
    try:
        image.save(buf, _PILLOW_FORMATS[name], **options)
    except (OSError, ValueError) as err:  # e.g. a side longer than JPEG's 65,535 pixels
        raise ValueError(f"cannot encode a {arr.shape} image as {name}: {err}") from err
    return buf.getvalue()


def decode_image(data: bytes | bytearray | memoryview, out: np.ndarray | None = None) -> np.ndarray:
    """Decode JPEG or PNG bytes to a uint8 ``(H, W, C)`` array (shape: ``read_image_shape``).

    With ``out`` (a writable, C-contiguous uint8 array of exactly that shape) the
    pixels are decoded into it and ``out`` is returned: the fast way to read many
    images, because reused memory costs no page faults. Corrupt or non-image bytes
    raise :class:`~tensorlake.errors.FormatError`; a wrong ``out``, ``ValueError``.

    >>> data = encode_image(np.arange(12, dtype=np.uint8).reshape(2, 2, 3), "png")
    >>> buf = np.empty((2, 2, 3), np.uint8)
    >>> decode_image(data, out=buf) is buf, buf[1, 1].tolist()
    (True, [9, 10, 11])
    """
    view = as_byte_view(data)
    header = parse_header(view)
    check_bomb(header)  # before ``out`` is allocated from what the header says
    if out is None:
        out = np.empty(header.shape, dtype=np.uint8)
    else:
        _check_out(out, header.shape)
    decode_into(view, header, out)
    return out


def image_exif(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The EXIF tags of a JPEG or PNG as JSON-friendly values (``{}`` when it has none or
    they cannot be parsed): tag names as Pillow knows them, rationals as floats, bytes
    as text. Reads the header only."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            raw = image.getexif()
    except Exception:  # corrupt EXIF must not fail an append: Deep Lake warns, we skip
        return {}
    out: dict[str, Any] = {}
    for tag, value in raw.items():
        value = _exif_value(value)
        if value is not None:
            out[str(ExifTags.TAGS.get(tag, tag))] = value
    return out


def _exif_value(value: Any) -> Any:
    if hasattr(value, "numerator") and hasattr(value, "denominator"):  # a rational
        return float(value.numerator) / float(value.denominator) if value.denominator else 0.0
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, tuple):
        return [_exif_value(v) for v in value]
    return None  # nested IFDs and other objects: not kept


def _check_out(out: np.ndarray, shape: tuple[int, int, int]) -> None:
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != np.uint8 or out.shape != shape:
        raise ValueError(
            f"out must be a uint8 array of shape {shape} (from the image header); "
            f"got {out.dtype} {out.shape}"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writable (np.empty(shape, np.uint8))")
