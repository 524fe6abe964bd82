"""Commits, branches, checkout, diff, reset and gc, on memory, local and S3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl


def _open(target, **kwargs):
    return tl.load(target.url, creds=target.creds, **kwargs)


def _new(target):
    ds = tl.empty(target.url, creds=target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("label", htype="text")
    return ds


def _append(ds, values):
    with ds:
        ds.extend({"x": list(values), "label": [f"r{v}" for v in values]})


def test_commit_log_and_checkout_of_past_commits(storage_target):
    ds = _new(storage_target)
    _append(ds, range(5))
    first = ds.commit("first five")
    assert len(first) == 40 and ds.commit_id == first and not ds.has_head_changes
    _append(ds, range(5, 8))
    ds.x[0] = 100
    assert ds.has_head_changes
    second = ds.commit("three more, row 0 fixed")
    commits = ds.commits
    assert [c["commit"] for c in commits[:2]] == [second, first]
    assert [c["message"] for c in commits[:2]] == ["three more, row 0 fixed", "first five"]
    assert all(c["author"] and c["time"] and c["branch"] == "main" for c in commits)

    ds.checkout(first)
    assert (
        ds.commit_id == first and len(ds) == 5 and ds.x.numpy().ravel().tolist() == [0, 1, 2, 3, 4]
    )
    with pytest.raises(tl.ReadOnlyError, match="past version"):
        ds.x.append(9)
    ds.checkout("main")
    assert ds.x.numpy().ravel().tolist() == [100, 1, 2, 3, 4, 5, 6, 7]

    # reading a past version without checkout, by argument and by path@commit
    old = _open(storage_target, read_only=True, version=first)
    assert old.x.numpy().ravel().tolist() == [0, 1, 2, 3, 4]
    if storage_target.kind != "s3":  # s3 paths carry the version the same way
        short = tl.load(f"{storage_target.url}@{first[:10]}", creds=storage_target.creds)
        assert short.commit_id == first and short.read_only is False
        with pytest.raises(tl.ReadOnlyError):
            short.x.append(1)
    reopened = _open(storage_target)
    assert reopened.commit_id == second and len(reopened) == 8


def test_log_prints_commits(capsys):
    ds = _new(type("T", (), {"url": "mem://log", "creds": None})())
    _append(ds, range(3))
    cid = ds.commit("three rows")
    ds.x.append(3)
    ds.log()
    out = capsys.readouterr().out
    assert cid in out and "three rows" in out and "uncommitted changes" in out


def test_a_commit_that_fails_to_store_changes_nothing(storage_target, monkeypatch):
    """The branch pointer is the commit point: when its put fails the dataset is still
    at the previous commit with its changes pending, and a retry commits them."""
    from tensorlake.engine.format import records

    ds = _new(storage_target)
    _append(ds, range(3))
    base = ds.commit("three")
    _append(ds, range(3, 5))
    real_write_head = records.write_head

    def failing_write_head(storage, branch, commit_id):
        raise tl.StorageError("the store is down (injected)")

    monkeypatch.setattr(records, "write_head", failing_write_head)
    with pytest.raises(tl.StorageError, match="injected"):
        ds.commit("five")
    assert ds.commit_id == base and ds.has_head_changes
    assert [c["commit"] for c in ds.commits] == [c["commit"] for c in _open(storage_target).commits]
    monkeypatch.setattr(records, "write_head", real_write_head)
    again = ds.commit("five")
    reopened = _open(storage_target)
    assert reopened.commit_id == again and reopened.commits[1]["commit"] == base
    assert reopened.x.numpy().ravel().tolist() == list(range(5)) and not reopened.has_head_changes


def test_a_commit_is_made_once_its_branch_pointer_is_stored(storage_target, monkeypatch):
    """Deleting the staging object comes after the commit point: when that fails the
    commit stands (readers ignore the leftover, gc removes it)."""
    from tensorlake.engine.format import records

    ds = _new(storage_target)
    _append(ds, range(3))

    def failing_delete(storage, branch):
        raise tl.StorageError("the store is down (injected)")

    monkeypatch.setattr(records, "delete_staging", failing_delete)
    made = ds.commit("three")
    reopened = _open(storage_target)
    assert ds.commit_id == made == reopened.commit_id and not reopened.has_head_changes
    assert reopened.x.numpy().ravel().tolist() == [0, 1, 2]
    assert reopened.gc()["staging"] == 1


def test_empty_commit_needs_allow_empty():
    ds = _new(type("T", (), {"url": "mem://empty-commit", "creds": None})())
    ds.commit("schema")
    with pytest.raises(tl.VersionError, match="allow_empty"):
        ds.commit("nothing")
    ds.commit("marker", allow_empty=True)
    assert ds.commits[0]["message"] == "marker"


def test_branches_diverge_and_share_history(storage_target):
    ds = _new(storage_target)
    _append(ds, range(4))
    base = ds.commit("base")
    ds.checkout("relabel", create=True)
    assert ds.branch == "relabel" and ds.branches == ["main", "relabel"]
    ds.label[1] = "fixed"
    _append(ds, [40])
    on_branch = ds.commit("relabel row 1")
    ds.checkout("main")
    assert ds.label.text() == ["r0", "r1", "r2", "r3"]
    _append(ds, [50, 51])
    ds.commit("main grows")

    d = ds.diff("relabel", "main", as_dict=True)
    assert d["base"] == base
    assert d["a"]["tensors"]["label"]["rows_updated"] == [1]
    assert d["a"]["tensors"]["x"]["rows_added"] == [4, 5]
    assert d["b"]["tensors"]["x"]["rows_added"] == [4, 6]
    assert d["b"]["tensors"]["x"]["rows_updated"] == []

    ds.checkout("relabel")
    assert ds.commit_id == on_branch and ds.label.text()[:2] == ["r0", "fixed"]
    ds.checkout("main")
    ds.delete_branch("relabel")
    assert ds.branches == ["main"]
    with pytest.raises(tl.VersionError, match="No branch or commit"):
        ds.checkout("relabel")
    with pytest.raises(tl.VersionError, match="checked out"):
        ds.delete_branch("main")


def test_checkout_create_commits_pending_changes_first():
    ds = _new(type("T", (), {"url": "mem://co-create", "creds": None})())
    _append(ds, range(3))
    ds.checkout("exp", create=True)
    assert ds.commits[0]["message"].startswith("Auto-commit before checkout")
    ds.checkout("main")
    assert len(ds) == 3 and not ds.has_head_changes
    with pytest.raises(tl.VersionError, match="already exists"):
        ds.checkout("exp", create=True)
    with pytest.raises(tl.VersionError, match="Invalid branch name"):
        ds.checkout("a/b", create=True)


def test_diff_of_uncommitted_changes_and_tensor_lifecycle():
    ds = _new(type("T", (), {"url": "mem://diff", "creds": None})())
    _append(ds, range(6))
    ds.commit("six")
    ds.x[2] = -1
    ds.x[4] = -1
    ds.info["source"] = "test"
    ds.create_tensor("new", dtype="int32")
    ds.delete_tensor("label")
    d = ds.diff(as_dict=True)
    assert d["a"]["tensors"] == {} and not d["a"]["info_updated"]
    b = d["b"]
    assert b["tensors"]["x"]["rows_updated"] == [2, 4] and b["tensors"]["x"]["rows_added"] is None
    assert b["tensors_created"] == ["new"] and b["tensors_deleted"] == ["label"]
    assert b["info_updated"] is True
    ds.commit("edits")
    assert ds.diff(as_dict=True)["b"]["tensors"] == {}


def test_diff_prints(capsys):
    ds = _new(type("T", (), {"url": "mem://diff-print", "creds": None})())
    _append(ds, range(3))
    ds.diff()
    out = capsys.readouterr().out
    assert "tensor 'x': created; 3 rows added (0-2)" in out


def test_reset_drops_uncommitted_changes_and_their_chunks(storage_target):
    ds = _new(storage_target)
    _append(ds, range(10))
    ds.commit("ten")
    stored_before = sorted(storage_target.open().list(""))
    _append(ds, range(10, 20))
    ds.x[0] = 99
    ds.delete_tensor("label")
    ds.reset()
    assert not ds.has_head_changes and list(ds.tensors) == ["x", "label"]
    assert ds.x.numpy().ravel().tolist() == list(range(10))
    assert sorted(storage_target.open().list("")) == stored_before
    reopened = _open(storage_target)
    assert reopened.x.numpy().ravel().tolist() == list(range(10))


def test_load_with_reset_restores_last_commit(storage_target):
    ds = _new(storage_target)
    _append(ds, range(3))
    ds.commit("three")
    _append(ds, range(3, 6))
    again = _open(storage_target, reset=True)
    assert again.x.numpy().ravel().tolist() == [0, 1, 2]
    with pytest.raises(tl.VersionError):
        _open(storage_target, reset=True, read_only=True)


def test_gc_removes_orphans_but_keeps_every_version(storage_target):
    ds = _new(storage_target)
    root = ds.commit_id  # the empty root commit (ds.commits does not list it)
    _append(ds, range(5))
    ds.commit("five")
    storage = storage_target.open()
    orphan = "tensors/x/chunks/00000000deadbeef"
    storage.put(orphan, b"left by a crashed writer")
    storage.put("tables/0123456789abcdef0123456789abcdef", b"orphan segment")
    counts = ds.gc()
    assert counts["chunks"] == 1 and counts["segments"] == 1
    assert not storage.exists(orphan)
    assert ds.x.numpy().ravel().tolist() == list(range(5))
    assert _open(storage_target, version=root, read_only=True).max_len == 0


def test_commits_share_chunks_copy_on_write():
    """Ten one-row commits on a large tensor add ten small chunks, not copies."""
    ds = tl.empty("mem://cow", overwrite=True)
    with ds:
        ds.create_tensor("v", dtype="int64", max_chunk_size=1 << 20)
        ds.v.extend(np.arange(2_000_000))
    ds.commit("two million rows")
    storage = ds._core.storage
    chunk_bytes = lambda: sum(len(storage.get(k)) for k in storage.list("tensors/"))  # noqa: E731
    before = chunk_bytes()
    for i in range(10):
        ds.v.append(i)
        ds.commit(f"one row {i}")
    grown = chunk_bytes() - before
    assert grown < 10 * 200  # ten one-row chunks (header + 8 bytes each), no copies
    assert len(ds.v) == 2_000_010 and ds.v[-1].numpy() == 9


def test_versions_example_runs(tmp_path, capsys):
    import runpy

    example = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "versions.py"))
    example["main"](str(tmp_path / "demo"))
    out = capsys.readouterr().out
    assert "2 rows updated (3, 7)" in out and "After reset: 110 rows" in out


def test_gc_and_reset_remove_the_temp_files_of_writes_killed_midway(tmp_path):
    """A worker killed while writing a chunk (an eval's failure stops its workers so)
    leaves a local temp file: the lock holder's gc, and so reset, delete it."""
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(4))
    ds.commit("four")
    chunks = tmp_path / "ds" / "tensors" / "x" / "chunks"
    half_written = [chunks / ".tl-tmp.0123abcd.1", tmp_path / "ds" / ".tl-tmp.dataset.2"]
    for path in half_written:
        path.write_bytes(b"half a chunk")
    assert ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 2}
    assert not any(p.exists() for p in half_written)
    half_written[0].write_bytes(b"half a chunk")
    tl.load(tmp_path / "ds", reset=True)
    assert not half_written[0].exists()
    assert tl.load(tmp_path / "ds", read_only=True).x.numpy().ravel().tolist() == [0, 1, 2, 3]
