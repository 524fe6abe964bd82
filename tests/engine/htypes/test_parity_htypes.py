"""Deep Lake's htypes: sequence[...], list, polygon, point, segment_mask, instance_label,
intrinsics, keypoints_coco; strings into a tensor without an htype."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.engine.htypes import HTYPES, get_htype


def _jpeg(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def ds():
    return tl.empty("mem://parity-htypes", overwrite=True)


def test_the_deep_lake_htypes_are_registered():
    assert {
        "list",
        "polygon",
        "point",
        "segment_mask",
        "instance_label",
        "intrinsics",
        "keypoints_coco",
    } <= set(HTYPES)
    assert get_htype("sequence[image]").inner is get_htype("image")
    assert get_htype("sequence").name == "sequence[generic]"
    with pytest.raises(tl.UnknownHtypeError, match="sequence"):
        get_htype("sequence[imgae]")
    with pytest.raises(tl.UnknownHtypeError, match=r"sequence\[<htype>\]"):
        get_htype("sequence(image)")
    with pytest.raises(tl.HtypeError, match="not supported"):
        get_htype("sequence[link[image]]")


# -- sequence[...] ----------------------------------------------------------------------
def test_sequence_of_images_rows_are_lists_of_frames(ds, tmp_path):
    path = tmp_path / "f.jpg"
    path.write_bytes(_jpeg(6, 8))
    ds.create_tensor("clips", htype="sequence[image]", sample_compression="jpeg")
    frames = [np.full((4, 5, 3), i, np.uint8) for i in range(3)]
    ds.clips.append(frames)
    ds.clips.append([tl.read(path), tl.read(path)])
    ds.clips.append([np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3, 3), np.uint8)])
    ds.clips.append(None)  # an empty sequence
    assert len(ds.clips) == 4
    assert ds.clips[0].numpy().shape == (3, 4, 5, 3)
    assert ds.clips[0].shape == (3, 4, 5, 3)
    assert ds.clips.shape == (4, None, None, None, None)  # the empty row: (0, 0, 0, 0)
    second = ds.clips[1].numpy()
    assert second.shape == (2, 6, 8, 3)
    ragged = ds.clips[2].numpy()  # items of different shapes: a list
    assert [a.shape for a in ragged] == [(2, 2, 3), (3, 3, 3)]
    assert ds.clips[3].numpy().shape[0] == 0
    rows = ds.clips.numpy(aslist=True)  # per row, a list of its items (Deep Lake)
    assert isinstance(rows[0], list) and len(rows[0]) == 3 and rows[0][2].shape == (4, 5, 3)
    assert [len(r) for r in rows] == [3, 2, 2, 0]
    both = ds.clips[0:1].numpy()
    assert both.shape == (1, 3, 4, 5, 3) and int(both[0, 2, 0, 0, 0]) in (1, 2, 3)
    with pytest.raises(tl.DatasetError, match="aslist"):
        ds.clips[0:2].numpy()


def test_sequence_items_are_checked_by_the_inner_htype(ds):
    ds.create_tensor("clips", htype="sequence[image]", sample_compression="png")
    with pytest.raises(tl.SampleError, match="row 0"):
        ds.clips.append([np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.float32)])
    with pytest.raises(tl.SampleError, match="list of items"):
        ds.clips.append(5)
    assert len(ds.clips) == 0
    with pytest.raises(tl.HtypeError, match="sample_compression"):
        ds.create_tensor("raw", htype="sequence[image]")  # as image: a compression is needed


def test_sequence_of_class_labels_maps_names_in_every_item(ds):
    ds.create_tensor("labels", htype="sequence[class_label]", class_names=["cat"])
    ds.labels.append(["cat", "dog", "cat"])  # one label per frame
    ds.labels.append([[0, 1], [1], []])  # several labels per frame
    assert ds.labels.info.class_names == ["cat", "dog"]
    assert ds.labels[0].numpy().tolist() == [[0], [1], [0]]
    assert [a.tolist() for a in ds.labels[1].numpy()] == [[0, 1], [1], []]
    assert ds.labels[0].data()["text"] == [["cat"], ["dog"], ["cat"]]
    assert ds.labels.dtype == np.uint32


def test_sequence_of_text_and_of_generic_arrays(ds):
    ds.create_tensor("captions", htype="sequence[text]")
    ds.captions.append(["a cat", "a dog"])
    ds.captions.append(["", "x"])
    assert ds.captions[0].numpy().tolist() == [["a cat"], ["a dog"]]
    assert ds.captions.numpy().shape == (2, 2, 1)
    ds.create_tensor("steps", htype="sequence")
    ds.steps.append(np.arange(6).reshape(3, 2))  # three 2-vectors
    ds.steps.append([[1, 2]])
    assert ds.steps.htype == "sequence[generic]"
    assert ds.steps[0].numpy().tolist() == [[0, 1], [2, 3], [4, 5]]
    assert ds.steps[1].numpy().shape == (1, 2)


def test_sequence_rows_survive_a_reload_and_updates(tmp_path):
    path = str(tmp_path / "ds")
    ds = tl.empty(path)
    ds.create_tensor("clips", htype="sequence[image]", sample_compression="png")
    ds.create_tensor("ids", htype="sequence[class_label]")
    with ds:
        ds.clips.extend([[np.full((3, 3, 3), i, np.uint8)] * (i + 1) for i in range(4)])
        ds.ids.extend([["a"], ["b", "a"], [], ["c"]])
    ds.clips[1] = [np.ones((5, 5, 3), np.uint8)]
    ds.commit("clips")
    again = tl.load(path, read_only=True)
    assert again.clips[1].numpy().shape == (1, 5, 5, 3)
    assert again.clips[3].numpy().shape == (4, 3, 3, 3)
    assert again.ids.info.class_names == ["a", "b", "c"]
    assert again.ids[1].numpy().tolist() == [[1], [0]]


def test_sequence_shape_companion_holds_each_items_shape(ds):
    ds.create_tensor(
        "clips", htype="sequence[image]", sample_compression="png", create_shape_tensor=True
    )
    ds.clips.append([np.zeros((2, 3, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)])
    assert ds["_clips_shape"][0].numpy().tolist() == [[2, 3, 3], [4, 5, 3]]
    assert len(ds["_clips_shape"]) == len(ds.clips)  # one row per sequence row


# -- list -------------------------------------------------------------------------------
def test_list_rows_are_json_lists_read_as_object_arrays(ds):
    ds.create_tensor("tags", htype="list")
    ds.tags.append(["a", 1, {"x": [1, 2]}, None])
    ds.tags.append([])
    ds.tags.append(None)
    ds.tags.append(np.arange(3))
    row = ds.tags[0].numpy()
    assert row.dtype == object and row.shape == (4,)
    assert row.tolist() == ["a", 1, {"x": [1, 2]}, None]
    assert ds.tags[1].numpy().shape == (0,) and ds.tags[2].numpy().shape == (0,)
    assert ds.tags[3].numpy().tolist() == [0, 1, 2]
    assert ds.tags[0].data()["value"] == ["a", 1, {"x": [1, 2]}, None]
    assert ds.tags.shape == (4, None)
    with pytest.raises(tl.SampleError, match="list"):
        ds.tags.append("not a list")


# -- polygon ----------------------------------------------------------------------------
def test_polygon_rows_read_back_as_lists_of_point_arrays(ds):
    ds.create_tensor("polygons", htype="polygon")
    ds.polygons.append([[[0, 0], [4, 0], [4, 3]], [[1, 1], [2, 2], [1, 2], [0, 1]]])
    ds.polygons.append(np.zeros((2, 3, 2)))
    ds.polygons.append(None)
    first = ds.polygons[0].numpy()
    assert isinstance(first, list) and [p.shape for p in first] == [(3, 2), (4, 2)]
    assert first[0].dtype == np.float32 and first[1][3].tolist() == [0.0, 1.0]
    assert ds.polygons[0].shape == (2, 4, 2)  # (polygons, most points, dimensions)
    assert ds.polygons[2].numpy() == []
    rows = ds.polygons.numpy()  # always lists, as Deep Lake's aslist is for polygons
    assert isinstance(rows, list) and len(rows) == 3 and len(rows[1]) == 2
    with pytest.raises(tl.SampleError, match="same dimensions"):
        ds.polygons.append([[[0, 0], [1, 1]], [[0, 0, 0], [1, 1, 1]]])
    with pytest.raises(tl.SampleError, match="non-empty"):
        ds.polygons.append([[]])


# -- point, segment_mask, instance_label, intrinsics, keypoints -------------------------
def test_point_rows_are_n_by_2_or_3_int32(ds):
    ds.create_tensor("points", htype="point")
    ds.points.append([[1, 2], [3, 4]])
    ds.points.append([5, 6])  # one point
    assert ds.points.dtype == np.int32
    assert ds.points[1].numpy().tolist() == [[5, 6]]
    with pytest.raises(tl.SampleError, match=r"\(N, 2\) or \(N, 3\)"):
        ds.points.append([[1, 2, 3, 4]])
    ds.create_tensor("points3d", htype="point", dtype="float32")
    ds.points3d.append(np.ones((4, 3)))
    assert ds.points3d.dtype == np.float32


def test_segment_mask_holds_class_ids_per_pixel(ds):
    ds.create_tensor("seg", htype="segment_mask", class_names=["bg", "road"])
    mask = np.zeros((6, 7), np.uint32)
    mask[2:4] = 1
    ds.seg.append(mask)
    assert ds.seg.dtype == np.uint32 and ds.seg.info.class_names == ["bg", "road"]
    assert ds.seg.sample_compression == "lz4"
    assert np.array_equal(ds.seg[0].numpy(), mask)  # (H, W) stays (H, W)
    with pytest.raises(tl.SampleError):
        ds.seg.append(np.zeros((2, 2), np.float32) + 0.5)


def test_instance_labels_and_intrinsics(ds):
    ds.create_tensor("instances", htype="instance_label")
    ds.instances.extend([[1, 2, 3], 4])
    assert ds.instances.dtype == np.uint32
    assert [a.tolist() for a in ds.instances.numpy(aslist=True)] == [[1, 2, 3], [4]]
    ds.create_tensor("camera", htype="intrinsics")
    ds.camera.append(np.eye(3))
    assert ds.camera.dtype == np.float32 and ds.camera[0].numpy().shape == (3, 3)


def test_keypoints_coco_matches_deep_lake(ds):
    ds.create_tensor(
        "keypoints", htype="keypoints_coco", keypoints=["nose", "eye"], connections=[[0, 1]]
    )
    assert ds.keypoints.dtype == np.int32
    assert ds.keypoints.info.keypoints == ["nose", "eye"]
    assert ds.keypoints.info.connections == [[0, 1]]
    ds.keypoints.append(np.array([[10], [20], [2], [11], [21], [1]]))  # (3K, N)
    ds.keypoints.append(None)  # an image without people
    assert ds.keypoints[0].numpy().shape == (6, 1)
    assert ds.keypoints[1].numpy().shape == (0, 0)


# -- strings into a tensor without an htype (Deep Lake infers text) ---------------------
def test_strings_make_a_tensor_without_an_htype_text(ds):
    ds.create_tensor("captions")
    ds.captions.append(None)  # empty rows decide nothing
    ds.captions.extend(["a cat", "a dog"])
    assert ds.captions.htype == "text" and ds.captions.dtype == np.dtype(str)
    assert ds.captions.numpy().tolist() == [[""], ["a cat"], ["a dog"]]
    with pytest.raises(tl.SampleError, match="string"):
        ds.captions.append(3)


def test_dicts_make_a_tensor_without_an_htype_json(ds):
    ds.create_tensor("meta")
    ds.meta.append({"a": 1})
    assert ds.meta.htype == "json" and ds.meta[0].numpy()[0] == {"a": 1}


def test_a_tensor_with_rows_or_a_dtype_keeps_its_htype(ds):
    ds.create_tensor("x")
    ds.x.append(1)
    with pytest.raises(tl.SampleError, match="expected a number or array"):
        ds.x.append("one")
    ds.create_tensor("typed", dtype="int64")
    with pytest.raises(tl.SampleError):
        ds.typed.append("one")
    assert ds.x.htype == ds.typed.htype == "generic"


def test_strings_from_compute_workers_make_the_tensor_text(ds):
    ds.create_tensor("captions")

    @tl.compute
    def caption(i, sample_out):
        sample_out.captions.append(f"item {i}")

    caption().eval(list(range(6)), ds, num_workers=2, scheduler="threaded")
    assert ds.captions.htype == "text"
    assert ds.captions.numpy().reshape(-1).tolist() == [f"item {i}" for i in range(6)]


def test_sequence_labels_from_workers_that_met_different_names(ds):
    ds.create_tensor("labels", htype="sequence[class_label]")

    @tl.compute
    def frames(i, sample_out):
        # ragged rows; each block meets its own new names first
        sample_out.labels.append([[f"n{i}"], [f"n{i}", "shared"]][: 1 + i % 2])

    frames().eval(list(range(8)), ds, num_workers=2, scheduler="threaded")
    names = ds.labels.info.class_names
    assert sorted(names) == sorted({f"n{i}" for i in range(8)} | {"shared"})
    for i in range(8):
        texts = ds.labels[i].data()["text"]
        assert texts == [[f"n{i}"], [f"n{i}", "shared"]][: 1 + i % 2]
