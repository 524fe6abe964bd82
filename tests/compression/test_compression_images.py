"""JPEG / PNG encode, decode (plain, into ``out``, fast and fallback paths), headers, names."""

from __future__ import annotations

import io
import struct
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

from tensorlake.compression import (
    IMAGE_FORMATS,
    SAMPLE_COMPRESSIONS,
    _decode,
    decode_image,
    detect_image_format,
    encode_image,
    normalize_compression,
    read_image_shape,
)
from tensorlake.errors import FormatError

H, W = 48, 64


def smooth(channels: int, seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    """A photo-like image (gradients plus a little noise): JPEG-friendly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    planes = [
        96
        + 60 * np.sin(xx / rng.uniform(5, 15) + c) * np.cos(yy / rng.uniform(5, 15))
        + rng.normal(0, 2, (height, width))
        for c in range(channels)
    ]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


def noise(channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, channels), dtype=np.uint8)


def pillow_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def raw_png(arr: np.ndarray, color_type: int, depth: int, interlaced: bool = False) -> bytes:
    """A PNG written by hand, for layouts Pillow cannot write (16-bit RGB, Adam7)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width = arr.shape[:2]
    arr = arr.reshape(height, width, -1).astype(">u2" if depth == 16 else np.uint8)
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    rows = b""
    for x0, y0, dx, dy in passes:
        sub = np.ascontiguousarray(arr[y0::dy, x0::dx])
        if sub.size:
            rows += b"".join(b"\x00" + row.tobytes() for row in sub)
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlaced))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]


def pillow_reference(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, None),
        ("jpg", "jpeg"),
        ("JPG", "jpeg"),
        ("jpeg", "jpeg"),
        ("JPEG", "jpeg"),
        ("png", "png"),
        ("PNG", "png"),
        (" Png ", "png"),
        ("lz4", "lz4"),
        ("LZ4", "lz4"),
    ],
)
def test_normalize_compression(name: str | None, expected: str | None) -> None:
    assert normalize_compression(name) == expected


@pytest.mark.parametrize("name", ["gif", "zstd", "", "none", 3])
def test_unknown_compression_lists_valid_names(name: object) -> None:
    with pytest.raises(ValueError, match="'jpeg', 'png'"):
        normalize_compression(name)  # type: ignore[arg-type]


def test_sample_compressions() -> None:
    assert set(SAMPLE_COMPRESSIONS) == {None, "lz4", "jpeg", "png"}
    assert IMAGE_FORMATS == ("jpeg", "png")


# --------------------------------------------------------------------------- encode / decode


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(channels: int) -> None:
    arr = smooth(channels)
    data = encode_image(arr, "jpeg", quality=95)
    assert detect_image_format(data) == "jpeg"
    back = decode_image(data)
    assert back.shape == (H, W, channels) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - arr).mean() < 3


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_round_trip_is_exact(channels: int) -> None:
    arr = noise(channels)
    data = encode_image(arr, "png")
    assert detect_image_format(data) == "png"
    np.testing.assert_array_equal(decode_image(data), arr)


def test_two_dimensional_input_decodes_as_one_channel() -> None:
    arr = noise(1)[..., 0]
    np.testing.assert_array_equal(decode_image(encode_image(arr, "png"))[..., 0], arr)
    assert decode_image(encode_image(arr, "jpg")).shape == (H, W, 1)


def test_jpeg_rejects_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        encode_image(noise(4), "jpeg")


@pytest.mark.parametrize(
    ("arr", "fmt", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), "png", "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "png", r"C in 1, 3, 4"),
        (np.zeros((2, 4, 4, 3), np.uint8), "png", r"C in 1, 3, 4"),
        (np.zeros((0, 4, 3), np.uint8), "png", "empty"),
        (np.zeros((4, 4, 3), np.uint8), "lz4", "not an image format"),
        (np.zeros((4, 4, 3), np.uint8), "bmp", "unknown compression"),
    ],
)
def test_encode_bad_arguments(arr: np.ndarray, fmt: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_image(arr, fmt)


@pytest.mark.parametrize("quality", [0, 101, 9.5, True])
def test_encode_bad_quality(quality: object) -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_image(noise(3), "jpeg", quality=quality)  # type: ignore[arg-type]


def test_quality_changes_jpeg_size() -> None:
    arr = smooth(3)
    assert len(encode_image(arr, "jpeg", quality=30)) < len(encode_image(arr, "jpeg", quality=95))


# --------------------------------------------------------------------------- every layout


def _layouts() -> dict[str, bytes]:
    rgb, gray = smooth(3, 1), smooth(1, 2)[..., 0]
    rgba = noise(4, 3)
    rgb_image = Image.fromarray(rgb)
    palette = rgb_image.quantize(16)
    alpha16 = (noise(1, 4)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    return {
        "jpeg-gray": encode_image(gray, "jpeg"),
        "jpeg-rgb": encode_image(rgb, "jpeg"),
        "jpeg-rgb-444": pillow_bytes(rgb_image, "JPEG", quality=90, subsampling=0),
        "jpeg-progressive": pillow_bytes(rgb_image, "JPEG", progressive=True),
        "jpeg-cmyk": pillow_bytes(rgb_image.convert("CMYK"), "JPEG"),
        "jpeg-odd-size": encode_image(smooth(3, 5, 37, 23), "jpeg"),
        "png-gray": encode_image(gray, "png"),
        "png-rgb": encode_image(rgb, "png"),
        "png-rgba": encode_image(rgba, "png"),
        "png-1bit": pillow_bytes(Image.fromarray(gray > 100), "PNG"),
        "png-palette": pillow_bytes(palette, "PNG"),
        "png-palette-trns": pillow_bytes(palette, "PNG", transparency=0),
        "png-palette-4bit": pillow_bytes(rgb_image.quantize(8), "PNG", bits=4),
        "png-gray-alpha": pillow_bytes(Image.merge("LA", [Image.fromarray(gray)] * 2), "PNG"),
        "png-gray16": pillow_bytes(Image.fromarray(alpha16), "PNG"),
        "png-rgb16": raw_png(rgb.astype(np.uint16) * 257, color_type=2, depth=16),
        "png-rgba16": raw_png(rgba.astype(np.uint16) * 257, color_type=6, depth=16),
        "png-gray-alpha16": raw_png(rgba[..., :2].astype(np.uint16) * 257, color_type=4, depth=16),
        "png-interlaced": raw_png(rgb, color_type=2, depth=8, interlaced=True),
        "png-interlaced-rgba": raw_png(rgba[:13, :11], color_type=6, depth=8, interlaced=True),
    }


LAYOUTS = _layouts()
EXPECTED_CHANNELS = {
    "jpeg-gray": 1,
    "jpeg-rgb": 3,
    "jpeg-rgb-444": 3,
    "jpeg-progressive": 3,
    "jpeg-cmyk": 3,
    "jpeg-odd-size": 3,
    "png-gray": 1,
    "png-rgb": 3,
    "png-rgba": 4,
    "png-1bit": 1,
    "png-palette": 3,
    "png-palette-trns": 4,
    "png-palette-4bit": 3,
    "png-gray-alpha": 4,
    "png-gray16": 1,
    "png-rgb16": 3,
    "png-rgba16": 4,
    "png-gray-alpha16": 4,
    "png-interlaced": 3,
    "png-interlaced-rgba": 4,
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_read_image_shape_matches_decode(name: str) -> None:
    data = LAYOUTS[name]
    shape = read_image_shape(data)
    assert shape[2] == EXPECTED_CHANNELS[name]
    assert decode_image(data).shape == shape
    assert read_image_shape(memoryview(data)) == shape


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_decode_into_out_matches_plain_decode(name: str) -> None:
    data = LAYOUTS[name]
    plain = decode_image(data)
    buf = np.full(read_image_shape(data), 7, dtype=np.uint8)
    assert decode_image(data, out=buf) is buf
    np.testing.assert_array_equal(buf, plain)
    # and again into the same, now dirty, buffer (reuse is the point of ``out``)
    assert decode_image(bytearray(data), out=buf) is buf
    np.testing.assert_array_equal(buf, plain)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_decode_matches_pillow(name: str) -> None:
    data = LAYOUTS[name]
    ref = Image.open(io.BytesIO(data))
    got = decode_image(data)
    if ref.mode in ("L", "RGB", "RGBA"):
        np.testing.assert_array_equal(got.reshape(np.asarray(ref).shape), np.asarray(ref))
    elif ref.mode.startswith("I"):
        np.testing.assert_array_equal(got[..., 0], (np.asarray(ref) >> 8).astype(np.uint8))
    else:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[got.shape[2]]
        np.testing.assert_array_equal(got.reshape(-1), np.asarray(ref.convert(mode)).reshape(-1))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("disable", ["simplejpeg", "jpeg", "map", "pack"])
def test_fallback_paths_give_the_same_pixels(name: str, disable: str, monkeypatch) -> None:
    data = LAYOUTS[name]
    fast = decode_image(data)
    monkeypatch.setattr(_decode, "simplejpeg", None)  # every path below is Pillow's
    if disable == "jpeg":
        monkeypatch.setattr(_decode, "_HAVE_JPEG", False)
    elif disable == "map":
        monkeypatch.setattr(_decode, "_HAVE_JPEG", False)
        monkeypatch.setattr(_decode, "_HAVE_MAP", False)
    elif disable == "pack":
        monkeypatch.setattr(_decode, "_overlapping_pack_works", lambda: False)
    np.testing.assert_array_equal(decode_image(data), fast)


def test_rgbx_pack_matches_slicing() -> None:
    rgbx = noise(4, 9)
    for rows, cols in [(H, W), (1, 1), (1, 2), (3, 5)]:
        src = np.ascontiguousarray(rgbx[:rows, :cols])
        out = np.zeros((rows, cols, 3), np.uint8)
        _decode.pack_rgbx(src, out)
        np.testing.assert_array_equal(out, src[..., :3])


def test_decode_into_batch_slices() -> None:
    datas = [encode_image(smooth(3, seed), "jpeg") for seed in range(4)]
    batch = np.empty((4, H, W, 3), np.uint8)
    for i, data in enumerate(datas):
        assert decode_image(data, out=batch[i]) is not None
    for i, data in enumerate(datas):
        np.testing.assert_array_equal(batch[i], decode_image(data))


def test_threads_decode_independently() -> None:
    datas = [encode_image(smooth(3, seed, 96, 128), "jpeg") for seed in range(6)]
    expected = [pillow_reference(d) for d in datas]
    errors: list[str] = []

    def work(k: int) -> None:
        out = np.empty((96, 128, 3), np.uint8)
        for i in range(30):
            j = (i + k) % len(datas)
            if not np.array_equal(decode_image(datas[j], out=out), expected[j]):
                errors.append(f"thread {k} image {j}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "out",
    [
        np.empty((H, W, 1), np.uint8),
        np.empty((W, H, 3), np.uint8),
        np.empty((H, W, 3), np.float32),
        np.empty((H, W * 2, 3), np.uint8)[:, ::2],
        np.empty((H * W * 3,), np.uint8),
    ],
)
def test_wrong_out_is_value_error(out: np.ndarray) -> None:
    with pytest.raises(ValueError, match="out must"):
        decode_image(LAYOUTS["jpeg-rgb"], out=out)


def test_read_only_out_is_value_error() -> None:
    out = np.empty((H, W, 3), np.uint8)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        decode_image(LAYOUTS["png-rgb"], out=out)


NOT_IMAGES = [
    b"",
    b"hello world, this is not an image",
    b"\xff\xd8",  # JPEG SOI and nothing else
    b"\xff\xd8\xff\xe0\x00\x10JFIF",  # JPEG cut inside the header
    b"\x89PNG\r\n\x1a\n",  # PNG signature only
    b"GIF89a" + b"\x00" * 20,
    LAYOUTS["png-rgb"][:20],
]


@pytest.mark.parametrize("data", NOT_IMAGES)
def test_non_image_bytes_are_format_errors(data: bytes) -> None:
    assert detect_image_format(data) in (None, "jpeg", "png")
    with pytest.raises(FormatError):
        read_image_shape(data)
    with pytest.raises(FormatError):
        decode_image(data)


@pytest.mark.parametrize(
    "name", ["jpeg-rgb", "jpeg-gray", "jpeg-progressive", "png-rgb", "png-palette"]
)
def test_truncated_image_is_format_error(name: str) -> None:
    data = LAYOUTS[name]
    with pytest.raises(FormatError):
        decode_image(data[: len(data) // 2])


def test_detect_image_format() -> None:
    assert detect_image_format(LAYOUTS["jpeg-rgb"]) == "jpeg"
    assert detect_image_format(memoryview(LAYOUTS["png-rgb"])) == "png"
    assert detect_image_format(b"\x00" * 16) is None
    assert detect_image_format(b"") is None


def test_decompression_bomb_limit_applies(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(FormatError, match="MAX_IMAGE_PIXELS"):
        decode_image(LAYOUTS["jpeg-rgb"])
    assert read_image_shape(LAYOUTS["jpeg-rgb"]) == (H, W, 3)  # headers stay readable


def test_interlaced_png_decodes_exactly() -> None:
    rgb = smooth(3, 1)
    np.testing.assert_array_equal(decode_image(LAYOUTS["png-interlaced"]), rgb)
    np.testing.assert_array_equal(
        decode_image(LAYOUTS["png-interlaced-rgba"]), noise(4, 3)[:13, :11]
    )


FAST_LAYOUTS = [
    "jpeg-gray",
    "jpeg-rgb",
    "jpeg-progressive",
    "jpeg-odd-size",
    "png-gray",
    "png-rgba",
]
if int(Image.__version__.split(".")[0]) >= 11:  # keeps a handed-in image memory of another mode
    FAST_LAYOUTS += ["png-rgb", "png-rgb16", "png-interlaced"]


@pytest.mark.parametrize("name", FAST_LAYOUTS)
def test_common_layouts_take_the_fast_path(name: str, monkeypatch) -> None:
    def no_conversion(*args: object) -> None:
        raise AssertionError("took the slow path")

    monkeypatch.setattr(_decode, "_convert", no_conversion)
    decode_image(LAYOUTS[name], out=np.empty(read_image_shape(LAYOUTS[name]), np.uint8))
