"""Deep Lake parity, schema: ds.rename_tensor, ds.rename_group, ds.delete_group as
versioned changes; chunks stay where they are and older commits stay intact."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format import keys


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("meta/boxes", htype="bbox")
        ds.create_tensor("meta/sub/label", htype="text")
        for i in range(5):
            ds.append(
                {
                    "x": np.arange(i + 1),
                    "meta/boxes": np.full((2, 4), i, np.float32),
                    "meta/sub/label": f"l{i}",
                }
            )
    return ds


def _chunk_keys(target) -> list[str]:
    return sorted(k for k in target.open().list(keys.TENSORS_PREFIX))


def test_rename_tensor_moves_no_chunk_and_keeps_old_commits(storage_target):
    ds = _new(storage_target)
    first = ds.commit("five rows")
    stored = _chunk_keys(storage_target)
    renamed = ds.rename_tensor("x", "y")
    assert renamed.key == "y" and next(iter(ds.tensors)) == "y" and "x" not in ds.tensors
    assert [v.tolist() for v in ds.y.numpy(aslist=True)] == [list(range(i + 1)) for i in range(5)]
    ds.y.append(np.arange(3))  # new rows land beside the old ones
    ds.y[0] = np.array([42])
    second = ds.commit("renamed x")
    assert all(k.startswith("tensors/x/") or "meta" in k for k in _chunk_keys(storage_target))
    assert set(stored) <= set(_chunk_keys(storage_target))  # nothing committed was removed
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert again.y[0].numpy().tolist() == [42] and again.y[5].numpy().tolist() == [0, 1, 2]
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert "x" in old.tensors and "y" not in old.tensors
    assert old.x[0].numpy().tolist() == [0] and len(old.x) == 5
    d = ds.diff(first, second, as_dict=True)["b"]
    assert d["tensors_renamed"] == {"x": "y"}
    assert d["tensors_created"] == [] and d["tensors_deleted"] == []
    assert d["tensors"]["y"]["rows_added"] == [5, 6] and d["tensors"]["y"]["rows_updated"] == [0]
    ds.gc()
    report = ds.verify()
    assert report.ok, report
    assert tl.load(storage_target.url, creds=storage_target.creds, version=first).x[
        4
    ].numpy().tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_rename_back_and_a_new_tensor_under_the_old_name(storage_target):
    ds = _new(storage_target)
    ds.commit("base")
    ds.rename_tensor("x", "y")
    ds.create_tensor("x", htype="text")  # its chunks share the directory of y's
    ds.x.extend(["a", "b"])
    ds.commit("x is new")
    assert ds.x.numpy(aslist=True) == ["a", "b"] and len(ds.y) == 5
    d = ds.diff(ds.commits[1]["commit"], ds.commit_id, as_dict=True)["b"]
    assert d["tensors_renamed"] == {"x": "y"} and d["tensors_created"] == ["x"]
    ds.delete_tensor("x")
    ds.rename_tensor("y", "x")
    assert ds.x.meta.storage_name is None  # back where its chunks are named
    ds.commit("back")
    ds.gc()
    assert ds.verify().ok and len(ds.x) == 5 and ds.x[1].numpy().tolist() == [0, 1]


def test_rename_group_renames_everything_inside(storage_target):
    ds = _new(storage_target)
    first = ds.commit("base")
    ds.rename_group("meta", "ann")
    assert sorted(ds.groups) == ["ann"] and sorted(ds.ann.groups) == ["sub"]
    assert ds["ann/sub/label"].numpy(aslist=True) == [f"l{i}" for i in range(5)]
    assert ds.ann.boxes[2].numpy()[0, 0] == 2
    ds.ann.sub.rename_tensor("label", "name")  # relative to the group
    assert "sub/name" in ds.ann.tensors
    ds.commit("renamed group")
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert again["ann/sub/name"][4].text() == "l4"
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert old["meta/sub/label"][4].text() == "l4"
    renamed = ds.diff(first, ds.commit_id, as_dict=True)["b"]["tensors_renamed"]
    assert renamed == {"meta/boxes": "ann/boxes", "meta/sub/label": "ann/sub/name"}
    assert ds.verify().ok


def test_rename_errors(storage_target):
    ds = _new(storage_target)
    with pytest.raises(tl.TensorNotFoundError):
        ds.rename_tensor("nope", "z")
    with pytest.raises(tl.DatasetError, match="already exists"):
        ds.rename_tensor("x", "meta")
    with pytest.raises(tl.InvalidNameError, match="stays in its group"):
        ds.rename_tensor("x", "meta/x")
    with pytest.raises(tl.InvalidNameError):
        ds.rename_tensor("x", "bad name!")
    with pytest.raises(tl.InvalidNameError, match="dataset attribute"):
        ds.rename_tensor("x", "commit")  # ds.commit would hide it, as Deep Lake refuses
    with pytest.raises(tl.InvalidNameError, match="dataset attribute"):
        ds.rename_group("meta", "tensors")
    with pytest.raises(tl.TensorNotFoundError):
        ds.rename_group("nope", "z")
    with pytest.raises(tl.DatasetError, match="already exists"):
        ds.rename_group("meta", "x")
    with pytest.raises(tl.DatasetError, match="view"):
        ds[0:2].rename_tensor("x", "z")
    ds.read_only = True
    with pytest.raises(tl.ReadOnlyError):
        ds.rename_tensor("x", "z")
    assert "x" in ds.tensors


def test_rename_a_link_tensor_renames_its_companions(storage_target, tmp_path):
    from tests.api.helpers import jpeg_bytes

    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(12, 16))
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    ds.create_tensor("pics", htype="link[image]", sample_compression="jpeg")
    ds.pics.append(tl.link(str(path)))
    ds.commit("one link")
    ds.rename_tensor("pics", "photos")
    hidden = [
        n for n in tl.load(storage_target.url, creds=storage_target.creds)._tensor_names(True)
    ]
    assert not any("pics" in n for n in hidden), hidden
    assert ds.photos.shape == (1, 12, 16, 3) and ds.photos[0].numpy().shape == (12, 16, 3)
    assert ds.photos.links() == [tl.link(str(path)).url]
    ds.commit("renamed")
    assert ds.verify().ok


def test_delete_group_is_a_versioned_change(storage_target):
    ds = _new(storage_target)
    first = ds.commit("base")
    ds.delete_group("meta")
    assert list(ds.tensors) == ["x"] and ds.groups == {}
    with pytest.raises(tl.TensorNotFoundError):
        ds.delete_group("meta")
    second = ds.commit("no meta")
    d = ds.diff(first, second, as_dict=True)["b"]
    assert sorted(d["tensors_deleted"]) == ["meta/boxes", "meta/sub/label"]
    ds.gc()
    old = tl.load(storage_target.url, creds=storage_target.creds, version=first)
    assert old["meta/sub/label"].numpy(aslist=True)[0] == "l0"  # older commits keep it
    ds.create_group("meta")  # the name is free again
    ds.create_tensor("meta/new")
    assert list(ds.meta.tensors) == ["new"]
    assert ds.verify().ok
