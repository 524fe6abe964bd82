"""Deep Lake parity, rows: ds.pop / tensor.pop, tensor.clear, tensor.shapes(),
tobytes() of a row view, and the settable ds.read_only; on memory, local and S3."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import jpeg_bytes


def _new(target, rows: int = 10, chunk: int | None = None):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64", max_chunk_size=chunk)
        ds.create_tensor("img", htype="image", sample_compression="jpeg")
        ds.create_tensor("t", htype="text")
        for i in range(rows):
            ds.append({"x": np.arange(i + 1), "img": tl.Sample(data=_jpeg(i)), "t": f"row{i}"})
    return ds


_JPEGS: dict[int, bytes] = {}


def _jpeg(i: int) -> bytes:
    if i not in _JPEGS:
        _JPEGS[i] = jpeg_bytes(8 + i, 10, seed=i)
    return _JPEGS[i]


def _x(ds) -> list[list[int]]:
    return [v.tolist() for v in ds.x.numpy(aslist=True)]


def test_pop_removes_a_row_from_every_tensor_and_keeps_history(storage_target):
    ds = _new(storage_target)
    first = ds.commit("ten rows")
    ds.pop()  # the last row
    ds.pop(0)
    ds.pop([2, 4])
    kept = [1, 2, 4, 6, 7, 8]  # rows of the first commit that are left
    assert len(ds) == 6 and ds.max_len == 6
    assert _x(ds) == [list(range(i + 1)) for i in kept]
    assert ds.t.numpy(aslist=True) == [f"row{i}" for i in kept]
    assert [ds.img[k].tobytes() for k in range(6)] == [_jpeg(i) for i in kept]
    second = ds.commit("popped")
    reopened = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert _x(reopened) == _x(ds)
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert len(old) == 10 and _x(old)[9] == list(range(10))
    d = ds.diff(first, second, as_dict=True)["b"]["tensors"]["x"]
    assert d["rows_deleted"] == 4 and d["rows_added"] is None
    assert ds.verify().ok
    ds.gc()
    assert ds.verify().ok and len(tl.load(storage_target.url, creds=storage_target.creds)) == 6


def test_pop_across_chunk_boundaries_and_unflushed_rows(storage_target):
    ds = _new(storage_target, rows=12, chunk=64)  # x: a few rows per chunk
    with ds:
        ds.x.extend([np.arange(3)] * 2)  # x is longer: rows 12, 13 only in x
        ds.pop(13)  # only x has row 13
        ds.x.pop(5)
        ds.x.pop([0, 11])  # numbered after the pop of 5: row 11 is the one added
    expect = [list(range(i + 1)) for i in range(12) if i not in (0, 5)]
    assert _x(ds) == expect
    assert len(ds.img) == 12 and len(ds.x) == 10 and len(ds) == 10
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert _x(again) == expect
    assert ds.verify().ok


def test_diff_tells_rows_deleted_from_rows_added(storage_target):
    ds = _new(storage_target, rows=4)
    base = ds.commit("four")
    ds.pop(1)
    ds.append({"x": [9], "img": tl.Sample(data=_jpeg(0)), "t": "new"})
    ds.append({"x": [8], "img": tl.Sample(data=_jpeg(1)), "t": "newer"})
    ds.pop()  # the row just added: no row of the base
    d = ds.diff(as_dict=True)["b"]["tensors"]["t"]
    assert d["rows_deleted"] == 1 and d["rows_added"] == [3, 4]
    assert "1 rows deleted" in _printed(ds)
    ds.commit("changed")
    assert ds.diff(base, ds.commit_id, as_dict=True)["b"]["tensors"]["t"]["rows_deleted"] == 1


def _printed(ds) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ds.diff()
    return out.getvalue()


def test_pop_errors_are_typed_like_deep_lake():
    ds = tl.empty("mem://pop-errors", overwrite=True)
    ds.create_tensor("x")
    with pytest.raises(IndexError, match="no rows"):
        ds.pop()
    ds.x.extend([1, 2, 3])
    with pytest.raises(tl.InvalidIndexError, match="out of range"):
        ds.pop(3)
    with pytest.raises(IndexError, match="negative"):
        ds.x.pop(-1)
    with pytest.raises(tl.DatasetArgumentError, match="duplicate"):
        ds.pop([1, 1])
    with pytest.raises(ValueError):
        ds.x.pop([0, 0])
    with pytest.raises(tl.DatasetError, match="view"):
        ds[0:2].pop()
    with pytest.raises(tl.DatasetError, match="view"):
        ds.x[0:2].pop()
    assert ds.x.numpy().reshape(-1).tolist() == [1, 2, 3]


def test_clear_empties_one_tensor_and_a_new_commit_sees_it(storage_target):
    ds = _new(storage_target, rows=3)
    first = ds.commit("three")
    ds.img.clear()
    assert len(ds.img) == 0 and len(ds.x) == 3 and len(ds) == 0
    assert ds.img.meta.min_shape is None and ds.img.htype == "image"
    ds.img.append(tl.Sample(data=_jpeg(5)))
    assert ds.img[0].tobytes() == _jpeg(5)
    ds.commit("cleared")
    assert ds.diff(first, ds.commit_id, as_dict=True)["b"]["tensors"]["img"]["rows_deleted"] == 3
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert [old.img[i].tobytes() for i in range(3)] == [_jpeg(i) for i in range(3)]


def test_shapes_per_row(storage_target):
    ds = _new(storage_target, rows=4)
    assert ds.x.shapes().tolist() == [[1], [2], [3], [4]]
    assert ds.img.shapes().tolist() == [[8 + i, 10, 3] for i in range(4)]
    assert ds.img[1:3].shapes().tolist() == [[9, 10, 3], [10, 10, 3]]
    assert ds.img[2].shapes().tolist() == [[10, 10, 3]]
    ds.create_tensor("emb", htype="embedding")
    ds.emb.extend(np.zeros((4, 16), np.float32))
    fixed = ds.emb.shapes()
    assert fixed.shape == (4, 1) and (fixed == 16).all()
    assert ds.emb[[3, 0]].shapes().tolist() == [[16], [16]]
    empty = tl.empty("mem://shapes-empty", overwrite=True)
    empty.create_tensor("z")
    assert empty.z.shapes().shape[0] == 0


def test_tobytes_of_a_row_view_and_a_clear_error_for_many(storage_target):
    ds = _new(storage_target, rows=5)
    assert ds.img[3].tobytes() == _jpeg(3)
    assert ds[3].img.tobytes() == _jpeg(3)
    assert np.frombuffer(ds.x[2].tobytes(), np.int64).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="exactly one row"):
        ds.img[1:3].tobytes()
    with pytest.raises(tl.DatasetArgumentError, match=r"ds\.images\[3\]\.tobytes"):
        ds.img.tobytes()


# takes the writer lock by appending, says so, waits for a line on stdin, then exits
_HOLDER = """
import json, sys
import numpy as np
import tensorlake as tl
ds = tl.load(sys.argv[1], creds=json.loads(sys.argv[2]))
ds.x.append(np.array([7, 7]))
print("holding", flush=True)
sys.stdin.readline()
ds.close()
"""


def test_read_only_setter_releases_and_retakes_the_lock(storage_target):
    if storage_target.kind == "memory":
        pytest.skip("a second writer needs a second process, which memory datasets lack")
    ds = _new(storage_target, rows=2)
    ds.x.append([3])  # this process holds the lock now
    ds.read_only = True
    assert ds.read_only
    with pytest.raises(tl.ReadOnlyError):
        ds.x.append([1])
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, storage_target.url, json.dumps(storage_target.creds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:  # the other process could take the lock: this one released it
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(tl.LockedError):
            ds.read_only = False
        assert ds.read_only
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        for pipe in (holder.stdout, holder.stdin):
            if pipe is not None and not pipe.closed:
                pipe.close()
    ds.read_only = False
    assert not ds.read_only
    assert _x(ds)[-2:] == [[3], [7, 7]]  # reloaded: the other writer's row is there
    ds.x.append([5])
    ds.flush()
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert _x(again)[-3:] == [[3], [7, 7], [5]]
    with pytest.raises(tl.DatasetError, match="view"):
        ds[0:1].read_only = True


def test_read_only_true_stores_unflushed_rows_first(storage_target):
    ds = _new(storage_target, rows=1)
    with ds:
        ds.t.append("pending")
        ds.read_only = True
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert again.t[-1].text() == "pending"
    with pytest.raises(tl.ReadOnlyError, match="read-only"):
        ds.t.append("refused")


def test_read_only_false_on_a_dataset_opened_read_only(storage_target):
    _new(storage_target, rows=1).close()
    ds = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    with pytest.raises(tl.ReadOnlyError):
        ds.t.append("no")
    ds.read_only = False
    ds.t.append("yes")
    ds.x.append([1])
    ds.img.append(tl.Sample(data=_jpeg(1)))
    ds.commit("written after read_only=False")
    assert tl.load(storage_target.url, creds=storage_target.creds).t[-1].text() == "yes"
