"""``None`` appended to any tensor is an empty row, as in Deep Lake (its test_none.py):
no elements in the tensor's rank, or the htype's empty value ("" / {} / [])."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl

COMPRESSIONS = [
    {"sample_compression": None},
    {"sample_compression": "lz4"},
    {"chunk_compression": "lz4"},
]


@pytest.fixture
def ds(tmp_path):
    return tl.empty(str(tmp_path / "ds"))


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("empty", [None, []])
def test_empty_rows_before_any_sample_take_its_rank(ds, compression, empty):
    ds.create_tensor("xyz", **compression)
    ds.xyz.append(empty)
    ds.xyz.append(empty)
    ds.xyz.append(np.ones((10, 12, 3), dtype=np.uint8))
    for i in range(2):
        assert ds.xyz[i].numpy().shape == (0, 0, 0)
        assert ds.xyz[i].shape == (0, 0, 0)
    assert ds.xyz[2].numpy().shape == (10, 12, 3) and ds.xyz.dtype == np.uint8
    assert [a.shape for a in ds.xyz.numpy(aslist=True)] == [(0, 0, 0), (0, 0, 0), (10, 12, 3)]
    assert ds.xyz.meta.max_shape == (10, 12, 3)  # empty rows of no rank fixed nothing


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_empty_rows_after_samples_and_in_updates(ds, compression):
    ds.create_tensor("xyz", **compression)
    ds.xyz.extend([np.ones((4, 4, 3), np.uint8), None, np.ones((2, 6, 3), np.uint8)])
    assert ds.xyz[1].numpy().shape == (0, 0, 0)
    ds.xyz[0] = None
    assert ds.xyz[0].numpy().shape == (0, 0, 0) and ds.xyz[0].shape == (0, 0, 0)
    assert ds.xyz[2].numpy().shape == (2, 6, 3)
    assert ds.xyz.shape == (3, None, None, None)


def test_empty_rows_survive_flushes_and_reloads(tmp_path):
    path = str(tmp_path / "ds")
    ds = tl.empty(path)
    ds.create_tensor("xyz")
    ds.xyz.append(None)
    ds.flush()  # the empty row's chunk is stored before the rank is known
    ds.xyz.append(np.arange(6).reshape(2, 3))
    ds.commit("rows")
    again = tl.load(path, read_only=True)
    assert again.xyz[0].numpy().shape == (0, 0) and again.xyz[0].shape == (0, 0)
    assert [a.shape for a in again.xyz.numpy(aslist=True)] == [(0, 0), (2, 3)]


def test_only_empty_rows_have_nothing_to_read(ds):
    """As in Deep Lake: rows of a tensor no row has given a shape raise EmptyTensorError
    (a DatasetError); their shape is (); no rows at all read as an empty array."""
    ds.create_tensor("xyz")
    assert ds.xyz.numpy().shape == (0,)
    ds.xyz.extend([None, None])
    for read in (ds.xyz.numpy, ds.xyz[0].numpy, ds[1:].xyz.numpy):
        with pytest.raises(tl.EmptyTensorError, match="only empty rows"):
            read()
    assert ds.xyz[0].shape == () and ds.xyz[:0].numpy().shape[0] == 0
    ds.create_tensor("again")
    ds.again.extend(ds.xyz)  # its rows are empty rows
    ds.xyz.append(np.arange(2))
    assert ds.xyz[0].numpy().shape == (0,) and ds.xyz[0].shape == (0,)
    assert [r.tolist() for r in ds.xyz.numpy(aslist=True)] == [[], [], [0, 1]]
    assert len(ds.again) == 2 and ds.again.meta.max_shape is None


def test_empty_rows_among_fixed_shape_rows_are_not_misread(ds):
    ds.create_tensor("vec")
    ds.vec.extend([np.arange(3), None, np.arange(3) + 10])
    with pytest.raises(tl.DatasetError, match="aslist"):
        ds.vec.numpy()  # shapes differ: (3,), (0,), (3,)
    rows = ds.vec.numpy(aslist=True)
    assert [r.tolist() for r in rows] == [[0, 1, 2], [], [10, 11, 12]]
    assert ds.vec[2].numpy().tolist() == [10, 11, 12]
    ds.create_tensor("loose")  # an empty row before the rank is known, in a sealed chunk
    ds.loose.extend([None, np.arange(3), np.arange(3) + 10])
    ds.commit("sealed")
    assert ds.loose.meta.min_shape == ds.loose.meta.max_shape == (3,)
    assert ds.loose[1:3].numpy().tolist() == [[0, 1, 2], [10, 11, 12]]
    assert [r.tolist() for r in ds.loose.numpy(aslist=True)] == [[], [0, 1, 2], [10, 11, 12]]


def test_empty_values_of_text_json_and_list(ds):
    ds.create_tensor("t", htype="text")
    ds.create_tensor("j", htype="json")
    ds.create_tensor("l", htype="list")
    ds.append({"t": None, "j": None, "l": None})
    ds.append({"t": "hello", "j": {"a": 1}, "l": ["x", "y"]})
    assert ds.t[0].numpy().tolist() == [""] and ds.t[0].shape == (1,)
    assert ds.j[0].numpy()[0] == {} and ds.j[0].shape == (1,)
    assert ds.l[0].numpy().tolist() == [] and ds.l[0].shape == (0,)
    assert ds.l[1].numpy().tolist() == ["x", "y"]


def test_empty_rows_of_annotation_htypes(ds):
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    ds.create_tensor("labels", htype="class_label")
    ds.create_tensor("boxes", htype="bbox")
    ds.create_tensor("masks", htype="binary_mask")
    ds.create_tensor("rle", htype="binary_mask", sample_compression="coco_rle")
    ds.append({"images": None, "labels": None, "boxes": None, "masks": None, "rle": None})
    assert ds.images[0].numpy().shape == (0, 0, 0) and ds.images[0].numpy().dtype == np.uint8
    assert ds.labels[0].numpy().shape == (0,)
    assert ds.boxes[0].numpy().shape == (0, 0)
    assert ds.masks[0].numpy().shape == (0, 0, 0) and ds.masks[0].numpy().dtype == bool
    assert ds.rle[0].numpy().shape == (0, 0, 0)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(buf, format="JPEG")
    ds.images.append(np.zeros((5, 5, 3), np.uint8))
    assert [a.shape for a in ds.images.numpy(aslist=True)] == [(0, 0, 0), (5, 5, 3)]


def test_empty_link_rows(ds, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(path)
    ds.create_tensor("images", htype="link[image]", sample_compression="png")
    ds.images.extend([None, tl.link(path)])
    assert ds.images[0].numpy().shape == (0, 0, 0)
    assert ds.images[0].shape == (0, 0, 0)
    assert ds.images[1].numpy().shape == (3, 4, 3)
    assert ds.images.links() == ["", f"file://{path}"]
    assert ds.images.verify_links() == {"checked": 2, "missing": [], "changed": []}
    assert ds["_images_info"][0].numpy()[0] == {}


def test_empty_rows_fix_no_dtype(ds):
    ds.create_tensor("x")
    ds.x.extend([None, []])
    assert ds.x.dtype is None
    ds.x.append(np.array([1, 2], dtype=np.int16))
    assert ds.x.dtype == np.int16
