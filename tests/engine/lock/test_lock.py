"""The writer lock: sharing in one process, blocking and takeover across real processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import tensorlake as tl
from tensorlake.engine.format.keys import TAKEOVER_KEY
from tensorlake.engine.lock import (
    LOCK_KEY,
    LockHolder,
    WriterLock,
    break_lock,
    heartbeat_paused,
    read_holder,
)
from tensorlake.engine.lock.heartbeat import process_registry
from tensorlake.errors import FormatError, LockedError, StaleLockWarning
from tensorlake.storage import LocalStorage, MemoryStorage, Storage

ROOT = str(Path(tl.__file__).resolve().parents[1])

# A second process: open the storage, (wait for "go"), acquire, say how it went,
# then hold the lock until its stdin closes (exit releases it) or it is killed.
_WRITER = """
import json, sys
from tensorlake.engine.lock import WriterLock
from tensorlake.errors import LockedError
from tensorlake.storage import from_url

url, creds, start = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
lock = WriterLock(from_url(url, creds=creds))
if start == "wait":
    print("ready", flush=True)
    sys.stdin.readline()
try:
    lock.acquire()
except LockedError as err:
    print("locked-out", err.holder["pid"], flush=True)
    sys.exit(0)
print("acquired", flush=True)
sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def _no_lock_left_held() -> Iterator[None]:
    before = {id(e) for e in process_registry().snapshot()}  # held by other tests' datasets
    yield
    leftover = [e for e in process_registry().snapshot() if id(e) not in before]
    for entry in leftover:
        entry.refs = 1
        entry.drop_ref()
    assert not leftover, f"locks still held after the test: {[e.url for e in leftover]}"


@pytest.fixture
def spawn(storage_target) -> Iterator[Callable[..., subprocess.Popen]]:
    if storage_target.kind == "memory":
        pytest.skip("memory storage is per process")
    procs: list[subprocess.Popen] = []

    def start(wait: bool = False) -> subprocess.Popen:
        args = [storage_target.url, json.dumps(storage_target.creds), "wait" if wait else "go"]
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()


def _line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait()
        pytest.fail(f"writer process said nothing; stderr:\n{proc.stderr.read()}")
    return line


def _foreign(*, host: str = "elsewhere", age: float = 0.0, lease: float = 60.0) -> LockHolder:
    now = time.time()
    return LockHolder(
        owner="bob",
        host=host,
        pid=4242,
        token=secrets.token_hex(16),
        acquired=now - age,
        heartbeat=now - age,
        lease=lease,
    )


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _lock_lost(lock: WriterLock) -> bool:
    try:
        lock.check()
    except LockedError:
        return True
    return False


# --- one process --------------------------------------------------------------


def test_acquire_release_round_trip(storage: Storage):
    lock = WriterLock(storage, lease=5)
    assert not lock.held
    lock.acquire()
    assert lock.held
    lock.check()
    stored = json.loads(storage.get(LOCK_KEY))
    assert stored["host"] == socket.gethostname()
    assert stored["pid"] == os.getpid()
    assert stored["owner"] and stored["lease"] == 5
    holder = read_holder(storage)
    assert holder == lock.holder
    assert holder.describe().startswith(f"{holder.owner}@{holder.host} pid {os.getpid()}, ")
    assert holder.describe().endswith("s ago")
    lock.release()
    assert not lock.held
    assert not storage.exists(LOCK_KEY)
    assert read_holder(storage) is None
    lock.release()  # idempotent
    with pytest.raises(LockedError, match="does not hold"):
        lock.check()


def test_one_process_shares_the_lock_until_the_last_release(storage: Storage):
    with WriterLock(storage) as first:
        token = first.holder.token
        second = WriterLock(storage)
        second.acquire()
        assert second.holder.token == token
        first.release()
        assert storage.exists(LOCK_KEY)
        second.check()
        third = WriterLock(storage)
        third.acquire()
        second.release()
        assert read_holder(storage).token == third.holder.token
        third.release()
        assert not storage.exists(LOCK_KEY)
    with WriterLock(storage) as again:  # a new acquisition, a new token
        assert again.holder.token != token


def test_lease_defaults_to_config(monkeypatch: pytest.MonkeyPatch):
    store = MemoryStorage()
    monkeypatch.setenv("TENSORLAKE_LOCK_LEASE", "7.5")
    with WriterLock(store) as lock:
        assert lock.holder.lease == 7.5
    monkeypatch.setenv("TENSORLAKE_LOCK_LEASE", "soon")
    with pytest.raises(ValueError, match="TENSORLAKE_LOCK_LEASE"):
        WriterLock(store)
    with pytest.raises(ValueError, match="positive"):
        WriterLock(store, lease=0)


def test_expired_lease_is_taken_over_but_a_fresh_one_blocks(storage: Storage):
    fresh = _foreign()
    storage.put(LOCK_KEY, fresh.to_bytes())
    lock = WriterLock(storage)
    with pytest.raises(LockedError) as info:
        lock.acquire()
    assert "bob@elsewhere (pid 4242, heartbeat 0s ago)" in str(info.value)
    assert "read_only=True" in str(info.value) and "break_lock" in str(info.value)
    assert info.value.holder["token"] == fresh.token
    assert storage.get(LOCK_KEY) == fresh.to_bytes()
    assert not lock.held

    storage.put(LOCK_KEY, _foreign(age=120).to_bytes())
    with pytest.warns(StaleLockWarning, match=r"bob@elsewhere.*120s old, past its 60s lease"):
        lock.acquire()
    assert read_holder(storage).pid == os.getpid()
    assert not storage.exists(TAKEOVER_KEY)
    lock.release()
    assert not storage.exists(LOCK_KEY)


def test_a_record_naming_this_process_that_it_does_not_hold_is_stale(storage: Storage):
    leftover = replace(_foreign(host=socket.gethostname()), pid=os.getpid())
    storage.put(LOCK_KEY, leftover.to_bytes())
    with (
        pytest.warns(StaleLockWarning, match="which does not hold it"),
        WriterLock(storage) as lock,
    ):
        assert read_holder(storage).token == lock.holder.token


def test_corrupt_lock_counts_as_stale(storage: Storage):
    storage.put(LOCK_KEY, b"{not json")
    with pytest.raises(FormatError):
        read_holder(storage)
    with pytest.warns(StaleLockWarning, match="unreadable"), WriterLock(storage) as lock:
        assert read_holder(storage) == lock.holder
    storage.put(LOCK_KEY, json.dumps({"owner": "x", "pid": "1"}).encode())
    assert break_lock(storage) is None
    assert not storage.exists(LOCK_KEY)


def test_break_lock_removes_and_returns_the_holder(storage: Storage):
    assert break_lock(storage) is None
    lock = WriterLock(storage)
    lock.acquire()
    held = lock.holder
    assert break_lock(storage) == held
    assert not storage.exists(LOCK_KEY)
    with pytest.raises(LockedError, match="removed with break_lock"):
        lock.check()
    assert not lock.held
    lock.release()
    assert not storage.exists(LOCK_KEY)


def test_heartbeat_refreshes_the_record(storage: Storage):
    with WriterLock(storage, lease=0.6) as lock:
        first = read_holder(storage)
        _wait_until(lambda: read_holder(storage).heartbeat > first.heartbeat)
        now = read_holder(storage)
        assert now.token == first.token and now.acquired == first.acquired
        assert [t.name for t in threading.enumerate()].count("tl-lock-heartbeat") == 1
        lock.check()


def test_heartbeat_pauses_for_a_fork_and_resumes(storage: Storage):
    def heartbeats() -> int:
        return [t.name for t in threading.enumerate()].count("tl-lock-heartbeat")

    with WriterLock(storage, lease=0.6):
        assert heartbeats() == 1
        with heartbeat_paused():
            assert heartbeats() == 0
            paused_at = read_holder(storage).heartbeat
            time.sleep(0.4)  # past a third of the lease: a running heartbeat would refresh
            assert read_holder(storage).heartbeat == paused_at
        assert heartbeats() == 1
        _wait_until(lambda: read_holder(storage).heartbeat > paused_at)


def test_a_lock_taken_over_by_someone_else_fails_check(storage: Storage):
    lock = WriterLock(storage, lease=0.6)
    lock.acquire()
    thief = _foreign()
    storage.put(LOCK_KEY, thief.to_bytes())
    _wait_until(lambda: _lock_lost(lock))
    with pytest.raises(LockedError, match="taken over by bob@elsewhere pid 4242") as info:
        lock.check()
    assert info.value.holder["token"] == thief.token
    assert not lock.held
    lock.release()  # leaves the other writer's lock alone
    assert storage.get(LOCK_KEY) == thief.to_bytes()
    with pytest.raises(LockedError, match="pid 4242"):
        WriterLock(storage).acquire()


def test_a_cache_in_front_is_bypassed(storage: Storage):
    cached = tl.storage.LRUCache(storage, 2**20)
    with WriterLock(cached, lease=0.6) as lock:
        assert cached.get(LOCK_KEY)  # now cached
        storage.put(LOCK_KEY, _foreign().to_bytes())
        _wait_until(lambda: _lock_lost(lock))
        assert read_holder(cached).pid == 4242


def test_a_forked_child_holds_none_of_the_parents_locks(tmp_path: Path):
    store = LocalStorage(tmp_path / "ds")
    lock = WriterLock(store)
    lock.acquire()
    token = lock.holder.token
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            ok = not lock.held and _lock_lost(lock)
            lock.release()  # must not delete the parent's lock
            try:
                WriterLock(store).acquire()
                ok = False
            except LockedError as err:
                ok = ok and err.holder["pid"] == os.getppid()
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert read_holder(store).token == token
    lock.check()
    lock.release()


# --- across processes -----------------------------------------------------------


def test_a_live_writer_blocks_and_a_killed_one_is_taken_over(storage_target, spawn):
    writer = spawn()
    assert _line(writer) == "acquired"
    storage = storage_target.open()
    before = storage.get(LOCK_KEY)
    lock = WriterLock(storage)
    with pytest.raises(LockedError, match=f"pid {writer.pid}, heartbeat") as info:
        lock.acquire()
    assert info.value.holder["pid"] == writer.pid
    assert storage.get(LOCK_KEY) == before

    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with pytest.warns(StaleLockWarning, match=f"process {writer.pid} is no longer running"):
        lock.acquire()
    assert read_holder(storage).pid == os.getpid()
    lock.release()


@pytest.mark.parametrize("left", ["free", "stale"])
def test_racing_writers_one_wins(storage_target, spawn, left):
    storage = storage_target.open()
    if left == "stale":  # every racer finds the same stale lock: one takes it over
        storage.put(LOCK_KEY, _foreign(age=600).to_bytes())
    racers = [spawn(wait=True) for _ in range(3)]
    for proc in racers:
        assert _line(proc) == "ready"
    for proc in racers:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    said = [_line(proc) for proc in racers]
    winners = [proc for proc, line in zip(racers, said) if line == "acquired"]
    assert len(winners) == 1, said
    assert sorted(said) == sorted(["acquired", *[f"locked-out {winners[0].pid}"] * 2])
    assert read_holder(storage).pid == winners[0].pid
    winners[0].stdin.close()  # it exits normally: the atexit hook releases the lock
    assert winners[0].wait(timeout=10) == 0
    assert not storage.exists(LOCK_KEY)
