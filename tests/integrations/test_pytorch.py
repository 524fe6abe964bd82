"""``ds.pytorch()``: exact epochs over workers and ranks, determinism, resume, Deep Lake's
arguments, every storage."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.errors import DatasetError
from tests.integrations import data

torch = pytest.importorskip("torch")

FLAT = ["labels", "vec", "text"]  # tensors whose rows default_collate stacks


@pytest.fixture(scope="module")
def local_ds(tmp_path_factory):
    return data.make(str(tmp_path_factory.mktemp("loader") / "ds"))


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):
    return data.make(str(tmp_path_factory.mktemp("loader") / "small"), n=11, images=False)


def _indices(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch["index"]]


@pytest.mark.parametrize(
    "workers,batch_size,drop_last,shuffle,world_size",
    list(itertools.product([0, 1, 2], [1, 4], [False, True], [False, True], [1, 2, 3])),
)
def test_every_row_exactly_once_across_workers_and_ranks(
    small_ds, workers, batch_size, drop_last, shuffle, world_size
):
    n = len(small_ds)
    seen, per_rank = [], []
    for rank in range(world_size):
        loader = small_ds.pytorch(
            tensors=FLAT,
            num_workers=workers,
            batch_size=batch_size,
            drop_last=drop_last,
            shuffle=shuffle,
            seed=4,
            rank=rank,
            world_size=world_size,
        )
        got = _indices(loader)
        per_rank.append(len(got))
        seen += got
    assert len(seen) == len(set(seen))
    if drop_last:
        kept = n // (batch_size * world_size) * batch_size * world_size
        assert len(seen) == kept and len(set(per_rank)) == 1
    else:
        assert sorted(seen) == list(range(n))


def test_the_order_is_the_same_for_any_number_of_workers(small_ds):
    orders = [
        _indices(small_ds.pytorch(tensors=FLAT, num_workers=w, batch_size=3, shuffle=True, seed=9))
        for w in (0, 1, 2)
    ]
    assert orders[0] == orders[1] == orders[2]
    assert orders[0] != sorted(orders[0])
    assert orders[0] == [
        int(i) for b in small_ds.batches(3, shuffle=True, seed=9) for i in b["index"]
    ]


def test_set_epoch_reshuffles_and_each_pass_moves_on(small_ds):
    loader = small_ds.pytorch(tensors=FLAT, num_workers=0, batch_size=2, shuffle=True, seed=1)
    first = _indices(loader)
    second = _indices(loader)  # a full pass moved the loader to epoch 1
    assert loader.epoch == 2 and first != second
    loader.set_epoch(0)
    assert _indices(loader) == first


def test_batches_hold_the_rows_their_index_names(local_ds):
    loader = local_ds.pytorch(num_workers=2, batch_size=4, collate_fn=list, shuffle=True, seed=3)
    count = 0
    for batch in loader:
        assert isinstance(batch, list)
        for sample in batch:
            i = sample["index"]
            np.testing.assert_array_equal(sample["images"], local_ds.images[i].numpy())
            assert isinstance(sample["images"], np.ndarray)
            assert sample["text"] == f"row {i}"
            count += 1
    assert count == len(local_ds)


def test_default_collate_gives_stacked_tensors(local_ds):
    batch = next(
        iter(local_ds.pytorch(tensors=["images", "labels", "vec"], batch_size=5, num_workers=2))
    )
    assert isinstance(batch["images"], torch.Tensor) and batch["images"].shape == (5, 16, 20, 3)
    assert batch["images"].dtype == torch.uint8
    assert batch["labels"].reshape(-1).tolist() == [0, 1, 2, 0, 1]
    assert batch["index"].tolist() == [0, 1, 2, 3, 4]
    expected = torch.utils.data.default_collate(
        [{"images": local_ds.images[i].numpy(), "vec": local_ds.vec[i].numpy()} for i in range(5)]
    )
    assert torch.equal(batch["images"], expected["images"])
    assert torch.equal(batch["vec"], expected["vec"])


def test_transforms_callable_dict_and_kwargs(local_ds):
    def scale(sample, factor):
        return {"vec": sample["vec"] * factor, "index": sample["index"]}

    loader = local_ds.pytorch(
        tensors=["vec"],
        transform=scale,
        transform_kwargs={"factor": 10},
        batch_size=2,
        num_workers=1,
    )
    batch = next(iter(loader))
    assert batch["vec"].tolist() == [[0, 0, 0], [10, 10, 10]]
    per_tensor = local_ds.pytorch(
        tensors=["vec", "labels"], transform={"vec": lambda v: v + 1, "labels": None}, batch_size=2
    )
    batch = next(iter(per_tensor))
    assert batch["vec"].tolist() == [[1, 1, 1], [2, 2, 2]]
    assert batch["labels"].reshape(-1).tolist() == [0, 1]
    with pytest.raises(DatasetError, match="callable"):
        local_ds.pytorch(transform=3)


def test_decode_methods_and_ragged_rows(local_ds):
    loader = local_ds.pytorch(
        tensors=["images", "boxes"],
        decode_method={"images": "pil"},
        batch_size=3,
        collate_fn=lambda samples: samples,
        num_workers=0,
    )
    batch = next(iter(loader))
    assert batch[0]["images"].size == (20, 16)
    assert [s["boxes"].shape for s in batch] == [(0, 4), (1, 4), (2, 4)]
    with pytest.raises(RuntimeError, match=r"stack|size"):  # ragged rows need a collate_fn
        next(iter(local_ds.pytorch(tensors=["boxes"], batch_size=3, num_workers=0)))


def test_pad_tensors(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("a", dtype="int64")
    ds.create_tensor("b", dtype="int64")
    ds.a.extend([np.array([i]) for i in range(4)])
    ds.b.extend([np.array([i]) for i in range(2)])
    ds.commit()
    loader = ds.pytorch(pad_tensors=True, batch_size=4, collate_fn=list, num_workers=1)
    batch = next(iter(loader))
    assert [s["index"] for s in batch] == [0, 1, 2, 3]
    assert [s["b"].shape for s in batch] == [(1,), (1,), (0,), (0,)]


def test_every_storage_and_linked_images(storage_target, tmp_path):
    ds = data.make(storage_target.url, storage_target.creds, n=9)
    assert sorted(
        _indices(ds.pytorch(num_workers=2, batch_size=2, tensors=["images", "labels"]))
    ) == list(range(9))
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(ds.images[i].tobytes())
    linked = tl.empty(tmp_path / "linked")
    linked.create_tensor("images", htype="link[image]", sample_compression="jpeg")
    linked.images.extend([tl.link(str(tmp_path / f"{i}.jpg")) for i in range(3)])
    linked.commit()
    batch = next(iter(linked.pytorch(batch_size=3, num_workers=2)))
    for k in range(3):
        np.testing.assert_array_equal(batch["images"][k].numpy(), ds.images[k].numpy())


def test_a_view_a_past_commit_and_read_only(local_ds):
    assert _indices(local_ds[[7, 3, 5]].pytorch(tensors=FLAT, batch_size=2, num_workers=2)) == [
        7,
        3,
        5,
    ]
    old = tl.load(local_ds.path, read_only=True, version=local_ds.commit_id)
    assert _indices(old[2:6].pytorch(tensors=FLAT, batch_size=3, num_workers=1)) == [2, 3, 4, 5]


def test_unstored_changes_need_a_flush_for_workers(tmp_path):
    ds = data.make(str(tmp_path / "ds"), n=4, images=False)
    with ds:
        ds.labels.append(1)  # held in memory until the block ends: other processes miss it
        with pytest.raises(DatasetError, match="flush"):
            ds.pytorch(num_workers=1)
        loader = ds.pytorch(tensors=["labels"], num_workers=0, pad_tensors=True, batch_size=5)
        batch = next(iter(loader))  # in this process the new row is there
        assert batch["index"].tolist() == [0, 1, 2, 3, 4]
        assert batch["labels"].reshape(-1).tolist() == [0, 1, 2, 0, 1]
    loader = ds.pytorch(tensors=["labels"], num_workers=1, pad_tensors=True)
    assert len(_indices(loader)) == 5


def test_a_dataset_in_memory_is_read_by_forked_workers():
    ds = data.make("mem://loader-test", n=7, images=False)
    assert sorted(_indices(ds.pytorch(tensors=FLAT, num_workers=2, batch_size=2))) == list(range(7))
    with pytest.raises(Exception, match="fork"):
        list(ds.pytorch(num_workers=1, multiprocessing_context="spawn"))


def test_unknown_arguments_are_named(local_ds):
    with pytest.raises(TypeError, match="frobnicate"):
        local_ds.pytorch(frobnicate=1)
    local_ds.pytorch(use_local_cache=True, progressbar=False)  # Deep Lake's, accepted


def _kill_at_row_5(sample):
    if sample["index"] == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return sample


def test_a_killed_worker_raises_pytorchs_error(small_ds):
    loader = small_ds.pytorch(
        tensors=["labels"], transform=_kill_at_row_5, batch_size=2, num_workers=2, timeout=60
    )
    with pytest.raises(RuntimeError, match="DataLoader worker"):
        _indices(loader)


_RESUME = textwrap.dedent(
    """
    import json, sys
    import tensorlake as tl
    path, workers, state = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    loader = tl.load(path, read_only=True).pytorch(
        tensors=["labels"], batch_size=3, shuffle=True, seed=11, num_workers=workers
    )
    loader.load_state_dict(state)
    print(json.dumps([int(i) for b in loader for i in b["index"]]))
    """
)


@pytest.mark.parametrize("workers_before,workers_after", [(0, 2), (2, 1)])
def test_state_dict_resumes_in_a_fresh_process(small_ds, workers_before, workers_after):
    whole = _indices(
        small_ds.pytorch(tensors=["labels"], batch_size=3, shuffle=True, seed=11, num_workers=0)
    )
    loader = small_ds.pytorch(
        tensors=["labels"], batch_size=3, shuffle=True, seed=11, num_workers=workers_before
    )
    it = iter(loader)
    taken = [int(i) for _ in range(2) for i in next(it)["index"]]
    state = loader.state_dict()
    del it
    out = subprocess.run(
        [sys.executable, "-c", _RESUME, small_ds.path, str(workers_after), json.dumps(state)],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.getcwd(),
    )
    rest = json.loads(out.stdout)
    assert taken + rest == whole


def test_ranks_default_from_torch_distributed(small_ds, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        loader = small_ds.pytorch(tensors=FLAT, num_workers=0)
        assert (loader.rank, loader.world_size) == (0, 1)
    finally:
        dist.destroy_process_group()


def test_every_rank_resumes_its_own_rest_and_a_new_world_size_the_whole_rest(small_ds):
    def loader(rank, world_size, batch_size=2):
        return small_ds.pytorch(
            tensors=FLAT,
            batch_size=batch_size,
            shuffle=True,
            seed=2,
            num_workers=1,
            rank=rank,
            world_size=world_size,
        )

    states, taken = [], []
    for rank in range(2):  # two ranks, two batches each, as DDP would step them
        first = loader(rank, 2)
        it = iter(first)
        taken += [int(i) for _ in range(2) for i in next(it)["index"]]
        states.append(first.state_dict())
        del it
    for rank in range(2):  # each rank continues with exactly its own batches
        again = loader(rank, 2)
        again.load_state_dict(states[rank])
        whole = _indices(loader(rank, 2))
        assert _indices(again) == whole[4:]
    rest = []  # or three ranks of another batch size share out what is left
    for rank in range(3):
        again = loader(rank, 3, batch_size=3)
        again.load_state_dict(states[0])
        rest += _indices(again)
    assert sorted(taken + rest) == list(range(len(small_ds)))


def test_a_loader_never_takes_the_writer_lock(tmp_path):
    from tensorlake.storage import from_url

    ds = data.make(str(tmp_path / "ds"), n=6, images=False)
    ds.close()  # the writer's lock released
    storage = from_url(str(tmp_path / "ds"))
    assert not storage.exists("lock")
    writable = tl.load(tmp_path / "ds")  # not read-only, yet only read
    assert len(_indices(writable.pytorch(tensors=FLAT, num_workers=2, batch_size=2))) == 6
    assert len(_indices(writable.pytorch(tensors=FLAT, num_workers=0, batch_size=2))) == 6
    assert not storage.exists("lock")
