"""LocalStorage specifics: atomic writes, cross-process put_if_absent, file layout."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tensorlake.storage
from tensorlake.errors import KeyNotFoundError, StorageError
from tensorlake.storage import LocalStorage, MemoryStorage, _direct

REPO_ROOT = Path(tensorlake.storage.__file__).resolve().parents[2]


def test_reader_never_sees_a_partial_object(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    size = 1 << 20
    versions = [bytes([i]) * size for i in range(4)]
    store.put("obj", versions[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.put("obj", versions[i % len(versions)])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 0.5
        reads = 0
        while time.monotonic() < deadline or reads < 20:
            data = store.get("obj")
            assert data in versions
            assert store.get_range("obj", size - 4, size + 10) in {v[-4:] for v in versions}
            reads += 1
    finally:
        stop.set()
        thread.join()
    assert [p.name for p in tmp_path.iterdir()] == ["obj"]  # no temp files left over


_CONTENDER = """
import sys, time
from pathlib import Path
from tensorlake.storage import LocalStorage, MemoryStorage

root, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = LocalStorage(root)
while not (Path(root) / "go").exists():
    time.sleep(0.001)
print("".join("1" if store.put_if_absent(f"locks/{i}", me.encode()) else "0" for i in range(n)))
"""


def test_put_if_absent_across_processes(tmp_path: Path) -> None:
    n = 200
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(tmp_path), name, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for name in ("p0", "p1")
    ]
    time.sleep(0.2)  # let both start polling before the race begins
    (tmp_path / "go").write_bytes(b"")
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    store = LocalStorage(tmp_path)
    for i in range(n):
        wins = [name for name, out in zip(("p0", "p1"), outputs) if out[i] == "1"]
        assert len(wins) == 1, f"locks/{i}: winners {wins}"
        assert store.get(f"locks/{i}") == wins[0].encode()
    assert not [p for p in (tmp_path / "locks").iterdir() if p.name.startswith(".")]


def test_layout_and_temp_files_are_hidden(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("a/b/c", b"v")
    assert (tmp_path / "a" / "b" / "c").read_bytes() == b"v"
    (tmp_path / "a" / ".tl-tmp.c.deadbeef").write_bytes(b"half")
    assert list(store.list()) == ["a/b/c"]
    with pytest.raises(ValueError, match="reserved"):
        store.put("a/.tl-tmp.x", b"v")


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    store.put("x/y/z", b"v")
    store.put("x/keep", b"v")
    store.delete("x/y/z")
    assert not (tmp_path / "root" / "x" / "y").exists()
    assert (tmp_path / "root" / "x" / "keep").exists()
    store.clear()
    assert (tmp_path / "root").exists()
    assert list((tmp_path / "root").iterdir()) == []


def test_key_under_an_object_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    store.put("a", b"file")
    with pytest.raises(StorageError, match="not a folder"):
        store.put("a/b", b"v")
    store.put("d/e", b"v")
    with pytest.raises(StorageError):
        store.put("d", b"a folder is already there")


def test_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStorage("rel/ds")
    assert store.root == tmp_path / "rel" / "ds"
    assert store.url == str(tmp_path / "rel" / "ds")
    store.put("k", b"v")
    monkeypatch.chdir("/")
    assert store.get("k") == b"v"


def test_missing_root_lists_nothing(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "not-yet")
    assert list(store.list()) == []
    assert not store.exists("k")


def test_long_file_names(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    key = "d/" + "n" * 250
    store.put(key, b"v")
    assert store.put_if_absent(key + "x", b"w")
    assert list(store.list()) == [key, key + "x"]


def test_deferred_fsync_syncs_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []  # the inodes fsynced under tmp_path (another test's dataset
    real_fsync = os.fsync  # may still refresh its lock file in a thread of this process)

    def recording_fsync(fd: int) -> None:
        info = os.fstat(fd)
        if info.st_dev == tmp_path.stat().st_dev and any(
            p.stat().st_ino == info.st_ino for p in (tmp_path / "a", *tmp_path.glob("a/*"))
        ):
            synced.append(info.st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store = LocalStorage(tmp_path, fsync=False)
    store.put("a/b", b"one")
    store.put("a/c", b"two")
    assert synced == [] and store.get("a/b") == b"one"
    store.sync(["a/b", "a/c"])
    assert len(synced) == 3  # two files, then their folder once
    with pytest.raises(KeyNotFoundError):
        store.sync(["a/missing"])
    synced.clear()
    LocalStorage(tmp_path).put("a/d", b"three")  # the default: every put is durable
    assert len(synced) == 2  # the file, then its folder
    MemoryStorage().sync(["anything"])  # a no-op where puts are durable already


def test_short_writes_are_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_writev = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, bufs: real_writev(fd, [bytes(bufs[0])[:3]]))
    store = LocalStorage(tmp_path)
    store.put_parts("k", [b"abcdefgh", b"", b"ij", memoryview(b"klmnop")])
    assert store.get("k") == b"abcdefghijklmnop"


def _opened_flags(monkeypatch: pytest.MonkeyPatch, under: Path) -> list[int]:
    """Record the flags of every os.open of a path under ``under`` from here on (not the
    files other threads of the test process open meanwhile: lock heartbeats, say)."""
    flags: list[int] = []
    real_open = os.open
    root = str(under)

    def spy(path, flag, *args, **kwargs):
        if os.fspath(path).startswith(root):
            flags.append(flag)
        return real_open(path, flag, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return flags


@pytest.mark.skipif(not _direct.AVAILABLE, reason="no O_DIRECT on this platform")
def test_direct_writes_store_large_objects_around_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path, fsync=False)
    store.direct_write_min = 1 << 20
    flags = _opened_flags(monkeypatch, tmp_path)
    rng = np.random.default_rng(0)
    parts = [rng.bytes(n) for n in (700_001, 3, 0, 500_000)]  # not a multiple of a block
    store.put_parts("chunks/big", parts)
    store.put("chunks/small", b"header")
    if store.direct_write_min is None:
        pytest.skip("this file system refuses O_DIRECT (the fallback has its own test)")
    assert [bool(f & os.O_DIRECT) for f in flags] == [True, False]
    assert store.get("chunks/big") == b"".join(parts)
    assert store.get("chunks/small") == b"header"
    assert os.path.getsize(tmp_path / "chunks" / "big") == 1_200_004
    store.put_parts("chunks/bigger", [rng.bytes(3 << 20)])  # the buffer grows
    assert len(store.get("chunks/bigger")) == 3 << 20
    assert sorted(store.list()) == ["chunks/big", "chunks/bigger", "chunks/small"]
    # an object larger than the buffer's window goes through it in pieces
    monkeypatch.setattr(_direct, "WINDOW", 3 * _direct.ALIGN)
    store.direct_write_min = 0
    parts = [rng.bytes(n) for n in (5000, 1, 12288, 0, 20000)]
    store.put_parts("chunks/windowed", parts)
    store.put("chunks/empty", b"")
    assert store.get("chunks/windowed") == b"".join(parts)
    assert store.get("chunks/empty") == b""
    assert store.direct_write_min == 0  # still writing directly


@pytest.mark.skipif(not _direct.AVAILABLE, reason="no O_DIRECT on this platform")
def test_set_direct_write_min_turns_direct_writes_on_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path, fsync=False)
    store.set_direct_write_min(4096)
    flags = _opened_flags(monkeypatch, tmp_path)
    store.put("big", b"b" * 5000)
    store.put("small", b"s" * 100)
    if store.direct_write_min is None:
        pytest.skip("this file system refuses O_DIRECT (the fallback has its own test)")
    store.set_direct_write_min(None)
    store.put("big2", b"c" * 5000)
    assert [bool(f & os.O_DIRECT) for f in flags] == [True, False, False]
    assert (store.get("big"), store.get("small"), store.get("big2")) == (
        b"b" * 5000,
        b"s" * 100,
        b"c" * 5000,
    )


@pytest.mark.skipif(not _direct.AVAILABLE, reason="no O_DIRECT on this platform")
def test_refused_direct_writes_fall_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(2 << 20)
    # a file system that refuses O_DIRECT at open (tmpfs does), then one that accepts the
    # flag but fails the aligned write: both store the object and stop trying
    real_open = os.open

    def refusing_open(path, flag, *args, **kwargs):
        if flag & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flag, *args, **kwargs)

    store = LocalStorage(tmp_path / "a", fsync=False)
    store.direct_write_min = 0
    monkeypatch.setattr(os, "open", refusing_open)
    store.put("k", data)
    assert store.get("k") == data and store.direct_write_min is None
    monkeypatch.undo()

    def failing_write(fd, parts):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(_direct, "write_direct", failing_write)
    store = LocalStorage(tmp_path / "b", fsync=False)
    store.direct_write_min = 0
    store.put("k", data)
    assert store.get("k") == data and store.direct_write_min is None
    assert list(store.list()) == ["k"]  # no temp file left behind
    assert os.listdir(tmp_path / "b") == ["k"]
