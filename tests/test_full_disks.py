"""Full disks and refused writes: a local dataset on a small tmpfs (``small_disk``).

Each case fills the disk (or turns it read-only, or runs as a user without write
permission) in the middle of an operation and checks the same four things: the error is
a typed tensorlake error whose message says what the disk refused and what to do; the
dataset reopens at its last committed (or last flushed) state, byte for byte; no temp
file is left on the disk; and once there is room again, the same operation finishes.
The tests skip, saying why, where the machine does not let them mount a tmpfs (root
only; CI runs as root).
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.errors import IngestError, ReadOnlyError, StorageError, TransformError
from tests.small_disk import PAGE, SmallDisk

QUIET = dict(progressbar=False, summary=False)
FULL = "disk is full"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def rows(n: int, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, size, dtype=np.uint8) for _ in range(n)]


def content(path: Path, reset: bool = False) -> tuple[str, list[bytes]]:
    """The head commit and every row of ``x`` of the dataset at ``path``, reopened."""
    ds = tl.load(path, reset=reset) if reset else tl.load(path, read_only=True)
    return ds.commit_id, [row.tobytes() for row in ds.x.numpy(aslist=True)]


def make_dataset(path: Path, n: int = 4, size: int = 20_000) -> tl.Dataset:
    ds = tl.empty(path)
    with ds:
        ds.create_tensor("x", htype="generic", dtype="uint8", chunk_compression=None)
        ds.x.extend(rows(n, size, seed=0))
    ds.commit("first rows")
    return ds


def says_full(err: BaseException) -> bool:
    """The error, or one it is chained to, is a tensorlake error saying the disk is full."""
    while err is not None:
        if isinstance(err, tl.TensorlakeError) and FULL in str(err):
            return "Free space" in str(err) or "free some" in str(err).lower()
        err = err.__cause__  # type: ignore[assignment]
    return False


# --- the writer's own operations --------------------------------------------------------


@pytest.mark.parametrize("leave", [0, 3 * PAGE, 100_000, 400_000])
def test_a_full_disk_mid_flush_keeps_the_last_commit(small_disk: SmallDisk, leave: int) -> None:
    path = small_disk.path / "ds"
    ds = make_dataset(path)
    committed = content(path)
    more = rows(12, 60_000, seed=1)  # 720 kB: more than any `leave` gives
    small_disk.fill(leave=leave)
    with pytest.raises(StorageError, match=FULL) as caught, ds:
        ds.x.extend(more)
    assert "Free space" in str(caught.value) and ".tl-tmp." not in str(caught.value)
    assert small_disk.leftovers() == []
    assert content(path) == committed  # the staging manifest was never replaced
    small_disk.free()
    ds.flush()  # the same writer finishes what it holds
    ds.commit("more rows")
    head, stored = content(path)
    assert head != committed[0] and stored == committed[1] + [r.tobytes() for r in more]
    assert small_disk.leftovers() == []


def test_a_full_disk_at_any_point_of_a_commit_leaves_one_state_or_the_next(
    small_disk: SmallDisk,
) -> None:
    """The disk fills at every page of a flush-and-commit in turn: each time the dataset is
    either as before or with the commit, never between."""
    path = small_disk.path / "ds"
    ds = make_dataset(path)
    failures: list[str] = []  # the key each failure could not write
    for k in range(14):
        before = content(path)
        new = rows(3, 5_000, seed=10 + k)
        small_disk.free()
        small_disk.fill(leave=k * PAGE)
        try:
            with ds:
                ds.x.extend(new)
                ds.commit(f"commit {k}")
        except StorageError as err:
            failures.append(err.key or "")
            assert FULL in str(err), err
            assert small_disk.leftovers() == []
            after = content(path, reset=True)  # a writer that failed: back to its head
            assert after in (before, (after[0], before[1] + [r.tobytes() for r in new]))
            small_disk.free()
            ds = tl.load(path, reset=True)
            if after == before:  # the same commit, again: it finishes now
                with ds:
                    ds.x.extend(new)
                    ds.commit(f"commit {k}")
        head, stored = content(path)
        assert stored == before[1] + [r.tobytes() for r in new] and head != before[0]
        assert small_disk.leftovers() == []
    # the disk filled at different steps: chunks, tables, staging, the commit record
    assert len({key.split("/")[0] for key in failures}) >= 3, failures


def test_a_full_disk_mid_eval_with_process_workers(small_disk: SmallDisk) -> None:
    path = small_disk.path / "ds"
    ds = make_dataset(path, n=0)
    size = 50_000
    head = path / "refs" / "heads" / "main"
    first_head = head.read_bytes()

    @tl.compute
    def fill(i: int, sample_out: object) -> None:
        # checkpoints are stored while the workers go on, so workers this fast could
        # fill the disk before the first one lands: the items after it wait for it
        deadline = time.monotonic() + 30
        while i >= 10 and head.read_bytes() == first_head and time.monotonic() < deadline:
            time.sleep(0.005)
        sample_out.x.append(np.full(size, i % 251, np.uint8))  # type: ignore[attr-defined]

    small_disk.fill(leave=1_400_000)  # room for some checkpoints of 10 rows, not all 60
    with pytest.raises((StorageError, TransformError)) as caught:
        fill().eval(list(range(60)), ds, num_workers=2, checkpoint_interval=10, progressbar=False)
    assert says_full(caught.value), caught.value
    assert small_disk.leftovers() == []
    _, stored = content(path, reset=True)
    assert 0 < len(stored) < 60 and len(stored) % 10 == 0, caught.value  # a checkpoint, whole
    assert stored == [np.full(size, i % 251, np.uint8).tobytes() for i in range(len(stored))]
    small_disk.free()
    ds = tl.load(path, reset=True)
    fill().eval(
        list(range(60)), ds, num_workers=2, checkpoint_interval=10, progressbar=False, resume=True
    )
    _, stored = content(path)
    assert stored == [np.full(size, i % 251, np.uint8).tobytes() for i in range(60)]
    assert small_disk.leftovers() == []


def test_a_read_only_remount_under_an_open_writer(small_disk: SmallDisk) -> None:
    path = small_disk.path / "ds"
    ds = make_dataset(path)
    committed = content(path)
    small_disk.read_only()
    try:
        with pytest.raises(ReadOnlyError, match="read-only") as caught:
            ds.x.extend(rows(3, 20_000, seed=2))
        assert "Remount it writable" in str(caught.value)
        with pytest.raises(ReadOnlyError, match="read-only"):
            ds.commit("refused")
        assert content(path) == committed  # reading a read-only disk is fine
    finally:
        small_disk.writable()
    assert small_disk.leftovers() == []
    assert content(path) == committed
    ds.flush()
    ds.commit("after the remount")
    assert content(path)[1] == committed[1] + [r.tobytes() for r in rows(3, 20_000, seed=2)]


def test_opening_for_writing_on_a_read_only_disk(small_disk: SmallDisk) -> None:
    path = small_disk.path / "ds"
    make_dataset(path).close()
    committed = content(path)
    small_disk.read_only()
    try:
        code = (
            "import tensorlake as tl, sys\n"
            "print(len(tl.load(sys.argv[1], read_only=True).x))\n"
            "try:\n"
            "    tl.load(sys.argv[1]).x.append(b'')\n"
            "except tl.TensorlakeError as err:\n"
            "    print(type(err).__name__, err)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        count, error = done.stdout.splitlines()
        assert count == "4" and error.startswith("ReadOnlyError") and "read_only=True" in error
    finally:
        small_disk.writable()
    assert content(path) == committed and small_disk.leftovers() == []


def test_permission_denied_as_an_unprivileged_user(tmp_path: Path) -> None:
    """Root ignores permission bits: the writer runs as ``nobody`` (``setpriv``)."""
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("no setpriv here to run the check as an unprivileged user")
    probe = subprocess.run(
        [*NOBODY, sys.executable, "-c", "import tensorlake"], capture_output=True, text=True
    )
    if probe.returncode != 0:  # e.g. a checkout in a folder only root may enter (mktemp -d)
        pytest.skip(f"nobody cannot import tensorlake here: {probe.stderr.strip()[-200:]}")
    top = Path(tempfile.mkdtemp(prefix="tl-perm-", dir="/tmp"))  # tmp_path is root's only
    try:
        os.chmod(top, 0o755)
        path = top / "ds"
        make_dataset(path).close()
        committed = content(path)
        code = (
            "import tensorlake as tl, sys\n"
            "print(len(tl.load(sys.argv[1], read_only=True).x))\n"
            "try:\n"
            "    ds = tl.load(sys.argv[1])\n"
            "    ds.x.append(b'')\n"
            "    ds.commit('x')\n"
            "except tl.TensorlakeError as err:\n"
            "    print(type(err).__name__, err)\n"
        )
        done = subprocess.run(
            [*NOBODY, sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0 and "Permission denied" in done.stderr and not done.stdout:
            pytest.skip(f"nobody cannot run this Python: {done.stderr.strip()[-200:]}")
        assert done.returncode == 0, done.stderr
        count, error = done.stdout.splitlines()
        assert count == "4", done.stdout
        assert error.startswith("StorageError") and "permission denied" in error
        assert "write permission" in error
        assert content(path) == committed
        assert not [p for p in path.rglob("*") if p.name.startswith(".tl-tmp.")]
    finally:
        subprocess.run(["rm", "-rf", str(top)], check=False)


# --- ingestion ------------------------------------------------------------------------


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise(seed)).save(buf, format="PNG")
    return buf.getvalue()  # ~7 kB: noise does not compress


def _source(tmp_path: Path, kind: str, n: int = 30) -> tuple[tuple[Path, ...], int]:
    """A source of ``n`` images on the roomy disk: the arguments before ``dest``, rows."""
    root = tmp_path / "src"
    if kind == "coco":
        (root / "images").mkdir(parents=True)
        images = []
        for i in range(30):
            (root / "images" / f"{i:04d}.png").write_bytes(_png(i))
            images.append({"id": i + 1, "file_name": f"{i:04d}.png", "height": 48, "width": 48})
        anns = [
            {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0],
             "area": 12.0, "iscrowd": 0}
            for i in range(30)
        ]  # fmt: skip
        (root / "instances.json").write_text(
            json.dumps(
                {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}
            )
        )
        return (root / "images", root / "instances.json"), 30
    for i in range(n):
        folder = root / "train" / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.png").write_bytes(_png(i))
    return (root,), n


INGESTS = {
    "classification": tl.ingest_classification,
    "files": tl.ingest_files,
    "coco": tl.ingest_coco,
}


@pytest.mark.parametrize("kind", sorted(INGESTS))
def test_a_full_disk_mid_ingest_leaves_no_dataset_then_the_ingest_finishes(
    small_disk: SmallDisk, tmp_path: Path, kind: str
) -> None:
    args, n = _source(tmp_path, kind)
    dest = small_disk.path / "ds"
    small_disk.fill(leave=100_000)  # the schema fits, the 210 kB of images do not
    with pytest.raises((IngestError, StorageError)) as caught:
        INGESTS[kind](*args, dest, **QUIET)
    assert says_full(caught.value), caught.value
    assert "Cannot read the source" not in str(caught.value)  # the source was fine
    assert not tl.exists(dest)  # created by this ingest, no checkpoint: removed
    assert small_disk.leftovers() == []
    small_disk.free()
    ds = INGESTS[kind](*args, dest, **QUIET)
    assert len(ds) == n and small_disk.leftovers() == []


def test_a_full_disk_mid_ingest_keeps_its_checkpoint_and_resumes(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    (src,), n = _source(tmp_path, "classification", n=96)  # 3 batches of 32 files
    dest = small_disk.path / "ds"
    small_disk.fill(leave=400_000)  # room for a checkpoint of 32 images, not for 96
    with pytest.raises((IngestError, StorageError)) as caught:
        tl.ingest_classification(src, dest, checkpoint_interval=32, **QUIET)
    assert says_full(caught.value), caught.value
    assert small_disk.leftovers() == []
    kept = tl.load(dest, reset=True)
    assert 0 < len(kept) < n and len(kept) % 32 == 0
    kept.close()
    small_disk.free()
    ds = tl.ingest_classification(src, dest, checkpoint_interval=32, resume=True, **QUIET)
    assert small_disk.leftovers() == []
    # every image once: the checkpoint's and the rest, none twice
    images = sorted(ds.images[i].numpy().tobytes() for i in range(len(ds)))
    assert images == sorted(_noise(i).tobytes() for i in range(n))


def test_an_archive_download_to_a_full_disk_is_said_as_such(
    small_disk: SmallDisk, tmp_path: Path
) -> None:
    """The download (tmp_dir on the small disk) fills it: said at once, not retried as a
    dropped connection; nothing is left in tmp_dir; with room, the same call finishes."""
    (src,), n = _source(tmp_path, "classification")
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "pets.tar", "w") as tar:
        tar.add(src, arcname="pets")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/pets.tar"
    work = small_disk.path / "work"
    work.mkdir()
    try:
        small_disk.fill(leave=60_000)  # the 220 kB archive does not fit
        with pytest.raises(IngestError, match="No space left") as caught:
            tl.ingest_archive(url, tmp_path / "ds", tmp_dir=work, **QUIET)
        assert "connection failed" not in str(caught.value)
        assert os.listdir(work) == [] and not tl.exists(tmp_path / "ds")
        small_disk.free()
        ds = tl.ingest_archive(url, tmp_path / "ds", tmp_dir=work, **QUIET)
        assert len(ds) == n and os.listdir(work) == []
    finally:
        server.shutdown()
        server.server_close()
