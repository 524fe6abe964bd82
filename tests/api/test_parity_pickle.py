"""Deep Lake parity, pickling: a pickled dataset reopens at the same path, version,
read_only, view and group, so datasets go to DataLoader workers and process pools;
memory datasets refuse with a clear error."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import tensorlake as tl


@pytest.fixture
def stored(storage_target):
    if storage_target.kind == "memory":
        pytest.skip("memory datasets cannot be pickled (tested below)")
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("g/label", htype="text")
        ds.extend({"x": list(range(10)), "g/label": [f"r{i}" for i in range(10)]})
    ds.commit("ten")
    return storage_target, ds


def test_pickle_reopens_the_same_path_branch_and_mode(stored):
    target, ds = stored
    ds.checkout("dev", create=True)
    ds.x.append(10)
    ds.g.label.append("r10")  # flushed when pickled
    copy = pickle.loads(pickle.dumps(ds))
    assert (copy.path, copy.branch, copy.read_only) == (ds.path, "dev", False)
    assert copy.x.numpy().reshape(-1).tolist() == list(range(11))
    ro = tl.load(target.url, creds=target.creds, read_only=True)
    again = pickle.loads(pickle.dumps(ro))
    assert again.read_only and again.branch == "main" and len(again) == 10
    with pytest.raises(tl.ReadOnlyError):
        again.x.append(1)


def test_pickle_keeps_views_groups_tensors_and_past_commits(stored):
    _, ds = stored
    first = ds.commit_id
    ds.x[0] = 100
    ds.commit("changed row 0")
    view = pickle.loads(pickle.dumps(ds[[7, 2, 5]]))
    assert view.x.numpy().reshape(-1).tolist() == [7, 2, 5] and view.is_view
    group = pickle.loads(pickle.dumps(ds.g[1:3]))
    assert group.group_index == "g" and group.label.numpy(aslist=True) == ["r1", "r2"]
    tensor = pickle.loads(pickle.dumps(ds.x[4:6]))
    assert isinstance(tensor, tl.Tensor) and tensor.numpy().reshape(-1).tolist() == [4, 5]
    ds.checkout(first)
    past = pickle.loads(pickle.dumps(ds))
    assert past.commit_id == first and past.x[0].numpy().reshape(-1).tolist() == [0]
    with pytest.raises(tl.PastVersionError):
        past.x.append(1)


def test_memory_datasets_refuse_to_be_pickled():
    ds = tl.empty("mem://no-pickle", overwrite=True)
    ds.create_tensor("x")
    with pytest.raises(TypeError, match="memory") as info:
        pickle.dumps(ds)
    assert isinstance(info.value, tl.NotPicklableError)
    assert "copy" in str(info.value)
    with pytest.raises(tl.NotPicklableError):
        pickle.dumps(ds.x)


def _row_sum(args: tuple[tl.Dataset, int]) -> int:
    ds, i = args
    return int(ds.x[i].numpy().sum())


def test_a_process_pool_reads_a_pickled_dataset(stored):
    _, ds = stored
    context = multiprocessing.get_context("spawn")  # nothing inherited: only the pickle
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        got = list(pool.map(_row_sum, [(ds, i) for i in range(10)]))
    assert got == list(range(10))


class _Rows:
    """What Deep Lake users hand to a DataLoader: a dataset inside a map-style dataset."""

    def __init__(self, ds: tl.Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ds.x[i].numpy()


def test_torch_dataloader_workers_get_the_dataset(stored):
    torch = pytest.importorskip("torch")
    _, ds = stored
    loader = torch.utils.data.DataLoader(
        _Rows(ds[2:8]), batch_size=3, num_workers=1, multiprocessing_context="spawn"
    )
    got = [b.reshape(-1).tolist() for b in loader]
    assert got == [[2, 3, 4], [5, 6, 7]]
