"""The shared buffers loader workers decode into: reused once the caller let go of a
batch, never while it holds one; each buffer mapped once by the receiving process."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.integrations.loader import shared_buffers
from tensorlake.integrations.loader.shared_buffers import BufferRef, Receiver, WorkerBuffers
from tests.api.helpers import jpeg_bytes

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not shared_buffers.available(), reason="no memfd_create")

ROWS, SIDE, BATCH = 40, 256, 8  # a batch of 8 256x256 images: 1.5 MiB, in a shared buffer


@pytest.fixture(scope="module")
def images_ds(tmp_path_factory):
    ds = tl.empty(str(tmp_path_factory.mktemp("buffers") / "ds"), overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="jpeg")
        ds.create_tensor("labels", htype="class_label")
        for i in range(ROWS):
            ds.append({"images": tl.Sample(data=jpeg_bytes(SIDE, SIDE, seed=i)), "labels": i})
    ds.commit("rows")
    return ds


def _through(message: shared_buffers.Message) -> shared_buffers.Message:
    """``message`` as the receiving process gets it (pickled and back)."""
    return pickle.loads(pickle.dumps(message))


def _arrays(receiver: Receiver, message: shared_buffers.Message):
    return receiver.open(_through(message), lambda obj, array_of: _leaf(obj, array_of))


def _leaf(obj, array_of):
    return array_of(obj) if isinstance(obj, BufferRef) else obj


def test_a_buffer_is_reused_only_after_the_receiver_let_go_of_its_batch():
    worker, receiver = WorkerBuffers(), Receiver()
    shape, dtype = (4, 512, 512), np.dtype(np.uint8)  # 1 MiB

    first = worker.alloc(shape, dtype)
    first[:] = 1
    message = worker.message({"x": worker.ref(first)})
    assert list(message.new) == [0]  # a new buffer: its descriptor travels once
    held = _arrays(receiver, message)["x"]
    np.testing.assert_array_equal(held, 1)

    second = worker.alloc(shape, dtype)  # the first batch is still held: another buffer
    second[:] = 2
    message = worker.message({"x": worker.ref(second)})
    assert list(message.new) == [1]
    np.testing.assert_array_equal(held, 1)  # untouched
    np.testing.assert_array_equal(_arrays(receiver, message)["x"], 2)  # dropped at once

    view = held[1:3]
    del held
    third = worker.alloc(shape, dtype)
    assert worker.ref(third).buffer == 1  # buffer 0 is still held through a view
    _arrays(receiver, worker.message({}))
    del view
    fourth = worker.alloc(shape, dtype)
    fourth[:] = 4
    message = worker.message({"x": worker.ref(fourth)})
    assert message.new == {} and message.buffers == {0: 1 << 20}  # buffer 0 again, by number
    np.testing.assert_array_equal(_arrays(receiver, message)["x"], 4)


def test_small_arrays_travel_by_value_and_a_failed_batch_frees_its_buffers():
    worker = WorkerBuffers()
    small = worker.alloc((10, 10), np.dtype(np.float32))
    assert worker.ref(small) is None and worker.message({}).buffers == {}

    big = worker.alloc((1 << 20,), np.dtype(np.uint8))
    worker.abandon()  # the transform raised: nothing was sent
    again = worker.alloc((1 << 20,), np.dtype(np.uint8))
    assert worker.ref(again).buffer == worker.ref(big).buffer == 0


def test_buffers_too_small_for_bigger_batches_are_retired_and_unmapped():
    worker, receiver = WorkerBuffers(), Receiver()
    for _ in range(shared_buffers.KEEP_SMALL + 2):  # several small buffers, all held
        worker.alloc((1 << 20,), np.dtype(np.uint8))
    first = worker.message({})
    _arrays(receiver, first)  # referenced by nothing: free at once
    assert len(receiver._maps) == shared_buffers.KEEP_SMALL + 2
    worker.alloc((3 << 20,), np.dtype(np.uint8))  # fits none of them
    message = worker.message({})
    assert len(message.retired) == 2 and len(message.new) == 1
    _arrays(receiver, message)
    assert len(receiver._maps) == shared_buffers.KEEP_SMALL + 1


def test_batches_kept_by_the_caller_are_never_overwritten(images_ds):
    expected = images_ds.images.numpy()
    loader = images_ds.pytorch(batch_size=BATCH, num_workers=2, persistent_workers=True)
    kept = list(loader)  # every batch held at once: each in its own buffer
    assert len(loader._receiver._maps) >= len(kept)
    for batch in kept:
        assert isinstance(batch["images"], torch.Tensor)
        np.testing.assert_array_equal(batch["images"].numpy(), expected[batch["index"].numpy()])
        assert batch["labels"].numpy().ravel().tolist() == batch["index"].tolist()
    listed = list(images_ds.pytorch(batch_size=BATCH, num_workers=2, collate_fn=list))
    for batch in listed:
        for sample in batch:
            np.testing.assert_array_equal(sample["images"], expected[sample["index"]])


def test_batches_let_go_of_free_their_buffers_for_the_next(images_ds):
    expected = images_ds.images.numpy()
    loader = images_ds.pytorch(
        batch_size=BATCH, num_workers=2, persistent_workers=True, shuffle=True, seed=1
    )
    batches = 0
    for epoch in range(3):
        loader.set_epoch(epoch)
        for batch in loader:
            np.testing.assert_array_equal(batch["images"].numpy(), expected[batch["index"]])
            batches += 1
    assert batches == 3 * ROWS // BATCH
    # each worker has at most its prefetched batches in flight (prefetch_factor 2), one
    # being made and one the caller holds
    assert len(loader._receiver._maps) <= 2 * 4 < batches


def test_a_transforms_views_of_decoded_images_arrive_intact(images_ds):
    expected = images_ds.images.numpy()

    def crop(sample):
        image = sample["images"]
        return {"top": image[:10], "strided": image[::2, ::3], "index": sample["index"]}

    loader = images_ds.pytorch(batch_size=BATCH, num_workers=2, transform=crop, collate_fn=list)
    for batch in loader:
        for sample in batch:
            np.testing.assert_array_equal(np.asarray(sample["top"]), expected[sample["index"]][:10])
            np.testing.assert_array_equal(
                np.asarray(sample["strided"]), expected[sample["index"]][::2, ::3]
            )


def test_spawned_workers_hand_their_buffers_over_too(images_ds):
    """Descriptors travel through multiprocessing's resource sharer, which a spawned
    worker (no inherited state) reaches as a forked one does."""
    expected = images_ds.images.numpy()
    loader = images_ds.pytorch(
        batch_size=BATCH, num_workers=2, multiprocessing_context="spawn", persistent_workers=True
    )
    for _ in range(2):
        for batch in loader:
            np.testing.assert_array_equal(batch["images"].numpy(), expected[batch["index"]])
    assert 0 < len(loader._receiver._maps) <= 2 * 4


def test_a_small_dev_shm_is_no_limit(images_ds):
    """Containers get a small /dev/shm (Docker: 64 MB), where torch's shared tensors run
    out ("unable to allocate shared memory"); the workers' buffers are memfds, which the
    size of /dev/shm does not bound. Here /dev/shm is 1 MB and a batch 1.5 MB."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to mount a small /dev/shm")
    mount = "mount -t tmpfs -o size=1m tmpfs /dev/shm"
    if subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True).returncode:
        pytest.skip("cannot mount a small /dev/shm in a mount namespace here")
    script = textwrap.dedent(f"""
        import tensorlake as tl
        ds = tl.load({images_ds.path!r}, read_only=True)
        expected = ds.images.numpy()
        for batch in ds.pytorch(batch_size={BATCH}, num_workers=2):
            assert (batch["images"].numpy() == expected[batch["index"].numpy()]).all()
        print("rows", len(expected))
    """)
    small_shm = f'{mount} && exec {sys.executable} -c "$0"'
    out = subprocess.run(
        ["unshare", "-m", "sh", "-c", small_shm, script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"rows {ROWS}" in out.stdout
