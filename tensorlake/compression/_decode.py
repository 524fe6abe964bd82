"""Decode JPEG and PNG bytes into numpy memory that is reused, not freshly allocated.

Why this module exists: on the machines we measured, the page faults of touching
new memory cost about as much as the JPEG decode itself. ``np.asarray(Image.open(b))``
decodes into a new Pillow image, packs it into a new ``bytes`` (``tobytes``) and
wraps that: about 700 page faults for a 640x480 RGB image, and about a third of the
speed of decoding into memory that is already mapped. So:

* JPEG (8-bit gray or 3 components): libjpeg-turbo through ``simplejpeg`` writes
  straight into ``out``, with the settings Pillow uses (so the pixels are Pillow's).
  Without simplejpeg, for 3 components, the header is parsed here (``_image_headers``),
  then Pillow's JPEG decoder is driven directly (the calls ``ImageFile.load`` makes)
  into a per-thread RGBX scratch buffer (libjpeg-turbo writes 4 bytes per pixel
  through Pillow whatever we ask for), which is then packed into ``out``.
* Gray JPEG: decoded straight into ``out``, which Pillow maps as an "L" image.
* PNG: ``Image.open`` parses the chunks; the image's pixel memory is replaced by
  ``out`` (gray, RGBA) or the scratch buffer (RGB) before ``load()``.
* Anything else (CMYK JPEG, palette / gray+alpha / 16-bit PNG, or a Pillow whose
  internals differ) decodes the ordinary way and is converted and copied.

Process-wide settings also help the ordinary path (``MALLOC_TOP_PAD_=64MiB`` removes
all its faults, ``PILLOW_BLOCKS_MAX`` those of Pillow's image memory only), but a
library must not change those for its users; reusing memory works under any allocator.

The fast paths use ``PIL.Image.core`` (``map_buffer``, ``jpeg_decoder``), stable
since PIL but not a documented API: each is checked for and falls back to the
ordinary path, and the tests compare both paths pixel for pixel.
"""

from __future__ import annotations

import functools
import io
import threading
import warnings

import numpy as np
from PIL import Image

try:  # libjpeg-turbo without Pillow's per-line copies: ~10% faster, the same pixels
    import simplejpeg
except ImportError:  # a platform without its wheels: Pillow's decoder, driven directly
    simplejpeg = None

from tensorlake.compression._image_headers import ImageHeader
from tensorlake.errors import FormatError

__all__ = ["check_bomb", "decode_into", "pack_rgbx"]

_core = Image.core
_HAVE_MAP = hasattr(_core, "map_buffer")
_HAVE_JPEG = _HAVE_MAP and hasattr(_core, "jpeg_decoder")

# A thread's scratch buffer is kept for the next decode up to this size; a larger
# one (a 4K image needs 33 MB) is used once and freed.
_SCRATCH_KEEP_BYTES = 64 << 20
_local = threading.local()

_OPEN_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_PILLOW_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def decode_into(view: bytes | bytearray | memoryview, header: ImageHeader, out: np.ndarray) -> None:
    """Decode ``view`` into ``out``, a C-contiguous uint8 array of ``header.shape``."""
    check_bomb(header)
    if header.format == "jpeg" and header.simple and simplejpeg is not None:
        _simplejpeg_decode(view, header, out)
        return
    if header.format == "jpeg" and header.simple and _HAVE_JPEG:
        if header.channels == 1:
            _jpeg_decode(view, header, _map(out, "L", header))
        else:
            rgbx = _scratch(header)
            _jpeg_decode(view, header, _map(rgbx, "RGBX", header))
            pack_rgbx(rgbx, out)
        return
    image = _open(view, header)
    if header.format == "png" and _HAVE_MAP and _load_in_place(image, header, out):
        return
    out[...] = _convert(_load(image), header)


def pack_rgbx(rgbx: np.ndarray, out: np.ndarray) -> None:
    """Copy RGB out of RGBX pixels: ``out[..., :] = rgbx[..., :3]``, both C-contiguous.

    numpy copies ``rgbx[..., :3]`` with a 3-element inner loop (2.5 ms for 640x480
    here). Instead, every pixel is copied as one 4-byte word to an address 3 bytes
    after the last, so each word's spare byte is overwritten by the next pixel's
    red (what Pillow's own packer does): 0.11 ms. That relies on numpy copying a
    1-D array front to back, so it is checked once and replaced by a per-channel
    copy (0.35 ms) if that ever stops being true.
    """
    if _overlapping_pack_works():
        _pack_overlapping(rgbx, out)
    else:
        for channel in range(3):
            out[..., channel] = rgbx[..., channel]


def _pack_overlapping(rgbx: np.ndarray, out: np.ndarray) -> None:
    pixels = out.size // 3
    flat = out.reshape(-1)
    if pixels > 1:
        words = np.ndarray((pixels - 1,), dtype=np.uint32, buffer=flat, strides=(3,))
        words[...] = rgbx.reshape(-1)[: 4 * (pixels - 1)].view(np.uint32)
    if pixels:
        flat[-3:] = rgbx.reshape(-1)[4 * pixels - 4 : 4 * pixels - 1]


@functools.cache
def _overlapping_pack_works() -> bool:
    # Large enough to span numpy's 8192-element iteration buffers.
    rgbx = np.random.default_rng(0).integers(0, 256, (67, 257, 4), dtype=np.uint8)
    out = np.zeros((67, 257, 3), dtype=np.uint8)
    _pack_overlapping(rgbx, out)
    return bool(np.array_equal(out, rgbx[..., :3]))


def _scratch(header: ImageHeader) -> np.ndarray:
    """A per-thread RGBX buffer of ``header``'s size (decoding releases the GIL)."""
    nbytes = header.height * header.width * 4
    buf = getattr(_local, "scratch", None)
    if buf is None or buf.size < nbytes:
        buf = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= _SCRATCH_KEEP_BYTES:
            _local.scratch = buf
    return buf[:nbytes].reshape(header.height, header.width, 4)


def _map(arr: np.ndarray, mode: str, header: ImageHeader):  # -> ImagingCore
    """A Pillow image core whose pixel rows are ``arr``'s memory."""
    return _core.map_buffer(arr, (header.width, header.height), "raw", 0, (mode, 0, 1))


def _jpeg_decode(view: bytes | bytearray | memoryview, header: ImageHeader, target) -> None:
    # What ImageFile.load does for a JPEG tile ("jpeg", extents, 0, (rawmode, "")),
    # with all the data in one call. ``decode`` returns (consumed, error): consumed
    # >= 0 means the decoder wants more data (truncated input), error < 0 a failure.
    decoder = _core.jpeg_decoder(header.mode, header.mode, "")
    decoder.setimage(target, (0, 0, header.width, header.height))
    try:
        consumed, error = decoder.decode(view)
    finally:
        decoder.cleanup()
    if consumed >= 0 or error < 0:
        what = "truncated" if consumed >= 0 else f"corrupt (decoder error {error})"
        raise FormatError(f"JPEG data is {what}: {len(view)} bytes, {header.width}x{header.height}")


def _simplejpeg_decode(
    view: bytes | bytearray | memoryview, header: ImageHeader, out: np.ndarray
) -> None:
    # libjpeg-turbo straight into ``out`` (RGB or gray, the slow exact DCT and fancy
    # upsampling, as Pillow decodes); strict: a truncated or corrupt file is an error
    colorspace = "GRAY" if header.channels == 1 else "RGB"
    try:
        simplejpeg.decode_jpeg(
            view, colorspace=colorspace, fastdct=False, fastupsample=False, buffer=out
        )
    except ValueError as err:
        raise FormatError(
            f"JPEG data is corrupt or truncated ({err}): {len(view)} bytes, "
            f"{header.width}x{header.height}"
        ) from err


def _open(view: bytes | bytearray | memoryview, header: ImageHeader) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(view), formats=("JPEG", "PNG"))
    except _OPEN_ERRORS as err:
        raise FormatError(f"cannot read {header.format} image: {err}") from err
    if image.size != (header.width, header.height):
        raise FormatError(
            f"{header.format} header says {header.width}x{header.height}, "
            f"Pillow reads {image.size[0]}x{image.size[1]}"
        )
    return image


def _load(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except _OPEN_ERRORS as err:
        raise FormatError(f"cannot decode {image.format} image: {err}") from err
    return image


def _load_in_place(image: Image.Image, header: ImageHeader, out: np.ndarray) -> bool:
    """Decode a PNG into ``out`` by giving Pillow ``out``'s memory as the image's own.

    ``ImageFile.load`` keeps an image memory it was handed when its mode and size
    fit (Pillow >= 11 keeps any); if this Pillow replaced it, the caller converts.
    """
    if image.mode == "L" and header.channels == 1:
        target, rgbx = _map(out, "L", header), None
    elif image.mode == "RGBA" and header.channels == 4:
        target, rgbx = _map(out, "RGBA", header), None
    elif image.mode == "RGB" and header.channels == 3:
        rgbx = _scratch(header)
        target = _map(rgbx, "RGBX", header)
    else:
        return False
    try:
        image.im = target
    except AttributeError:  # a Pillow where ``im`` cannot be assigned
        return False
    _load(image)
    if image.im is not target:
        out[...] = _convert(image, header)
    elif rgbx is not None:
        pack_rgbx(rgbx, out)
    return True


def _convert(image: Image.Image, header: ImageHeader) -> np.ndarray:
    """The pixels of a loaded image as ``header.shape`` uint8 (see ``_image_headers``)."""
    mode = image.mode
    if header.channels == 1 and (mode.startswith("I;16") or mode == "I"):
        wide = np.asarray(image)  # uint16 (I;16) or int32 holding 16-bit values (I)
        arr = (np.clip(wide, 0, 0xFFFF) >> 8).astype(np.uint8)
    else:
        wanted = _PILLOW_MODES[header.channels]
        if mode != wanted:
            with warnings.catch_warnings():
                # Pillow warns that palette images with transparency "should be
                # converted to RGBA": that is the conversion being made here.
                warnings.simplefilter("ignore", UserWarning)
                image = image.convert(wanted)
        arr = np.asarray(image)
    if arr.size != header.height * header.width * header.channels:
        raise FormatError(f"decoded {header.format} has shape {arr.shape}, expected {header.shape}")
    return arr.reshape(header.shape)


def check_bomb(header: ImageHeader) -> None:
    # Pillow's decompression-bomb limit, applied before anything is allocated
    # (Pillow refuses more than twice MAX_IMAGE_PIXELS).
    limit = Image.MAX_IMAGE_PIXELS
    if limit and header.height * header.width > 2 * limit:
        raise FormatError(
            f"{header.format} image of {header.width}x{header.height} pixels is larger than "
            f"twice PIL.Image.MAX_IMAGE_PIXELS ({limit}); raise that limit to decode it"
        )
