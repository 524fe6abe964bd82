"""Bit-packing of boolean masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from tensorlake.compression import compress, decompress, pack_bool, packed_size, unpack_bool
from tensorlake.errors import FormatError

bool_arrays = hnp.arrays(
    dtype=np.bool_, shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=17)
)


@settings(max_examples=100, deadline=None)
@given(arr=bool_arrays)
def test_round_trip(arr: np.ndarray) -> None:
    packed = pack_bool(arr)
    assert isinstance(packed, bytes)
    assert len(packed) == packed_size(arr.shape) == (arr.size + 7) // 8
    back = unpack_bool(packed, arr.shape)
    assert back.dtype == np.bool_ and back.shape == arr.shape
    assert back.flags.c_contiguous and back.flags.writeable
    np.testing.assert_array_equal(back, arr)


def test_non_contiguous_input_packs_in_c_order() -> None:
    arr = np.random.default_rng(0).random((6, 9, 3)) > 0.5
    view = arr.transpose(1, 0, 2)[::2]
    np.testing.assert_array_equal(unpack_bool(pack_bool(view), view.shape), view)


def test_unpack_accepts_memoryview() -> None:
    arr = np.eye(5, dtype=bool)
    np.testing.assert_array_equal(unpack_bool(memoryview(pack_bool(arr)), (5, 5)), arr)


@pytest.mark.parametrize("arr", [np.zeros(3, np.uint8), np.ones((2, 2)), [1, 0]])
def test_non_bool_is_value_error(arr: object) -> None:
    with pytest.raises(ValueError, match="bool"):
        pack_bool(arr)  # type: ignore[arg-type]


def test_wrong_length_is_format_error() -> None:
    packed = pack_bool(np.ones((4, 5), dtype=bool))  # 20 bits -> 3 bytes
    with pytest.raises(FormatError, match="expected 3"):
        unpack_bool(packed + b"\x00", (4, 5))
    with pytest.raises(FormatError):
        unpack_bool(packed, (5, 5))


def test_negative_shape_is_value_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        unpack_bool(b"", (2, -1))


def _polygon_masks(height: int = 480, width: int = 640, count: int = 4) -> np.ndarray:
    rng = np.random.default_rng(7)
    masks = np.zeros((height, width, count), dtype=bool)
    for k in range(count):
        canvas = Image.new("1", (width, height))
        cx, cy = rng.integers(100, width - 100), rng.integers(100, height - 100)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
        radii = rng.uniform(30, 90, 12)
        points = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii)]
        ImageDraw.Draw(canvas).polygon(points, fill=1)
        masks[..., k] = np.asarray(canvas)
    return masks


def test_packing_before_lz4_beats_lz4_alone() -> None:
    masks = _polygon_masks()
    packed = compress(pack_bool(masks), "lz4")
    raw = compress(masks.tobytes(), "lz4")
    assert len(packed) * 2 < len(raw)  # measured: 257x vs 125x smaller than raw
    np.testing.assert_array_equal(unpack_bool(decompress(packed, "lz4"), masks.shape), masks)
