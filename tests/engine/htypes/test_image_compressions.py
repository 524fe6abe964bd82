"""Image compressions on any array tensor, as in Deep Lake (its test_api_tiling.py,
test_pop.py, test_none.py): ``png`` / ``jpeg`` as ``sample_compression`` or
``chunk_compression`` of a ``generic`` tensor, rows read back in the shape appended."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.compression import detect_image_format

IMAGE_ARGS = [
    {"sample_compression": "png"},
    {"chunk_compression": "png"},
    {"sample_compression": "jpeg"},
    {"chunk_compression": "jpg"},
]
RNG = np.random.default_rng(7)


def _open(target, **kwargs):
    return tl.empty(target.url, creds=target.creds, overwrite=True, **kwargs)


@pytest.mark.parametrize(
    "args", IMAGE_ARGS, ids=lambda a: "-".join(f"{k}={v}" for k, v in a.items())
)
def test_generic_rows_compressed_as_images_round_trip(storage_target, args):
    lossless = "png" in args.values()
    images = [RNG.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(4)]
    ds = _open(storage_target)
    with ds:
        ds.create_tensor("x", **args)
        ds.x.extend(images)
        ds.x.append(None)  # an empty row
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    expected_chunk = {"png": "png", "jpg": "jpeg"}.get(args.get("chunk_compression"))
    assert again.x.chunk_compression == expected_chunk
    assert again.x.sample_compression == args.get("sample_compression")
    rows = again.x.numpy(aslist=True)
    assert [r.shape for r in rows] == [(20 + i, 30, 3) for i in range(4)] + [(0, 0, 0)]
    for got, want in zip(rows, images):
        assert got.dtype == np.uint8
        if lossless:
            assert np.array_equal(got, want)
        else:  # jpeg: close on average, not exact
            assert np.abs(got.astype(int) - want).mean() < 60
    # every row is stored as one image file of its own
    assert detect_image_format(again.x[2].tobytes()) == ("png" if lossless else "jpeg")


@pytest.mark.parametrize("args", [{"sample_compression": "png"}, {"chunk_compression": "png"}])
@pytest.mark.parametrize("shape", [(7,), (5, 6), (5, 6, 1), (5, 6, 4)])
def test_rows_of_other_image_shapes_keep_their_shape(tmp_path, args, shape):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", **args)
    value = RNG.integers(0, 256, shape, dtype=np.uint8)
    ds.x.extend([value, value])
    ds.flush()
    assert ds.x[0].numpy().shape == shape and np.array_equal(ds.x[1].numpy(), value)
    assert ds.x.numpy().shape == (2, *shape)
    assert detect_image_format(ds.x[0].tobytes()) == "png"


@pytest.mark.parametrize("args", [{"sample_compression": "png"}, {"chunk_compression": "png"}])
def test_updates_and_pops_of_image_compressed_rows(tmp_path, args):
    ds = tl.empty(str(tmp_path / "ds"))
    rows = [RNG.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8) for i in range(5)]
    with ds:
        ds.create_tensor("x", **args)
        ds.x.extend(rows)
        ds.x[1] = rows[4]
        ds.x.pop(2)
    again = tl.load(str(tmp_path / "ds"), read_only=True)
    got = again.x.numpy(aslist=True)
    assert [g.shape for g in got] == [r.shape for r in (rows[0], rows[4], rows[3], rows[4])]
    assert all(np.array_equal(g, r) for g, r in zip(got, (rows[0], rows[4], rows[3], rows[4])))


def test_sequence_items_compressed_as_images(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("clips", htype="sequence", chunk_compression="png")
    clip = [RNG.integers(0, 256, (2, 7, 3), dtype=np.uint8) for _ in range(5)]
    ds.clips.extend([clip, clip])
    ds.flush()
    assert ds.clips.shape == (2, 5, 2, 7, 3)
    assert np.array_equal(ds.clips[1].numpy(), np.stack(clip))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.ones((4, 4, 3)), "uint8"),  # float64
        (np.ones((4, 4, 3, 1), np.uint8), r"\(N,\), \(H, W\) or \(H, W, C\)"),
        (np.ones((4, 4, 2), np.uint8), "C in 1, 3, 4"),
    ],
)
def test_what_an_image_cannot_hold_is_a_sample_error(tmp_path, value, match):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", sample_compression="png")
    with pytest.raises(tl.SampleError, match=match):
        ds.x.append(value)
    assert len(ds.x) == 0


def test_jpeg_refuses_an_alpha_channel(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", chunk_compression="jpeg")
    with pytest.raises(tl.SampleError, match="alpha"):
        ds.x.append(np.ones((4, 4, 4), np.uint8))


def test_strings_do_not_make_an_image_compressed_tensor_text(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", sample_compression="png")
    with pytest.raises(tl.SampleError):
        ds.x.append("a caption")
    assert ds.x.htype == "generic"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_compression": "png", "chunk_compression": "lz4"}, "choose one"),
        ({"htype": "bbox", "chunk_compression": "png"}, "chunk_compression 'png'"),
        ({"htype": "text", "sample_compression": "jpeg"}, "not valid for htype 'text'"),
        ({"chunk_compression": "webp"}, "chunk_compression 'webp'"),
    ],
)
def test_compressions_an_htype_cannot_take_are_refused(tmp_path, kwargs, match):
    ds = tl.empty(str(tmp_path / "ds"))
    with pytest.raises(tl.HtypeError, match=match):
        ds.create_tensor("x", **kwargs)
    assert "x" not in ds.tensors
