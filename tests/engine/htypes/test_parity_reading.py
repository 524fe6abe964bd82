"""What reads back, as in Deep Lake: scalars as (N, 1), grayscale images as (H, W, 1),
dataset attributes refused as tensor names, typed errors for bad htypes and names."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.api.dataset import Dataset
from tensorlake.engine.format.manifest import TensorMeta
from tensorlake.engine.htypes import get_htype
from tensorlake.engine.htypes.base import Pending


@pytest.fixture
def ds():
    return tl.empty("mem://parity-reading", overwrite=True)


def test_scalar_rows_read_as_n_by_1_like_deep_lake(ds):
    ds.create_tensor("x")
    ds.x.extend([1, 2, 3])
    ds.x.append(np.int64(4))
    ds.x.append(np.array(5))
    assert ds.x.numpy().shape == (5, 1) and ds.x.numpy().ravel().tolist() == [1, 2, 3, 4, 5]
    assert ds.x[0].numpy().shape == (1,)
    assert ds.x.shape == (5, 1) and ds.x[0].shape == (1,)
    assert ds.x[1:3].numpy().tolist() == [[2], [3]]
    ds.x.append([6, 7])  # a 1-D row next to scalar rows is fine: both are rank 1
    assert [r.tolist() for r in ds.x.numpy(aslist=True)][-2:] == [[5], [6, 7]]


def test_class_labels_text_and_json_are_n_by_1_too(ds):
    ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
    ds.create_tensor("t", htype="text")
    ds.create_tensor("j", htype="json")
    ds.extend({"labels": [0, "b"], "t": ["u", "v"], "j": [{}, {"k": 1}]})
    assert ds.labels.numpy().shape == ds.t.numpy().shape == ds.j.numpy().shape == (2, 1)
    assert ds.labels[1].numpy().tolist() == [1]


def test_tensors_of_0d_rows_written_before_keep_reading_as_before():
    """A tensor whose rows were stored 0-d (before scalars became (1,)) stays 0-d."""
    meta = TensorMeta("old", dtype="int64", min_shape=(), max_shape=(), length=3)
    htype = get_htype("generic")
    data, shape = htype.encode(meta, 7, Pending.of(meta, htype))
    assert shape == ()
    assert htype.decode(meta, data, shape).tolist() == 7
    fresh = TensorMeta("new")
    assert htype.encode(fresh, 7, Pending.of(fresh, htype))[1] == (1,)


def test_grayscale_images_read_back_with_their_channel_axis_like_deep_lake(ds):
    ds.create_tensor("images", htype="image", sample_compression="png")
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    ds.images.append(gray)  # Deep Lake: (H, W) is stored (and read) as (H, W, 1)
    assert ds.images[0].numpy().shape == (4, 5, 1) == ds.images[0].shape
    assert np.array_equal(ds.images[0].numpy()[..., 0], gray)
    ds.images.append(np.zeros((4, 5, 3), np.uint8))  # colour after gray: one tensor
    assert ds.images.shape == (2, 4, 5, None)


def test_image_rgb_and_image_gray_convert_what_they_are_given_like_deep_lake(ds, tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgba = np.full((3, 4, 4), 200, np.uint8)
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 50, 10
    ds.create_tensor("rgb", htype="image.rgb", sample_compression="png")
    ds.rgb.extend([gray, rgba, gray[:, :, None]])
    assert [a.shape for a in ds.rgb.numpy(aslist=True)] == [(3, 4, 3)] * 3
    assert np.array_equal(ds.rgb[0].numpy()[..., 2], gray)
    assert ds.rgb[1].numpy()[0, 0].tolist() == [200, 200, 200]  # alpha dropped
    ds.create_tensor("gray", htype="image.gray", sample_compression="png")
    ds.gray.extend([rgb, rgba, gray])
    # ITU-R 601 luma, each term rounded down: 29 + 29 + 1 (Deep Lake's to_grayscale)
    assert ds.gray[0].numpy().shape == (3, 4, 1) and int(ds.gray[0].numpy()[0, 0, 0]) == 59
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    ds.gray.append(tl.read(path))  # a colour file: decoded, converted, encoded again
    assert ds.gray[3].numpy().shape == (3, 4, 1) and int(ds.gray[3].numpy()[1, 1, 0]) == 59


@pytest.mark.parametrize("name", ["info", "commit", "tensors", "log", "g/info", "pytorch"])
def test_dataset_attribute_names_are_refused_for_tensors_and_groups(ds, name):
    with pytest.raises(tl.InvalidNameError, match="dataset attribute"):
        ds.create_tensor(name)
    with pytest.raises(tl.InvalidNameError):
        ds.create_group(name)
    assert not ds._core.engines and not ds._core.groups
    assert isinstance(ds.info, type(ds.info))  # still the dataset's info


def test_every_public_dataset_attribute_is_refused(ds):
    for attr in (a for a in dir(Dataset) if not a.startswith("_")):
        with pytest.raises(tl.InvalidNameError):
            ds.create_tensor(attr)
    ds.create_tensor("infos")  # names that merely contain one are fine
    ds.create_tensor("g/images")


@pytest.mark.parametrize(
    "call,error,builtin",
    [
        (lambda ds: ds.create_tensor("x", htype="imgae"), tl.UnknownHtypeError, ValueError),
        (lambda ds: ds.create_tensor("x", htype=None), tl.UnknownHtypeError, ValueError),
        (lambda ds: ds.create_tensor("bad name"), tl.InvalidNameError, ValueError),
        (lambda ds: ds.create_tensor(""), tl.InvalidNameError, ValueError),
        (lambda ds: ds.create_tensor("x", nonsense=1), tl.HtypeArgumentError, TypeError),
        (lambda ds: ds.create_tensor("x", sample_compression="gif"), tl.HtypeError, ValueError),
        (lambda ds: ds.create_tensor("x", dtype="int77"), tl.HtypeArgumentError, TypeError),
        (
            lambda ds: ds.create_tensor("b", htype="bbox", coords={"type": "polar"}),
            tl.HtypeError,
            ValueError,
        ),
        (lambda ds: tl.read(None), tl.SampleError, ValueError),
    ],
)
def test_bad_names_htypes_and_arguments_are_tensorlake_errors(ds, call, error, builtin):
    with pytest.raises(error) as info:
        call(ds)
    assert isinstance(info.value, tl.TensorlakeError) and isinstance(info.value, builtin)
