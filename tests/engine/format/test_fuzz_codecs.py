"""Fuzzed sample codecs, as they decode the stored bytes of a row: lz4, bit-packed masks,
COCO RLE masks, JPEG and PNG. Damaged input gives a value or a ``FormatError`` (the
codec does not know the chunk's key; the chunk's row checksum has already named it for
damage on storage, so these bytes are damaged only by a buggy writer), never another
exception, and never a decode of a size the input cannot hold.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tensorlake.compression import (
    compress,
    decode_image,
    decompress,
    encode_image,
    pack_bool,
    read_image_shape,
    unpack_bool,
)
from tensorlake.compression.coco_rle import (
    check_rle,
    counts_from_runs,
    decode_rle,
    encode_rle,
    rle_row,
)
from tensorlake.errors import FormatError
from tests.engine.format.fuzzing import budget_for, corrupted, fuzz_settings, parse_checked

RNG = np.random.default_rng(3)
PLAIN = RNG.integers(0, 4, 3000, dtype=np.uint8).tobytes()
LZ4 = compress(PLAIN, "lz4")
MASK = RNG.random((37, 23, 2)) < 0.3
PACKED = pack_bool(MASK)
RLE = encode_rle(MASK)
PIXELS = RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8)
IMAGES = [
    encode_image(PIXELS, "jpeg"),
    encode_image(PIXELS, "png"),
    encode_image(PIXELS[..., :1], "jpeg"),
    encode_image(np.dstack([PIXELS, PIXELS[..., :1]]), "png"),
]


@fuzz_settings
@given(data=st.data())
def test_damaged_lz4(data):
    bad = data.draw(corrupted(LZ4))
    # lz4 may expand 255 times, no more: what the size check in front of the block allows
    parse_checked(lambda b: decompress(b, "lz4"), bad, None, budget=budget_for(bad, 300))
    got = parse_checked(lambda b: decompress(b, "lz4", size=len(PLAIN)), bad, None)
    assert isinstance(got, FormatError) or len(got) == len(PLAIN)


@fuzz_settings
@given(data=st.data(), shape=st.sampled_from([MASK.shape, (0,), (2**20, 2**20, 9), (5, 0, 2**40)]))
def test_damaged_packed_mask(data, shape):
    bad = data.draw(corrupted(PACKED))
    got = parse_checked(lambda b: unpack_bool(b, shape), bad, None)
    assert isinstance(got, FormatError) or got.shape == shape


SHAPES = [MASK.shape, (37, 23, 0), (2**17, 2**17, 1), (2**20, 2**20, 2), (1, 1, 2**30), (0, 5, 2)]


@fuzz_settings
@given(data=st.data(), shape=st.sampled_from(SHAPES))
def test_damaged_coco_rle(data, shape):
    bad = data.draw(corrupted(RLE))
    # a row decodes to H x W x N bools: the shape its chunk header records; one that the
    # row's runs cannot cover is refused before the masks are allocated
    got = parse_checked(lambda b: decode_rle(b, shape), bad, None, budget=_rle_budget(bad, shape))
    assert isinstance(got, FormatError) or got.shape == shape
    parse_checked(lambda b: check_rle(b, shape), bad, None, budget=budget_for(bad))


def _rle_budget(data: bytes, shape: tuple[int, int, int]) -> int:
    h, w, n = shape
    return budget_for(data) + (h * w * n * 3 if h * w <= 37 * 23 else 0)


def test_rle_row_of_a_huge_mask_is_refused_before_decoding():
    row = rle_row([counts_from_runs([2**33])])  # one run of 2**33 zeros: 11 bytes
    got = parse_checked(lambda b: decode_rle(b, (2**16, 2**17, 1)), row, None)
    assert isinstance(got, FormatError)


@pytest.fixture(autouse=False)
def small_bomb_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1 << 20)


@pytest.mark.usefixtures("small_bomb_limit")
@fuzz_settings
@given(which=st.integers(0, len(IMAGES) - 1), data=st.data())
def test_damaged_image(which, data):
    bad = data.draw(corrupted(IMAGES[which]))
    # an image may decode to far more than its bytes: up to the decompression-bomb limit
    budget = budget_for(bad) + 16 * 2 * Image.MAX_IMAGE_PIXELS
    shape = parse_checked(read_image_shape, bad, None, budget=budget_for(bad))
    got = parse_checked(decode_image, bad, None, budget=budget)
    if not isinstance(got, FormatError):
        assert got.shape == shape and got.dtype == np.uint8
