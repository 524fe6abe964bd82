"""What worker processes do with their chunks: durable before committed, O_DIRECT when big."""

from __future__ import annotations

import os

import numpy as np

import tensorlake as tl
from tensorlake.storage import LocalStorage, _direct
from tests.compute.transforms import create_schema, make_rows


def test_chunks_from_process_workers_are_durable_before_they_are_committed(tmp_path, monkeypatch):
    """Workers write (and fsync) chunks behind their next block and say when they are
    stored; blocks whose labels the writer renumbers are synced by the writer. Either
    way every chunk a commit names is durable."""
    log = tmp_path / "io.log"  # appended to by the forked workers too
    real_sync, real_put = LocalStorage.sync, LocalStorage._put_parts

    def record(line: str) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {line}\n")

    def recording_sync(self, keys):
        keys = list(keys)
        real_sync(self, keys)
        for key in keys:
            record(f"synced {key}")

    def recording_put(self, key, parts):
        real_put(self, key, parts)
        record(f"{'durable' if self.fsync else 'written'} {key}")

    monkeypatch.setattr(LocalStorage, "sync", recording_sync)
    monkeypatch.setattr(LocalStorage, "_put_parts", recording_put)
    monkeypatch.setenv("TENSORLAKE_START_METHOD", "fork")
    ds = tl.empty(str(tmp_path / "ds"))
    create_schema(ds)
    make_rows().eval(range(60), ds, num_workers=2, checkpoint_interval=20, progressbar=False)
    events = [line.split() for line in log.read_text().splitlines()]
    durable = {key for _, what, key in events if what in ("durable", "synced")}
    stored = {k for k in LocalStorage(tmp_path / "ds").list("") if "/chunks/" in k}
    assert stored <= durable
    by_workers = {key for pid, what, key in events if int(pid) != os.getpid()}
    assert stored & by_workers  # the workers wrote chunks (and made them durable)


@tl.compute
def big_rows(i, sample_out):
    sample_out.append({"img": np.random.default_rng(i).integers(0, 255, (400, 500, 3), np.uint8)})


def test_process_workers_write_large_chunks_around_the_page_cache(tmp_path, monkeypatch):
    """Chunks of 1 MiB or more from process workers go through O_DIRECT (nobody reads
    them soon), unless TENSORLAKE_DIRECT_WRITE_MIN_BYTES is negative; the dataset is
    the same as a serial run's either way."""
    log = tmp_path / "direct.log"
    real_write = _direct.write_direct

    def recording_write(fd, parts):  # runs in the forked workers: they append to a file
        real_write(fd, parts)
        with open(log, "a") as f:
            f.write(f"{sum(map(len, parts))}\n")

    monkeypatch.setattr(_direct, "write_direct", recording_write)
    monkeypatch.setenv("TENSORLAKE_START_METHOD", "fork")
    reference = tl.empty("mem://compute-big-serial", overwrite=True)
    written = []
    for minimum in ("", "-1"):
        monkeypatch.setenv("TENSORLAKE_DIRECT_WRITE_MIN_BYTES", minimum)
        for ds in (reference, tl.empty(str(tmp_path / f"ds{minimum}"))):
            if len(ds.tensors):
                continue  # the serial reference, made once
            ds.create_tensor("img", htype="image", sample_compression=None, max_chunk_size=4 << 20)
            workers = 0 if ds is reference else 2
            big_rows().eval(
                range(24), ds, num_workers=workers, checkpoint_interval=12, progressbar=False
            )
            assert np.array_equal(ds.img.numpy(), reference.img.numpy())
        written.append(log.read_text().split() if log.exists() else [])
        log.unlink(missing_ok=True)
    monkeypatch.undo()
    probe = LocalStorage(tmp_path / "probe")
    probe.direct_write_min = 0
    probe.put("k", b"probe")
    if probe.direct_write_min is not None:  # this file system takes O_DIRECT
        sizes = [int(n) for n in written[0]]
        assert len(sizes) == 8 and min(sizes) > 3 * 600_000  # a chunk per 3-item block
    assert written[1] == []
