"""``t[i] = v`` past the end of a tensor pads it with empty rows, as Deep Lake does (its
test_insertion_out_of_order.py); reading only empty rows raises ``EmptyTensorError``."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl

COMPRESSIONS = [{}, {"sample_compression": "lz4"}, {"chunk_compression": "lz4"}]


@pytest.mark.parametrize("insert_first", [True, False])
def test_an_array_written_past_the_end_pads_with_empty_rows(storage_target, insert_first):
    first, tenth = np.random.rand(4, 5, 3), np.random.rand(4, 5, 3)
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    with ds:
        ds.create_tensor("abc")
        ds.create_tensor("other")
        ds.other.append(1)
        if insert_first:
            ds.abc.append(first)
        ds.abc[10] = tenth
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert len(again.abc) == 11 and len(again.other) == 1  # other tensors keep their length
    rows = again.abc.numpy(aslist=True)
    assert np.array_equal(rows[10], tenth)
    if insert_first:
        assert np.array_equal(rows[0], first)
    assert all(r.shape == (0, 0, 0) and r.dtype == np.float64 for r in rows[int(insert_first) : 10])


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize(
    ("htype", "first", "tenth", "empty"),
    [
        ("generic", {"a": 1}, {"a": 3}, {}),  # a generic tensor becomes json
        ("generic", "hi", "a longer text", ""),  # ... or text
        ("json", {"a": 1}, {"b": [1, 2]}, {}),
        ("text", "hi", "there", ""),
        ("list", [1, 2, 3], [4, 5, 6], []),
    ],
)
@pytest.mark.parametrize("insert_first", [True, False])
def test_text_json_and_list_rows_pad_with_their_empty_values(
    tmp_path, compression, htype, first, tenth, empty, insert_first
):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("abc", htype=htype, **compression)
    if insert_first:
        ds.abc.append(first)
    ds.abc[10] = tenth
    ds.flush()
    values = [v.tolist() if isinstance(v, np.ndarray) else v for v in ds.abc.numpy(aslist=True)]
    head = [first] if insert_first else []
    assert values == [*head, *([empty] * (10 - len(head))), tenth]


def test_class_labels_and_images_written_past_the_end(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    labels = ds.create_tensor("labels", htype="class_label")
    labels[0] = [0, 1]  # the row right after the end: no padding
    labels[0] = [1, 2]  # an update
    labels[3] = [2]
    assert [r.tolist() for r in labels.numpy(aslist=True)] == [[1, 2], [], [], [2]]
    ds.create_tensor("images", htype="image", sample_compression="png")
    img = np.random.randint(0, 256, (6, 7, 3), dtype=np.uint8)
    ds.images[2] = img
    assert [r.shape for r in ds.images.numpy(aslist=True)] == [(0, 0, 0), (0, 0, 0), (6, 7, 3)]
    assert np.array_equal(ds.images[2].numpy(), img)


def test_writes_past_the_end_that_stay_refused(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x")
    ds.x.extend([1, 2])
    with pytest.raises(tl.InvalidIndexError):
        ds.x[-3] = 5  # negative: counted from the end, not padded
    with pytest.raises(tl.DatasetError, match="1 rows selected"):
        ds.x[1:5] = [1, 2, 3, 4]  # slices select existing rows only
    with pytest.raises(tl.InvalidIndexError):
        ds.x[:1][3] = 1  # a view's rows are the view's
    ds.create_tensor("seq", htype="sequence")
    with pytest.raises(tl.DatasetError, match="sequence"):
        ds.seq[2] = [1, 2]
    with pytest.raises(tl.SampleError):
        ds.x[5] = "text"  # a bad value pads nothing
    assert len(ds.x) == 2 and len(ds.seq) == 0


def test_view_shapes_follow_the_index_inside_samples(tmp_path):
    """Deep Lake's test_shape_bug / test_shape_squeeze / test_ellipsis meanings."""
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x")
    ds.x.extend(np.ones((5, 9, 2)))
    assert ds.x[1:4, 3:7].shape == (3, 4, 2)
    ds.x.extend(np.ones((5, 9, 3)))
    assert ds.x[3:8].shape == (5, 9, None)
    assert ds.x[3:7, 2:4, :1].shape == (4, 2, 1)
    assert ds.x[3:7, 2:4, :3].shape == (4, 2, None)
    assert ds.x[6:, :, 1].shape == (4, 9)  # an int inside samples drops that axis
    arr = np.random.random((5, 3, 2, 3, 4))
    ds.create_tensor("e")
    ds.e.extend(arr)
    for item in [(slice(None, 3), Ellipsis, 1), (Ellipsis, slice(None, 2)), (Ellipsis, 1, 2)]:
        assert ds.e[item].shape == arr[item].shape
        assert np.array_equal(ds.e[item].numpy(), arr[item])
