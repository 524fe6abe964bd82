"""Deep Lake parity: what ds.commits, ds.log() and ds.branches list. A fresh dataset lists
no commit until the first commit() (its root commit is not listed); branches are listed
in the order they were created, main first; on memory, local and S3."""

from __future__ import annotations

import numpy as np

import tensorlake as tl
from tensorlake.engine.format import keys, records


def _open(target):
    return tl.empty(target.url, creds=target.creds, overwrite=True)


def _reopen(target, **kwargs):
    return tl.load(target.url, creds=target.creds, **kwargs)


def test_a_fresh_dataset_lists_no_commits_until_the_first(storage_target, capsys):
    ds = _open(storage_target)
    root = ds.commit_id
    assert ds.commits == [] and len(root) == 40  # commit_id names the root all the same
    ds.log()
    out = capsys.readouterr().out
    assert "Commit :" not in out and "Current branch: main" in out
    ds.create_tensor("x")
    ds.x.extend(np.arange(3))
    first = ds.commit("three")
    assert [c["commit"] for c in ds.commits] == [first]
    ds.x.append(3)
    second = ds.commit("four")
    listed = _reopen(storage_target).commits
    assert [(c["commit"], c["message"]) for c in listed] == [(second, "four"), (first, "three")]
    ds.log()
    assert capsys.readouterr().out.count("Commit :") == 2
    # the root is still a version: checked out, it is empty and lists nothing
    past = _reopen(storage_target, version=root, read_only=True)
    assert past.commits == [] and past.max_len == 0


def test_branches_in_creation_order_main_first(storage_target):
    ds = _open(storage_target)
    ds.create_tensor("x")
    ds.x.append(1)
    ds.commit("one")
    for name in ("zeta", "alpha", "mid"):
        ds.checkout(name, create=True)
        ds.checkout("main")
    assert ds.branches == ["main", "zeta", "alpha", "mid"]
    assert _reopen(storage_target).branches == ["main", "zeta", "alpha", "mid"]
    ds.delete_branch("zeta")
    ds.checkout("zeta", create=True)  # created again: now the newest
    assert _reopen(storage_target).branches == ["main", "alpha", "mid", "zeta"]
    storage = storage_target.open()
    assert not storage.exists("refs/created/main")  # main needs no record: always first
    assert sorted(storage.list("refs/created/")) == [
        "refs/created/alpha",
        "refs/created/mid",
        "refs/created/zeta",
    ]


def test_branches_without_a_creation_record_follow_main_by_name(storage_target):
    """Datasets written before creation times were recorded (or damaged records)."""
    ds = _open(storage_target)
    ds.checkout("old-b", create=True)
    ds.checkout("new", create=True)
    storage = storage_target.open()
    head = records.read_head(storage, "main")
    records.write_head(storage, "old-a", head)  # a branch with no creation record
    storage.delete("refs/created/old-b")
    assert _reopen(storage_target).branches == ["main", "old-a", "old-b", "new"]
    storage.put("refs/created/new", b"not a number")
    assert _reopen(storage_target).branches == ["main", "new", "old-a", "old-b"]
    ds.delete_branch("old-a")
    assert not storage.exists(keys.ref_key("old-a"))
