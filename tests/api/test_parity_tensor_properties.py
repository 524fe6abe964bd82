"""Deep Lake parity: the tensor and dataset properties its users read (size,
shape_interval, is_dynamic, is_empty_tensor, is_sequence, is_link, verify, hidden,
sample_info, sample_indices, path, creds_key, summary; ds.sample_indices, root, parent,
no_view_dataset, is_head_node), with Deep Lake 3's meanings, on memory, local and S3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.shape_interval import ShapeInterval
from tests.api.helpers import jpeg_bytes


def _open(target):
    return tl.empty(target.url, creds=target.creds, overwrite=True)


def _reopen(target):
    return tl.load(target.url, creds=target.creds)


def test_shape_interval_size_and_dynamic_shapes(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("x")
    ds.x.extend([np.zeros((10, 10)), np.zeros((10, 15)), np.zeros((10, 12))])
    ds.create_tensor("fixed", dtype="int64")
    ds.fixed.extend(np.arange(12).reshape(3, 4))
    ds.flush()
    for d in (ds, _reopen(storage_target)):
        si = d.x.shape_interval
        assert (si.lower, si.upper) == ((3, 10, 10), (3, 10, 15))
        assert str(si) == repr(si) == "(3, 10, 10:15)" and si.astuple() == (3, 10, None)
        assert d.x.is_dynamic and d.x.size is None
        # a view: only its rows count
        assert d.x[1:].shape_interval == ShapeInterval((2, 10, 12), (2, 10, 15))
        assert d.x[[0, 0]].shape_interval == ShapeInterval((2, 10, 10), (2, 10, 10))
        assert not d.x[[0, 0]].is_dynamic and d.x[[0, 0]].size == 200
        assert d.x[1].shape_interval == ShapeInterval((10, 15), (10, 15))
        assert d.x[1].size == 150 and d.x[0:0].shape_interval.lower == (0, 10, 10)
        assert not d.fixed.is_dynamic and d.fixed.size == 12 == d.fixed.numpy().size
        assert str(d.fixed.shape_interval) == "(3, 4)"


def test_empty_tensors_and_shape_interval_of_no_rows(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("e")
    ds.create_tensor("nones")
    ds.nones.extend([None, None])
    assert ds.e.is_empty_tensor and ds.nones.is_empty_tensor
    assert str(ds.e.shape_interval) == "(0,)" and ds.e.size == 0
    ds.nones.append(np.ones((2, 2)))
    ds.e.append(np.zeros((0,)))  # a zero-size row still has a shape
    assert not ds.nones.is_empty_tensor and not ds.e.is_empty_tensor
    assert ds.e.shape_interval.upper == (1, 0)
    ds.e.clear()
    assert ds.e.is_empty_tensor


def test_kind_flags_hidden_and_verify(storage_target, tmp_path: Path):
    ds = _open(storage_target)
    ds.create_tensor("plain")
    ds.create_tensor("seq", htype="sequence[class_label]")
    ds.create_tensor("links", htype="link[image]", sample_compression="jpg")
    ds.create_tensor("unverified", htype="link[image]", sample_compression="jpg", verify=False)
    ds.create_tensor("secret", hidden=True)
    ds.create_tensor("shaped", create_shape_tensor=True)
    ds.flush()
    d = _reopen(storage_target)
    assert (d.seq.is_sequence, d.seq.is_link) == (True, False)
    assert (d.links.is_link, d.links.is_sequence) == (True, False)
    assert not d.plain.is_sequence and not d.plain.is_link
    assert d.links.verify and not d.unverified.verify and not d.plain.verify
    assert d.secret.hidden and not d.plain.hidden and "secret" not in d.tensors
    assert d["_shaped_shape"].hidden and not d.shaped.hidden


def test_sample_info_of_files_arrays_links_and_sequences(storage_target, tmp_path: Path):
    jpg = tmp_path / "cat.jpg"
    jpg.write_bytes(jpeg_bytes(12, 16, seed=3))
    ds = _open(storage_target)
    ds.create_tensor(
        "img", htype="image", sample_compression="jpeg", create_sample_info_tensor=True
    )
    ds.img.extend([tl.read(jpg), np.zeros((4, 5, 3), np.uint8)])
    ds.create_tensor("plain", htype="image", sample_compression="jpeg")
    ds.plain.append(tl.read(jpg))
    ds.create_tensor("links", htype="link[image]", sample_compression="jpg")
    ds.links.append(tl.link(jpg))
    ds.create_tensor(
        "frames", htype="sequence[image]", sample_compression="jpeg", create_sample_info_tensor=True
    )
    ds.frames.append([tl.read(jpg), tl.read(jpg)])
    ds.flush()
    d = _reopen(storage_target)
    one = d.img[0].sample_info
    assert isinstance(one, dict) and one["shape"] == [12, 16, 3]
    assert one["filename"] == str(jpg) and one["format"] == "jpeg"
    assert d.img.sample_info == [one, {}] and d.img[1:].sample_info == [{}]
    assert d.plain.sample_info is None and d.plain[0].sample_info is None  # kept no info
    assert d.links[0].sample_info["shape"] == [12, 16, 3]
    items = d.frames[0].sample_info
    assert isinstance(items, list) and [i["shape"] for i in items] == [[12, 16, 3]] * 2
    assert d.frames.sample_info == [items]


def test_path_and_creds_key_of_link_rows(storage_target, tmp_path: Path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"img{i}.jpg")
        paths[-1].write_bytes(jpeg_bytes(8, 8, seed=i))
    ds = _open(storage_target)
    ds.add_creds_key("raw")
    ds.populate_creds("raw", {})
    ds.create_tensor("images", htype="link[image]", sample_compression="jpg")
    ds.images.extend([tl.link(paths[0]), tl.link(paths[1], creds_key="raw"), tl.link(paths[2])])
    ds.flush()
    d = _reopen(storage_target)
    urls = [f"file://{p}" for p in paths]
    assert d.images.path() == urls and d.images[1].path() == urls[1]
    assert d.images[1:].path(aslist=False).tolist() == [[u] for u in urls[1:]]
    assert d.images[1].creds_key() == "raw" and d.images[0].creds_key() is None
    with pytest.raises(tl.DatasetArgumentError, match="one row"):
        d.images[:2].creds_key()
    d.create_tensor("labels")
    with pytest.raises(tl.DatasetError, match="link tensors"):
        d.labels.path()
    with pytest.raises(tl.DatasetError, match="link tensors"):
        d.labels.creds_key()


def test_sample_indices_of_tensors_and_views(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("a")
    ds.create_tensor("b")
    ds.a.extend(np.arange(6))
    ds.b.extend(np.arange(4))
    assert ds.sample_indices == [0, 1, 2, 3]  # the shortest tensor's rows
    assert ds.a.sample_indices == list(range(6))
    assert ds[1:4:2].sample_indices == [1, 3] and ds[[3, 0]].a.sample_indices == [3, 0]
    assert ds.a[2].sample_indices == [2] and ds[2:][1:].sample_indices == [3]


def test_groups_root_parent_no_view_dataset_and_head_node(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("g/h/x")
    ds["g/h/x"].extend(np.arange(5))
    ds.create_tensor("y")
    ds.y.extend(np.arange(5))
    inner = ds[1:3]["g"]["h"]
    assert inner.parent.group_index == "g" and inner.parent.parent.group_index == ""
    assert ds.parent is None and inner.root.group_index == "" and ds.root is ds
    assert list(inner.root.tensors) == ["g/h/x", "y"] and len(inner.root) == 2
    whole = inner.no_view_dataset
    assert not whole.is_view and whole.group_index == "g/h" and len(whole) == 5
    assert ds.no_view_dataset is ds
    assert ds.is_head_node
    first = ds.commit("five")
    ds.y.append(5)
    ds.commit("six")
    ds.checkout(first)
    assert not ds.is_head_node
    ds.checkout("main")
    assert ds.is_head_node


def test_tensor_summary_prints_the_tensor_and_its_line(capsys):
    ds = tl.empty("mem://summary")
    ds.create_tensor("boxes", htype="bbox", dtype="float32")
    ds.boxes.extend([np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32)])
    ds.boxes.summary()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == repr(ds.boxes)
    assert out[1].split() == ["tensor", "htype", "shape", "dtype", "compression"]
    assert out[3].split() == ["boxes", "bbox", "(2,", "?,", "4)", "float32", "None"]


def test_in_place_arithmetic_updates_rows_and_np_asarray_reads(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(6).reshape(3, 2))
    ds.x[0] += 10
    ds.x[1:] *= 2
    ds.x -= 1
    ds.create_tensor("ragged")
    ds.ragged.extend([np.ones(2), np.ones(3)])
    ds.ragged[[1]] += 1
    ds.flush()
    d = _reopen(storage_target)
    assert d.x.numpy().tolist() == [[9, 10], [3, 5], [7, 9]]
    assert [r.tolist() for r in d.ragged.numpy(aslist=True)] == [[1.0, 1.0], [2.0, 2.0, 2.0]]
    assert np.asarray(d.x, dtype=np.float32).dtype == np.float32
    assert np.asarray(d.x[1]).tolist() == [3, 5]
    with pytest.raises(tl.DatasetError, match="whole rows"):
        d.x[0, 1:] += 1
