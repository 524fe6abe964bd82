"""keypoints_coco: (3K, N) columns of x, y, visibility; names and connections in info."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.htypes import get_htype

NAMES = ["nose", "left_eye", "right_eye"]


@pytest.fixture
def ds():
    ds = tl.empty("mem://keypoints-htype", overwrite=True)
    ds.create_tensor("kp", htype="keypoints_coco", keypoints=NAMES, connections=[[0, 1], [0, 2]])
    return ds


def test_rows_are_3k_by_n_int32_with_names_and_connections_in_info(ds):
    two = np.array(
        [[10, 40], [12, 42], [2, 1], [20, 0], [22, 0], [2, 0], [30, 50], [32, 52], [1, 2]]
    )
    ds.kp.append(two)
    ds.kp.append([10, 12, 2, 20, 22, 2, 0, 0, 0])  # one object: a (3K,) column
    ds.kp.append(np.zeros((9, 0), dtype=np.int32))  # an image without objects
    ds.kp.append([])  # the same, as an empty list
    assert get_htype("keypoints_coco").info_keys == ("keypoints", "connections")
    assert ds.kp.dtype == np.int32
    assert ds.kp.info.keypoints == NAMES and ds.kp.info.connections == [[0, 1], [0, 2]]
    rows = ds.kp.numpy(aslist=True)
    assert [r.shape for r in rows] == [(9, 2), (9, 1), (9, 0), (0, 0)]
    assert rows[0].tolist() == two.tolist()
    assert rows[1][:, 0].tolist() == [10, 12, 2, 20, 22, 2, 0, 0, 0]
    assert rows[0][2::3, 1].tolist() == [1, 0, 2]  # object 1's visibilities


def test_shapes_that_are_not_keypoint_triples_are_refused(ds):
    with pytest.raises(tl.SampleError, match=r"\(3K, N\)"):
        ds.kp.append(np.zeros((8, 2), dtype=np.int32))
    with pytest.raises(tl.SampleError, match="names 3 keypoints"):
        ds.kp.append(np.zeros((6, 2), dtype=np.int32))  # K = 2, the info names 3
    with pytest.raises(tl.SampleError, match="int32"):
        ds.kp.append(np.full((9, 1), 1.5))  # fractional pixels do not fit int32
    with pytest.raises(tl.SampleError, match=r"2-D sample"):
        ds.kp.append(np.zeros((9, 1, 1), dtype=np.int32))
    assert len(ds.kp) == 0


def test_dtype_may_be_chosen_and_names_may_be_left_out():
    ds = tl.empty("mem://keypoints-float", overwrite=True)
    ds.create_tensor("kp", htype="keypoints_coco", dtype="float32")
    ds.kp.append(np.full((6, 1), 1.5))  # any K without names
    assert ds.kp.dtype == np.float32 and ds.kp[0].numpy()[0, 0] == 1.5
    assert ds.kp.info.keypoints == [] and ds.kp.info.connections == []


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"keypoints": "nose"}, "list of keypoint names"),
        ({"keypoints": NAMES, "connections": [[0, 1, 2]]}, "pairs of keypoint indices"),
        ({"keypoints": NAMES, "connections": [[0, 3]]}, "names keypoint 3"),
        ({"coords": {}}, "unexpected arguments"),
    ],
)
def test_bad_create_tensor_arguments_are_htype_errors(kwargs, message):
    ds = tl.empty("mem://keypoints-bad", overwrite=True)
    with pytest.raises(tl.HtypeError, match=message):
        ds.create_tensor("kp", htype="keypoints_coco", **kwargs)
