"""Deep Lake parity, saved views: save_view, get_views, get_view, load_view,
delete_view; stored in the dataset's storage, kept by gc; on memory, local and S3."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format import keys


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("g/t", htype="text")
        ds.extend({"x": list(range(10)), "g/t": [f"r{i}" for i in range(10)]})
    ds.commit("ten rows")
    return ds


def _xs(view) -> list[int]:
    return view.x.numpy().reshape(-1).tolist()


def test_a_saved_view_reads_back_its_rows_at_its_commit(storage_target):
    ds = _new(storage_target)
    taken_at = ds.commit_id
    view_id = ds[[8, 2, 5]].save_view(message="three rows", id="three")
    assert view_id == "three"
    ds.x[2] = 200  # later changes do not move the view
    ds.pop(0)
    ds.commit("changed")
    again = tl.load(storage_target.url, creds=storage_target.creds)
    view = again.load_view("three")
    assert _xs(view) == [8, 2, 5] and view.commit_id == taken_at and view.read_only
    assert view.g.t.numpy(aslist=True) == ["r8", "r2", "r5"]
    entries = again.get_views()
    assert [(e.id, e.message, e.commit_id, e.num_samples) for e in entries] == [
        ("three", "three rows", taken_at, 3)
    ]
    assert entries[0].virtual and _xs(entries[0].load()) == [8, 2, 5]
    assert again.get_views(commit_id=again.commit_id) == []
    assert again.get_view("three").message == "three rows"
    fresh = ds[:2].save_view()  # a new id; at the current commit: a writable view
    assert fresh != "three" and len(ds.get_views()) == 2
    assert _xs(ds.load_view(fresh)) == [1, 200]


def test_views_of_groups_and_errors(storage_target):
    ds = _new(storage_target)
    ds.g[3:6].save_view(id="group-view")
    view = ds.load_view("group-view")
    assert view.group_index == "g" and view.t.numpy(aslist=True) == ["r3", "r4", "r5"]
    with pytest.raises(tl.DatasetError, match="overwrite=True"):
        ds[0:1].save_view(id="group-view")
    ds[0:1].save_view(id="group-view", overwrite=True)
    assert ds.load_view("group-view").x.numpy().reshape(-1).tolist() == [0]
    with pytest.raises(KeyError, match="Saved views"):
        ds.load_view("nope")
    with pytest.raises(tl.ViewNotFoundError):
        ds.delete_view("nope")
    with pytest.raises(tl.DatasetArgumentError):
        ds.save_view(id="bad id!")
    ds.x.append(10)
    with pytest.raises(tl.DatasetError, match="commit"):
        ds[0:2].save_view()
    ro = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    with pytest.raises(tl.ReadOnlyError):
        ro[0:2].save_view()
    assert [e.id for e in ro.get_views()] == ["group-view"]  # reading needs no write


def test_delete_view_and_gc_keeps_what_views_name(storage_target):
    ds = _new(storage_target)
    ds.checkout("dev", create=True)
    ds.x[0] = -1
    ds.commit("on dev")
    ds[0:3].save_view(id="dev-view")
    ds.checkout("main")
    ds.delete_branch("dev")  # runs gc: the view's commit stays
    ds.gc()
    assert _xs(ds.load_view("dev-view")) == [-1, 1, 2]
    assert ds.verify().ok
    ds.delete_view("dev-view")
    assert ds.get_views() == []
    with pytest.raises(tl.ViewNotFoundError):
        ds.load_view("dev-view")
    counts = ds.gc()
    assert counts["commits"] >= 1  # nothing keeps dev's commit any more


def test_optimized_views_and_views_saved_at_a_path(storage_target, tmp_path):
    ds = _new(storage_target)
    view_id = ds[[9, 7]].save_view(id="opt", optimize=True)
    entry = ds.get_view(view_id)
    assert entry.optimized and not entry.virtual
    view = ds.load_view("opt")
    assert _xs(view) == [9, 7] and not view.is_view and view.read_only
    if storage_target.kind != "memory":  # a memory store per name: no nesting
        stored = list(storage_target.open().list(keys.view_data_prefix("opt")))
        assert stored  # the copy lives under views/opt/ in the dataset's storage
    lazy = ds[[1, 3]].save_view(id="later")
    assert _xs(ds.load_view(lazy, optimize=True)) == [1, 3] and ds.get_view("later").optimized
    copy_url = tl.load(storage_target.url, creds=storage_target.creds).load_view("opt").path
    ds.delete_view("opt")
    assert not tl.exists(copy_url, creds=storage_target.creds)
    ds.gc()
    assert _xs(ds.load_view("later")) == [1, 3]
    out = ds[4:6].save_view(path=str(tmp_path / "external"))
    assert out == str(tmp_path / "external")
    assert _xs(tl.load(out)) == [4, 5] and [e.id for e in ds.get_views()] == ["later"]


def test_old_datasets_without_views_read_as_having_none(storage_target):
    ds = _new(storage_target)
    assert ds.get_views() == []
    assert not list(storage_target.open().list(keys.VIEWS_PREFIX))
    np.testing.assert_array_equal(ds.x.numpy().reshape(-1), np.arange(10))
