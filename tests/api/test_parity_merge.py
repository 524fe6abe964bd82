"""Deep Lake parity, merge: ds.merge(target_id, conflict_resolution, delete_removed_tensors,
force) with the "ours" / "theirs" / None (MergeConflictError) policies."""

from __future__ import annotations

import pytest

import tensorlake as tl


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.extend({"x": list(range(5)), "labels": ["a", "b", "a", "b", "a"]})
    ds.commit("five rows")
    return ds


def _xs(ds) -> list[int]:
    return ds.x.numpy().reshape(-1).tolist()


def test_merge_brings_appends_updates_and_new_tensors(storage_target):
    ds = _new(storage_target)
    ds.checkout("dev", create=True)
    ds.x[1] = 100
    ds.extend({"x": [5, 6], "labels": ["c", "a"]})  # a new class name on dev
    ds.create_tensor("note", htype="text")
    ds.note.extend(["n0", "n1"])
    ds.commit("dev work")
    ds.checkout("main")
    ds.x[3] = 300  # another row: no conflict
    ds.append({"x": 7, "labels": "b"})
    ds.commit("main work")
    ds.merge("dev")
    assert _xs(ds) == [0, 100, 2, 300, 4, 7, 5, 6]
    assert ds.labels.info.class_names == ["a", "b", "c"]
    assert [t[0] for t in ds.labels.data()["text"]][-3:] == ["b", "c", "a"]
    assert ds.note.numpy(aslist=True) == ["n0", "n1"]
    assert ds.commits[0]["message"] == "Merge dev into main" and not ds.has_head_changes
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert _xs(again) == _xs(ds)
    assert ds.verify().ok


def test_conflicts_raise_or_follow_the_policy(storage_target):
    ds = _new(storage_target)
    ds.checkout("dev", create=True)
    ds.x[2] = 20
    ds.x[4] = 40
    ds.commit("dev")
    ds.checkout("main")
    ds.x[2] = -2
    ds.commit("main")
    head = ds.commit_id
    with pytest.raises(tl.MergeConflictError) as info:
        ds.merge("dev")
    assert info.value.conflicts == {"x": [2]} and "conflict_resolution" in str(info.value)
    assert ds.commit_id == head and _xs(ds) == [0, 1, -2, 3, 4]  # nothing changed
    ds.merge("dev", conflict_resolution="ours")
    assert _xs(ds) == [0, 1, -2, 3, 40]
    ds2 = _new(storage_target)  # the same conflict again, taking the target's value
    ds2.checkout("dev", create=True)
    ds2.x[2] = 20
    ds2.commit("dev")
    ds2.checkout("main")
    ds2.x[2] = -2
    ds2.commit("main")
    ds2.merge("dev", conflict_resolution="theirs")
    assert _xs(ds2) == [0, 1, 20, 3, 4]
    with pytest.raises(ValueError, match="conflict_resolution"):
        ds2.merge("dev", conflict_resolution="mine")


def test_deleted_and_renamed_tensors_and_popped_rows(storage_target):
    ds = _new(storage_target)
    ds.checkout("dev", create=True)
    ds.delete_tensor("labels")
    ds.x.append(9)
    ds.commit("drop labels")
    ds.checkout("main")
    ds.merge("dev")  # keeps labels by default
    assert "labels" in ds.tensors and _xs(ds)[-1] == 9
    ds.checkout("dev")
    ds.create_tensor("gone", htype="text")
    ds.commit("another")
    ds.checkout("main")
    ds.merge("dev", delete_removed_tensors=True)
    assert "labels" not in ds.tensors and "gone" in ds.tensors
    assert ds.merge("dev") is None  # nothing new on dev
    ds.checkout("ren", create=True)
    ds.rename_tensor("x", "y")
    ds.commit("rename")
    ds.checkout("main")
    with pytest.raises(tl.MergeConflictError, match="renamed"):
        ds.merge("ren")
    ds.merge("ren", force=True)
    assert "y" in ds.tensors and "x" in ds.tensors and _xs(ds) == ds.y.numpy().reshape(-1).tolist()
    ds.checkout("popper", create=True)
    ds.pop(0)
    ds.commit("pop")
    ds.checkout("main")
    with pytest.raises(tl.VersionError, match="removed rows"):
        ds.merge("popper")
