"""Deep Lake parity, views chosen by rule: ds.random_split, ds.filter, ds.min_view and
ds.max_view (tensors of different lengths)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorlake as tl


def _new(n: int = 10, name: str = "select"):
    ds = tl.empty(f"mem://{name}", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("t", htype="text")
    ds.extend({"x": list(range(n)), "t": [f"r{i}" for i in range(n)]})
    return ds


def _xs(view) -> list[int]:
    return view.x.numpy().reshape(-1).tolist()


def test_random_split_by_fractions_and_counts():
    ds = _new(10)
    train, val = ds.random_split([0.8, 0.2])
    assert (len(train), len(val)) == (8, 2)
    assert sorted(_xs(train) + _xs(val)) == list(range(10)) and train.is_view
    a, b, c = ds.random_split([0.34, 0.33, 0.33])  # floor: 3, 3, 3, the remainder to the first
    assert (len(a), len(b), len(c)) == (4, 3, 3)
    parts = ds.random_split([3, 7], seed=1)
    assert [len(p) for p in parts] == [3, 7]
    assert [_xs(p) for p in ds.random_split([3, 7], seed=1)] == [_xs(p) for p in parts]
    assert sorted(_xs(parts[0]) + _xs(parts[1])) == list(range(10))
    sub = ds[2:8].random_split([0.5, 0.5], seed=0)
    assert sorted(_xs(sub[0]) + _xs(sub[1])) == list(range(2, 8))


def test_random_split_errors():
    ds = _new(10, "split-errors")
    with pytest.raises(ValueError, match="has 10 rows"):
        ds.random_split([3, 3])
    with pytest.raises(tl.DatasetArgumentError, match="sum to 1"):
        ds.random_split([0.5, 0.6])
    ds.x.append(10)
    with pytest.raises(tl.DatasetArgumentError, match="one length"):
        ds.random_split([0.5, 0.5])


def test_filter_calls_the_function_on_row_views():
    ds = _new(12, "filter")
    seen = []

    def even(row):
        seen.append(type(row))
        return row.x.numpy().reshape(-1)[0] % 2 == 0

    view = ds.filter(even)
    assert _xs(view) == [0, 2, 4, 6, 8, 10] and view.t.numpy(aslist=True)[1] == "r2"
    assert set(seen) == {tl.Dataset}
    names = []
    lock = threading.Lock()

    def threes(row):
        with lock:
            names.append(threading.current_thread().name)
        return int(row.x.numpy().reshape(-1)[0]) % 3 == 0

    assert _xs(ds.filter(threes, num_workers=3)) == [0, 3, 6, 9]
    assert _xs(ds[5:].filter(lambda r: r.t.text() in ("r6", "r11"), progressbar=True)) == [6, 11]
    with pytest.raises(tl.DatasetArgumentError, match="TQL"):
        ds.filter("x == 1")


def test_min_view_and_max_view_of_tensors_of_different_lengths():
    ds = _new(5, "minmax")
    ds.x.extend([5, 6])  # x: 7 rows, t: 5
    assert len(ds.min_view) == 5 and _xs(ds.min_view) == [0, 1, 2, 3, 4]
    big = ds.max_view
    assert len(big) == 7 and len(big.t) == 7
    assert _xs(big) == list(range(7))
    texts = big.t.numpy(aslist=True)
    assert texts[:5] == [f"r{i}" for i in range(5)] and texts[5:] == [None, None]
    rows = list(big)
    assert len(rows) == 7 and rows[6].t.numpy() is None and rows[6].x.numpy().reshape(-1)[0] == 6
    ds.create_tensor("v", dtype="float32")
    ds.v.append(np.ones(3, np.float32))
    padded = ds.max_view.v.numpy(aslist=True)
    assert padded[0].tolist() == [1, 1, 1] and padded[6].shape == (0,)
    assert padded[6].dtype == np.float32
    with pytest.raises(tl.DatasetError, match="aslist=True"):
        ds.max_view.v.numpy()
    assert len(ds.max_view[2:6]) == 4
