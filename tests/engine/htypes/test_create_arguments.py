"""create_tensor's Deep Lake arguments: hidden companions (shape, id, sample info) kept in
step with appends, updates and pops; tiling_threshold, chunk_compression, hidden,
downsampling; unknown arguments refused with a typed error naming them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.engine.htypes.arguments import COMMON_ARGS


def _png(h: int, w: int, value: int = 7) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def ds():
    return tl.empty("mem://create-args", overwrite=True)


def _hidden(ds) -> list[str]:
    return sorted(n for n, e in ds._core.engines.items() if e.meta.hidden)


def test_no_companions_unless_asked_outside_links(ds):
    ds.create_tensor("x")
    ds.create_tensor("images", htype="image", sample_compression="png")
    assert _hidden(ds) == []


def test_each_companion_is_a_hidden_tensor_named_as_deep_lake_names_it(ds):
    ds.create_group("g")
    ds.create_tensor(
        "g/images",
        htype="image",
        sample_compression="png",
        create_shape_tensor=True,
        create_id_tensor=True,
        create_sample_info_tensor=True,
    )
    assert _hidden(ds) == ["g/_images_id", "g/_images_info", "g/_images_shape"]
    assert list(ds.g.tensors) == ["images"]  # hidden: not listed, still reachable
    assert ds["g/_images_shape"].meta.hidden
    assert ds["g/_images_id"].dtype == np.uint64


def test_companions_follow_appends_updates_and_pops(ds, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_png(5, 6))
    ds.create_tensor(
        "images",
        htype="image",
        sample_compression="png",
        create_shape_tensor=True,
        create_id_tensor=True,
        create_sample_info_tensor=True,
    )
    ds.images.append(tl.read(path))
    ds.images.extend([np.zeros((2, 3, 3), np.uint8), np.zeros((4, 4, 1), np.uint8)])
    shapes = ds["_images_shape"].numpy(aslist=True)
    assert [s.tolist() for s in shapes] == [[5, 6, 3], [2, 3, 3], [4, 4, 1]]
    ids = ds["_images_id"].numpy().reshape(-1)
    assert ids.shape == (3,) and len(set(ids.tolist())) == 3
    info = ds["_images_info"].numpy(aslist=True)
    assert info[0]["format"] == "png" and info[0]["shape"] == [5, 6, 3]
    assert info[0]["filename"] == str(path) and info[0]["modified"] is False
    assert info[1] == {} and info[2] == {}  # arrays have no source to describe

    ds.images[1] = tl.read(path)  # an update: new shape and info, the same id
    assert ds["_images_shape"][1].numpy().tolist() == [5, 6, 3]
    assert ds["_images_info"][1].numpy()[0]["format"] == "png"
    assert ds["_images_id"].numpy().reshape(-1).tolist() == ids.tolist()

    ds.images.pop(0)
    assert len(ds["_images_shape"]) == len(ds["_images_id"]) == len(ds["_images_info"]) == 2
    assert ds["_images_id"].numpy().reshape(-1).tolist() == ids[1:].tolist()
    assert [s.tolist() for s in ds["_images_shape"].numpy(aslist=True)] == [[5, 6, 3], [4, 4, 1]]


def test_empty_rows_appended_for_left_out_tensors_reach_their_companions(ds):
    ds.create_tensor("x", create_shape_tensor=True, create_id_tensor=True)
    ds.create_tensor("y")
    ds.append({"x": [1, 2], "y": 1})
    ds.append({"y": 2}, append_empty=True)  # x gets an empty row, and so do its companions
    assert len(ds["_x_shape"]) == len(ds["_x_id"]) == len(ds.x) == 2
    assert [s.tolist() for s in ds["_x_shape"].numpy(aslist=True)] == [[2], [0]]


def test_a_bad_sample_leaves_the_companions_unchanged(ds):
    ds.create_tensor("boxes", htype="bbox", create_shape_tensor=True, create_id_tensor=True)
    ds.boxes.append([[1, 2, 3, 4]])
    with pytest.raises(tl.SampleError):
        ds.boxes.extend([[[1, 2, 3, 4]], [[1, 2, 3]]])
    assert len(ds.boxes) == len(ds["_boxes_shape"]) == len(ds["_boxes_id"]) == 1


def test_companions_of_rows_written_by_compute_workers(ds):
    ds.create_tensor("x", create_shape_tensor=True, create_id_tensor=True)

    @tl.compute
    def rows(i, sample_out):
        sample_out.x.append(np.zeros((i + 1,), np.int64))

    rows().eval(list(range(5)), ds, num_workers=0)
    assert [s.tolist() for s in ds["_x_shape"].numpy(aslist=True)] == [[1], [2], [3], [4], [5]]
    assert len(set(ds["_x_id"].numpy().reshape(-1).tolist())) == 5


def test_shape_and_info_companions_apply_where_deep_lake_makes_them(ds):
    ds.create_tensor("t", htype="text", create_shape_tensor=True, create_id_tensor=True)
    ds.create_tensor("labels", htype="class_label", create_sample_info_tensor=True)
    assert _hidden(ds) == ["_t_id"]  # no shapes for text, no sample info for labels
    ds.t.append("a")
    assert ds["_t_id"].numpy().shape == (1, 1)


def test_link_companions_default_to_verify(ds, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_png(3, 4))
    ds.create_tensor("on", htype="link[image]", sample_compression="png")
    ds.create_tensor("off", htype="link[image]", sample_compression="png", verify=False)
    ds.create_tensor("ids", htype="link[image]", sample_compression="png", create_id_tensor=True)
    assert _hidden(ds) == ["_ids_id", "_ids_info", "_ids_shape", "_on_info", "_on_shape"]
    ds.on.append(tl.link(path))
    assert ds["_on_shape"][0].numpy().tolist() == [3, 4, 3]
    assert ds["_on_info"][0].numpy()[0]["format"] == "png"


def test_deleting_a_tensor_deletes_every_companion(ds):
    ds.create_tensor("x", create_shape_tensor=True, create_id_tensor=True)
    ds.x.append([1, 2])
    ds.delete_tensor("x")
    assert _hidden(ds) == []
    ds.create_tensor("x", create_shape_tensor=True)  # the names are free again
    assert _hidden(ds) == ["_x_shape"]


def test_companion_names_already_taken_are_refused(ds):
    ds.create_tensor("_x_shape")
    with pytest.raises(tl.DatasetError, match="_x_shape"):
        ds.create_tensor("x", create_shape_tensor=True)
    assert "x" not in ds._core.engines


def test_tiling_threshold_splits_large_samples_into_tiles_of_that_size(ds):
    ds.create_tensor("small_tiles", tiling_threshold=1000)
    ds.create_tensor("never", tiling_threshold=-1, max_chunk_size=1000)
    ds.create_tensor("default", max_chunk_size=1000)
    sample = np.arange(5000, dtype=np.uint8)
    for name in ("small_tiles", "never", "default"):
        ds[name].append(sample)
        ds[name].append(np.arange(10, dtype=np.uint8))
    ds.flush()
    kinds = {n: ds[n]._engine.manifest_table().column("kind").tolist() for n in ds.tensors}
    assert kinds["small_tiles"] == [1, 1, 1, 1, 2, 0]  # 5 tiles of 1000 bytes, a chunk
    assert kinds["default"] == [1, 1, 1, 1, 2, 0]  # the chunk size decides
    assert kinds["never"] == [0, 0]  # one oversized chunk, then the next row's
    for name in ds.tensors:
        assert np.array_equal(ds[name][0].numpy(), sample)
        assert ds[name][1].numpy().tolist() == list(range(10))
    ds.small_tiles[0] = sample[::-1].copy()  # an update re-tiles by the same rule
    assert np.array_equal(ds.small_tiles[0].numpy(), sample[::-1])


@pytest.mark.parametrize("bad", [0, -2, 1.5, "1MB", True])
def test_tiling_threshold_must_be_bytes_or_minus_one(ds, bad):
    with pytest.raises(tl.HtypeError, match="tiling_threshold"):
        ds.create_tensor("x", tiling_threshold=bad)
    assert "x" not in ds.tensors


def test_chunk_compression_alone_makes_an_image_tensor_compressed_per_chunk(ds):
    ds.create_tensor("images", htype="image", chunk_compression="lz4")
    assert ds.images.sample_compression is None and ds.images.chunk_compression == "lz4"
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    ds.images.append(img)
    ds.flush()
    assert np.array_equal(ds.images[0].numpy(), img)
    with pytest.raises(tl.HtypeError, match="chunk_compression 'png'"):
        ds.create_tensor("boxes", htype="bbox", chunk_compression="png")  # no image rows
    assert "boxes" not in ds.tensors


def test_hidden_tensors_are_reachable_by_name_only(ds):
    ds.create_tensor("secret", hidden=True)
    ds.secret.append(1)
    assert "secret" not in ds.tensors and ds["secret"].numpy().tolist() == [[1]]


def test_downsampling_is_refused_by_name(ds):
    ds.create_tensor("ok", htype="image", sample_compression="png", downsampling=None)
    with pytest.raises(tl.HtypeArgumentError, match="downsampling is not supported"):
        ds.create_tensor("images", htype="image", sample_compression="png", downsampling=(2, 3))
    assert "images" not in ds.tensors


def test_unknown_arguments_are_a_typed_error_naming_them_and_the_accepted_ones(ds):
    with pytest.raises(tl.HtypeArgumentError) as info:
        ds.create_tensor("labels", htype="class_label", class_name=["a"], colour="red")
    message = str(info.value)
    assert "['class_name', 'colour']" in message and "'class_label'" in message
    for accepted in (*COMMON_ARGS, "class_names"):
        assert accepted in message
    assert isinstance(info.value, TypeError) and isinstance(info.value, tl.TensorlakeError)
    assert "labels" not in ds.tensors


def test_deep_lake_call_with_every_argument_works(ds):
    ds.create_tensor(
        "images",
        htype="image",
        dtype="uint8",
        sample_compression="jpg",
        chunk_compression=None,
        hidden=False,
        create_sample_info_tensor=True,
        create_shape_tensor=True,
        create_id_tensor=True,
        verify=True,
        exist_ok=False,
        verbose=True,
        downsampling=None,
        tiling_threshold=None,
    )
    assert ds.images.sample_compression == "jpeg"
    assert _hidden(ds) == ["_images_id", "_images_info", "_images_shape"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"create_shape_tensor": "yes"}, "takes True or False"),
        ({"max_chunk_size": -1}, "max_chunk_size"),
        ({"sample_compression": "webp"}, "not valid for htype"),
    ],
)
def test_bad_argument_values_are_htype_errors(ds, kwargs, match):
    with pytest.raises(tl.HtypeError, match=match):
        ds.create_tensor("x", **kwargs)
