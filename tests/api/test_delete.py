"""``ds.delete()``: every object of the dataset goes, under the writer lock."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format import keys
from tensorlake.engine.lock import LockHolder


def _dataset(url, creds=None):
    ds = tl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.x.extend(np.arange(10))
    ds.commit("ten")
    ds.checkout("dev", create=True)
    ds.x.append(10)
    return ds


def test_delete_removes_every_object_and_the_lock(storage_target):
    ds = _dataset(storage_target.url, storage_target.creds)
    storage = storage_target.open(read_only=True)
    assert len(list(storage.list(""))) > 5 and storage.exists(keys.LOCK_KEY)
    ds.delete()
    assert list(storage.list("")) == []
    assert not tl.exists(storage_target.url, creds=storage_target.creds)
    with pytest.raises(tl.DatasetError, match="was deleted"):
        ds.x.append(11)
    assert list(storage.list("")) == []  # the refused write stored nothing
    again = tl.empty(storage_target.url, creds=storage_target.creds)  # the place is free
    assert len(again.tensors) == 0


def test_rows_not_flushed_are_dropped_not_written_after(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    with ds:
        ds.create_tensor("x")
        ds.x.extend(np.zeros((3, 2)))
        ds.delete()
    assert not tl.exists(tmp_path / "ds")
    assert [p for p in (tmp_path / "ds").rglob("*") if p.is_file()] == []


def test_read_only_datasets_and_views_are_refused(tmp_path):
    _dataset(tmp_path / "ds").close()
    with pytest.raises(tl.ReadOnlyError):
        tl.load(tmp_path / "ds", read_only=True).delete()
    with pytest.raises(tl.DatasetError, match="view"):
        tl.load(tmp_path / "ds")[2:4].delete()
    assert tl.load(tmp_path / "ds").x.numpy().ravel().tolist() == list(range(10))


def test_a_dataset_another_writer_holds_is_refused(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    now = time.time()
    holder = LockHolder("bob", "elsewhere", 4242, secrets.token_hex(16), now, now, 60.0)
    (tmp_path / "ds" / keys.LOCK_KEY).write_bytes(holder.to_bytes())
    with pytest.raises(tl.LockedError, match="bob@elsewhere"):
        ds.delete()
    assert tl.exists(tmp_path / "ds")
