"""Deep Lake parity, appends: ds.append(sample, skip_ok, append_empty), ds.extend(...,
skip_ok, append_empty, ignore_errors), and the error naming tensors left out."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import jpeg_bytes


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("img", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("caption", htype="text")
        ds.create_tensor("meta", htype="json")
        ds.create_tensor("raw")  # no dtype yet
    return ds


def test_append_empty_fills_every_left_out_tensor(storage_target):
    ds = _new(storage_target)
    jpg = jpeg_bytes(6, 7)
    ds.append(
        {"img": tl.Sample(data=jpg), "labels": "b", "raw": np.ones((2, 2), np.int16)},
        append_empty=True,
    )
    ds.append({"labels": "a"}, append_empty=True)
    assert len(ds) == 2 and ds.min_len == ds.max_len == 2
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    for d in (ds, again):
        assert d.img[0].tobytes() == jpg and d.img[0].numpy().shape == (6, 7, 3)
        empty_img = d.img[1].numpy()
        assert empty_img.shape == (0, 0, 0) and empty_img.dtype == np.uint8
        assert d.img[1].tobytes() == b""
        assert d.boxes[0].numpy().shape[0] == 0 and d.boxes[0].numpy().dtype == np.float32
        assert d.caption.numpy(aslist=True) == ["", ""]
        # json's empty value is {}, as Deep Lake's (tests/engine/htypes/test_empty_rows.py)
        assert list(d.meta.numpy(aslist=True)) == [{}, {}]
        assert d.labels.data()["text"] == [["b"], ["a"]]
        assert d.raw[1].numpy().shape == (0, 0) and d.raw[0].numpy().tolist() == [[1, 1], [1, 1]]
        assert d.raw[1].numpy().dtype == np.int16
        assert d.img.shapes().tolist() == [[6, 7, 3], [0, 0, 0]]
    assert ds.verify().ok


def test_left_out_tensors_without_flags_raise_a_key_error_naming_them(storage_target):
    ds = _new(storage_target)
    with pytest.raises(KeyError) as info:
        ds.append({"labels": "a"})
    err = info.value
    assert isinstance(err, tl.MissingTensorsError) and isinstance(err, tl.SampleError)
    assert sorted(err.missing) == ["boxes", "caption", "img", "meta", "raw"]
    assert "skip_ok=True" in str(err) and "append_empty=True" in str(err)
    assert ds.max_len == 0  # nothing changed
    ds.append({"labels": "a"}, skip_ok=True)
    assert (len(ds.labels), len(ds.img), ds.min_len) == (1, 0, 0)
    with pytest.raises(tl.TensorNotFoundError):
        ds.append({"nope": 1}, skip_ok=True)


def test_tensors_appended_to_must_line_up(storage_target):
    ds = _new(storage_target)
    ds.append({"labels": "a"}, skip_ok=True)  # labels: 1 row, caption: 0
    with pytest.raises(ValueError, match="different lengths"):
        ds.append({"labels": "b", "caption": "x"}, skip_ok=True)
    with pytest.raises(tl.DatasetArgumentError, match="'labels' \\(1 rows\\)"):
        ds.append({"caption": "x"}, append_empty=True)  # every tensor must line up
    ds.caption.append("first")
    ds.append({"labels": "b", "caption": "second"}, skip_ok=True)
    assert ds.caption.numpy(aslist=True) == ["first", "second"]


def test_extend_append_empty_pads_shorter_lists(storage_target):
    ds = _new(storage_target)
    ds.extend({"labels": ["a", "b", "a"], "caption": ["x"]}, append_empty=True)
    assert ds.min_len == ds.max_len == 3
    assert ds.caption.numpy(aslist=True) == ["x", "", ""]
    assert [r.shape for r in ds.img.numpy(aslist=True)] == [(0, 0, 0)] * 3
    with pytest.raises(tl.SampleError, match="same number"):
        ds.extend({"labels": ["a", "b"], "caption": ["x"]}, skip_ok=True)
    with pytest.raises(tl.MissingTensorsError):
        ds.extend({"labels": ["a"]})
    ds.extend({"labels": ["b"]}, skip_ok=True)
    assert len(ds.labels) == 4 and len(ds.caption) == 3


def test_extend_ignore_errors_skips_bad_rows_only(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    ds.create_tensor("x", dtype="uint8")
    ds.create_tensor("t", htype="text")
    rows = {"x": [1, 300, 3, -1, 5], "t": ["a", "b", "c", "d", "e"]}
    with pytest.raises(tl.SampleError):
        ds.extend(rows)
    assert ds.max_len == 0
    ds.extend(rows, ignore_errors=True)
    assert ds.x.numpy().reshape(-1).tolist() == [1, 3, 5]
    assert ds.t.numpy(aslist=True) == ["a", "c", "e"]
    with pytest.raises(tl.MissingTensorsError):  # not one row's fault: still raised
        ds.extend({"x": [1]}, ignore_errors=True)


def test_an_empty_row_fixes_no_dtype():
    ds = tl.empty("mem://append-empty-dtype", overwrite=True)
    ds.create_tensor("raw")
    ds.create_tensor("n")
    ds.append({"n": 1}, append_empty=True)
    assert ds.raw.meta.dtype is None
    with pytest.raises(tl.EmptyTensorError):  # as Deep Lake: no row has a shape yet
        ds.raw[0].numpy()
    ds.append({"n": 2, "raw": np.array([1.5, 2.5])})
    assert ds.raw.dtype == np.float64 and ds.raw[1].numpy().tolist() == [1.5, 2.5]
    assert ds.raw[0].numpy().size == 0


def test_append_empty_gives_link_tensors_empty_links_and_their_companions_rows():
    ds = tl.empty("mem://append-empty-links", overwrite=True)
    ds.create_tensor("pics", htype="link[image]", sample_compression="jpeg")
    ds.create_tensor("n")
    ds.append({"n": 1}, append_empty=True)
    assert ds.pics[0].numpy().shape == (0, 0, 0) and ds.pics.links() == [""]
    hidden = ds._tensor_names(include_hidden=True)
    assert len(hidden) > 2 and {len(ds[n]) for n in hidden} == {1}  # companions in step
