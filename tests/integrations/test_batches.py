"""``ds.batches()``: the torch-free iterator, on every storage."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.errors import DatasetError, TensorNotFoundError
from tests.integrations import data


@pytest.fixture
def ds(storage_target):
    return data.make(storage_target.url, storage_target.creds)


def _indices(batches) -> list[int]:
    return [int(i) for b in batches for i in b["index"]]


def test_every_row_once_with_its_values(ds):
    seen = []
    for batch in ds.batches(5, shuffle=True, seed=2):
        assert isinstance(batch["images"], np.ndarray) and batch["images"].shape[1:] == (16, 20, 3)
        assert isinstance(batch["boxes"], list)  # ragged rows stay a list
        for k in range(len(batch["index"])):
            data.check_row(batch, k, ds)
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(data.N))
    assert seen != sorted(seen)


def test_a_view_reads_its_rows_in_view_order(ds):
    view = ds[[9, 2, 17, 4]]
    assert _indices(view.batches(3)) == [9, 2, 17, 4]
    assert _indices(ds[5:12].batches(4, drop_last=True)) == [5, 6, 7, 8]
    with pytest.raises(DatasetError, match="one row"):
        ds[3].batches()


def test_resume_continues_after_the_last_batch_yielded(ds):
    whole = _indices(ds.batches(4, shuffle=True, seed=5))
    first = ds.batches(4, shuffle=True, seed=5)
    it = iter(first)
    taken = [int(i) for _ in range(3) for i in next(it)["index"]]
    state = first.state_dict()
    again = tl.load(ds.path, read_only=True, creds=ds._core.creds).batches(4, shuffle=True, seed=5)
    again.load_state_dict(state)
    assert taken + _indices(again) == whole


def test_tensors_and_decode_methods(ds):
    batch = next(
        iter(ds.batches(2, tensors=["images", "labels"], decode_method={"images": "tobytes"}))
    )
    assert set(batch) == {"images", "labels", "index"}
    assert batch["images"][0] == ds.images[0].tobytes()
    pil = next(iter(ds.batches(2, tensors=["images"], decode_method={"images": "pil"})))
    assert pil["images"][0].size == (20, 16)
    labels = next(iter(ds.batches(3, tensors=["labels"], decode_method={"labels": "data"})))
    assert labels["labels"][1]["text"] == ["dog"]
    with pytest.raises(DatasetError, match="pil"):
        ds.batches(2, decode_method={"labels": "pil"})
    with pytest.raises(DatasetError, match="unknown"):
        ds.batches(2, decode_method={"images": "jpeg"})
    with pytest.raises(TensorNotFoundError):
        ds.batches(2, tensors=["nope"])


def test_a_past_commit_and_a_read_only_dataset(storage_target):
    ds = data.make(storage_target.url, storage_target.creds, n=6)
    first = ds.commit_id
    ds.labels[0] = 2
    ds.append({"labels": 1, "boxes": np.zeros((0, 4), np.float32), "text": "x",
               "vec": np.zeros(3, np.float32), "images": ds.images[0].numpy()})  # fmt: skip
    ds.commit("more")
    old = tl.load(storage_target.url, creds=storage_target.creds, read_only=True, version=first)
    batch = next(iter(old.batches(10, tensors=["labels"])))
    assert batch["labels"].reshape(-1).tolist() == [0, 1, 2, 0, 1, 2]
    assert (
        len(
            _indices(
                tl.load(storage_target.url, creds=storage_target.creds, read_only=True).batches(4)
            )
        )
        == 7
    )


def test_pad_tensors_gives_shorter_tensors_empty_rows(tmp_path):
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("a", dtype="int64")
    ds.create_tensor("b", dtype="int64")
    ds.a.extend([np.array([i]) for i in range(5)])
    ds.b.extend([np.array([i]) for i in range(3)])
    assert _indices(ds.batches(10)) == [0, 1, 2]
    padded = next(iter(ds.batches(10, pad_tensors=True)))
    assert padded["index"].tolist() == [0, 1, 2, 3, 4]
    assert [v.shape for v in padded["b"]] == [(1,), (1,), (1,), (0,), (0,)]


def test_bad_arguments_say_what_is_expected(ds):
    for kwargs, word in [({"batch_size": 0}, "batch_size"), ({"rank": 2, "world_size": 2}, "rank"),
                         ({"seed": -1}, "seed"), ({"buffer_size": -5}, "buffer_size")]:  # fmt: skip
        with pytest.raises(ValueError, match=word):
            ds.batches(**kwargs)


_NO_TORCH = """
import sys
sys.modules["torch"] = None  # as if torch were not installed
import tensorlake as tl
ds = tl.load(sys.argv[1], read_only=True)
print(sum(len(b["index"]) for b in ds.batches(4, tensors=["labels"])))
try:
    ds.pytorch()
except ImportError as err:
    print(err)
"""


def test_batches_need_no_torch_and_pytorch_names_the_extra(tmp_path):
    import subprocess
    import sys

    data.make(str(tmp_path / "ds"), n=5, images=False)
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "5"
    assert "pip install 'tensorlake[torch]'" in out[1]
