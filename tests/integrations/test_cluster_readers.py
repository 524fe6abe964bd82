"""``ds.to_ray()`` and ``ds.to_dask()``: a cluster reads back exactly what was written.

Against the moto S3 server, with chunks small enough that a tensor spans several, on a
local Ray (2 CPUs) and a Dask ``LocalCluster`` (2 worker processes).
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.api.dataset import core_of

pytestmark = pytest.mark.slow

N = 300


@pytest.fixture(scope="module")
def ray_up():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=200 << 20, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def dask_up():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def stored(s3_bucket, s3_creds):
    """A dataset of fixed-shape and ragged tensors, several chunks each."""
    ds = tl.empty(f"s3://{s3_bucket}/read", creds=s3_creds)
    rng = np.random.default_rng(7)
    with ds:
        ds.create_tensor("emb", dtype="float32", max_chunk_size=4096)
        ds.create_tensor("img", htype="image", sample_compression="png", max_chunk_size=8192)
        ds.create_tensor("label", htype="class_label", class_names=["a", "b", "c"])
        ds.create_tensor("caption", htype="text")
        for i in range(N):
            ds.append(
                {
                    "emb": rng.standard_normal(8).astype(np.float32),
                    "img": rng.integers(0, 255, (3 + i % 4, 5, 3), dtype=np.uint8),
                    "label": i % 3,
                    "caption": f"row {i}",
                }
            )
    ds.commit("rows")
    assert len(core_of(ds).engine("emb").table) > 2  # several stored chunks
    return ds


def test_to_dask_arrays_follow_the_stored_chunks(dask_up, stored):
    arrays = stored.to_dask(["emb", "label"])
    emb = arrays["emb"]
    assert emb.shape == (N, 8) and emb.dtype == np.float32
    assert len(emb.chunks[0]) > 1  # one dask chunk per stored chunk
    assert np.array_equal(emb.compute(), stored.emb.numpy())
    assert np.array_equal(arrays["label"].compute(), stored.label.numpy())
    view = stored[10:250:3]
    assert np.array_equal(view.to_dask("emb")["emb"].compute(), view.emb.numpy())


def test_to_dask_refuses_a_ragged_tensor_as_an_array_and_bags_anything(dask_up, stored):
    with pytest.raises(tl.DatasetError, match="as_bag=True"):
        stored.to_dask(["img"])
    rows = stored[5:50].to_dask(["img", "caption"], as_bag=True).compute()
    assert [r["index"] for r in rows] == list(range(5, 50))
    for r in rows:
        assert np.array_equal(r["img"], stored.img[int(r["index"])].numpy())
        assert str(r["caption"]) == f"row {r['index']}"


def test_to_ray_reads_every_row_exactly_once(ray_up, stored):
    rows = stored.to_ray(["emb", "img", "label"]).take_all()
    assert sorted(int(r["index"]) for r in rows) == list(range(N))
    emb = stored.emb.numpy()
    for r in rows:
        i = int(r["index"])
        assert np.array_equal(r["emb"], emb[i])
        assert np.array_equal(r["img"], stored.img[i].numpy())
        assert r["label"].tolist() == [i % 3]


def test_to_ray_reads_the_version_of_the_view(ray_up, stored):
    head = stored.commit_id
    new_row = {"emb": np.ones(8, np.float32), "img": np.zeros((2, 2, 3), np.uint8)}
    stored.append({**new_row, "label": 0, "caption": "new"})
    stored.commit("one more")
    assert len(stored.to_ray(["emb"]).take_all()) == N + 1
    stored.checkout(head)
    rows = stored[::7].to_ray(["emb"]).take_all()
    assert sorted(int(r["index"]) for r in rows) == list(range(0, N, 7))


def test_a_memory_dataset_is_refused_with_what_to_do(ray_up):
    ds = tl.empty("mem://to-ray")
    ds.create_tensor("x")
    ds.x.append(1)
    with pytest.raises(tl.DatasetError, match="store it on local disk or S3"):
        ds.to_ray()
