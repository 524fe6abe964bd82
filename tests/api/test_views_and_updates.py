"""Views select rows like numpy does; updates rewrite rows and survive a reload."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorlake as tl

N = 37


@pytest.fixture(scope="module")
def numbered():
    ds = tl.empty("mem://views", overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int32", max_chunk_size=64)
        ds.create_tensor("y", htype="text")
        ds.extend({"x": [[i, -i] for i in range(N)], "y": [str(i) for i in range(N)]})
    return ds


def _index_strategy():
    ints = st.integers(-N, N - 1)
    slices = st.slices(N)
    lists = st.lists(st.integers(-N, N - 1), max_size=10)
    masks = hnp.arrays(bool, N)
    return st.one_of(ints, slices, lists, masks)


@settings(max_examples=150, deadline=None)
@given(
    first=_index_strategy(),
    second=st.one_of(st.none(), st.slices(N), st.lists(st.integers(0, 3), max_size=4)),
)
def test_indexing_matches_numpy(numbered, first, second):
    ref = np.array([[i, -i] for i in range(N)], dtype=np.int32)
    expected = ref[first]
    view = numbered.x[first]
    if second is not None and expected.ndim == 2:
        try:
            expected = expected[second]
        except IndexError:
            with pytest.raises(IndexError):
                view[second]
            return
        view = view[second]
    got = view.numpy()
    np.testing.assert_array_equal(got, expected)
    assert len(view) == (1 if expected.ndim == 1 else len(expected))


def test_dataset_views(numbered):
    ds = numbered
    assert len(ds[5:10]) == 5
    assert ds[5:10].x.numpy()[:, 0].tolist() == [5, 6, 7, 8, 9]
    assert ds[[3, 1]].y.numpy(aslist=True) == ["3", "1"]
    assert ds[-1].x.numpy().tolist() == [N - 1, -(N - 1)]
    assert ds[2:20:3][1].y.text() == "5"
    assert ds[4]["x"].numpy().tolist() == [4, -4]
    assert [int(r.x.numpy()[0]) for r in ds[0:3]] == [0, 1, 2]
    assert ds.x[3, 1].numpy() == -3
    assert ds.x[2:4, 0].numpy().tolist() == [2, 3]
    with pytest.raises(IndexError):
        ds[N]
    with pytest.raises(tl.DatasetError):
        ds[0:2].append({"x": [1, 1], "y": "z"})


def test_lengths_and_shapes():
    ds = tl.empty("mem://lens", overwrite=True)
    ds.create_tensor("a")
    ds.create_tensor("b")
    ds.a.extend([np.zeros((2, 3)), np.zeros((4, 3))])
    ds.b.append(np.zeros(5))
    assert (len(ds), ds.min_len, ds.max_len) == (1, 1, 2)
    assert ds.a.shape == (2, None, 3)
    assert ds.a[1].shape == (4, 3)
    assert ds.a[1, 1:3].shape == (2, 3)
    assert ds.a[0:1].shape == (1, 2, 3)
    with pytest.raises(tl.DatasetError, match="aslist=True"):
        ds.a.numpy()


def test_updates(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=100)
        ds.create_tensor("t", htype="text")
        ds.extend(
            {"x": [np.full(i % 4 + 1, i) for i in range(30)], "t": [str(i) for i in range(30)]}
        )
    ds.x[3] = [100, 101, 102]
    ds.x[29] = np.arange(50)  # last row, oversized -> tiled
    ds.x[[0, 10]] = [[7], [8, 8]]
    ds[5].update({"t": "five", "x": [5, 5, 5, 5, 5]})
    ds.t[6:8] = ["six", "seven"]
    expected_x = [np.full(i % 4 + 1, i) for i in range(30)]
    expected_x[3] = np.array([100, 101, 102])
    expected_x[29] = np.arange(50)
    expected_x[0], expected_x[10] = np.array([7]), np.array([8, 8])
    expected_x[5] = np.full(5, 5)
    expected_t = [str(i) for i in range(30)]
    expected_t[5:8] = ["five", "six", "seven"]
    for d in (ds, tl.load(storage_target.url, creds=storage_target.creds)):
        assert [v.tolist() for v in d.x.numpy(aslist=True)] == [v.tolist() for v in expected_x]
        assert d.t.text() == expected_t
    ds.x[29] = [1]  # a tiled row replaced by a small one
    assert ds.x[29].numpy().tolist() == [1]
    assert ds.x[28].numpy().tolist() == expected_x[28].tolist()


def test_update_with_bad_value_changes_nothing():
    ds = tl.empty("mem://badupdate", overwrite=True)
    ds.create_tensor("b", htype="bbox")
    ds.b.extend([[[1, 2, 3, 4]], [[5, 6, 7, 8]]])
    with pytest.raises(tl.SampleError):
        ds.b[0:2] = [[[0, 0, 1, 1]], [[1, 2, 3]]]
    assert ds.b.numpy().tolist() == [[[1, 2, 3, 4]], [[5, 6, 7, 8]]]


def test_info_is_saved():
    ds = tl.empty("mem://info", overwrite=True)
    ds.info.description = "test"
    ds.info.update(source="here", n=3)
    ds.create_tensor("x")
    ds.x.info["unit"] = "m"
    again = tl.load("mem://info")
    assert dict(again.info) == {"description": "test", "source": "here", "n": 3}
    assert again.x.info.unit == "m"


def test_delete_tensor_removes_its_chunks_after_the_manifest(storage_target):
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    with ds:
        ds.create_tensor("keep")
        ds.create_tensor("drop")
        ds.extend({"keep": [[1], [2]], "drop": [[3], [4]]})
    storage = storage_target.open()
    assert any(k.startswith("tensors/drop/") for k in storage.list("tensors/"))
    with ds:
        ds.delete_tensor("drop")
        # still inside the batch: the stored manifest names the chunks, so they stay
        assert any(k.startswith("tensors/drop/") for k in storage.list("tensors/"))
    assert not any(k.startswith("tensors/drop/") for k in storage.list("tensors/"))
    again = tl.load(storage_target.url, creds=storage_target.creds)
    assert list(again.tensors) == ["keep"] and again.keep.numpy().tolist() == [[1], [2]]
    again.create_tensor("drop")
    assert len(again.drop) == 0


def test_ragged_reads_in_any_order_across_chunks():
    """The vectorised ragged path (one copy per chunk) agrees with row-by-row reads."""
    rng = np.random.default_rng(3)
    ds = tl.empty("mem://ragged-order", overwrite=True)
    values = [rng.normal(size=(int(k), 4)).astype(np.float32) for k in rng.integers(0, 6, 500)]
    with ds:
        ds.create_tensor("b", htype="bbox", max_chunk_size=2048)
        ds.b.extend(values)
    assert len(ds.b._engine.table) > 5
    order = rng.permutation(500)[:200]
    got = ds.b[order.tolist()].numpy(aslist=True)
    for i, arr in zip(order, got):
        np.testing.assert_array_equal(arr, values[i])
        assert arr.flags.writeable
    got[0][...] = 7  # writable copies: the stored data and other rows are untouched
    np.testing.assert_array_equal(ds.b[int(order[0])].numpy(), values[order[0]])
    np.testing.assert_array_equal(ds.b[100:300].numpy(aslist=True)[5], values[105])
