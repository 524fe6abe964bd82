"""The writer lock seen from the Dataset API, with a real second process as the other writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import tensorlake as tl

# Opens the dataset, writes one row (which takes the lock), says so, then waits for stdin.
_HOLDER = """
import json, sys
import tensorlake as tl
ds = tl.load(sys.argv[1], creds=json.loads(sys.argv[2]))
ds.x.append(7)
print("holding", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def target(storage_target):
    if storage_target.kind == "memory":
        pytest.skip("memory datasets live in one process")
    ds = tl.empty(storage_target.url, creds=storage_target.creds)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    ds.close()  # releases the lock this process took by writing
    return storage_target


@pytest.fixture
def holder(target):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, target.url, json.dumps(target.creds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()
    if not proc.stdin.closed:
        proc.stdin.close()


def test_second_writer_gets_locked_error_and_readers_do_not_wait(target, holder):
    ds = tl.load(target.url, creds=target.creds)
    assert ds.x.numpy().tolist() == [[7]]  # reading needs no lock
    with pytest.raises(tl.LockedError) as info:
        ds.x.append(1)
    assert str(holder.pid) in str(info.value) and info.value.holder["pid"] == holder.pid
    assert "break_lock" in str(info.value)
    with pytest.raises(tl.LockedError):
        ds.commit("not mine")
    with pytest.raises(tl.LockedError):
        tl.empty(target.url, creds=target.creds, overwrite=True)
    ro = tl.load(target.url, creds=target.creds, read_only=True)
    assert len(ro) == 1
    assert tl.load(target.url, creds=target.creds).x.numpy().tolist() == [[7]]


def test_lock_of_a_killed_writer_is_taken_over_with_a_warning(target, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with pytest.warns(tl.StaleLockWarning, match=str(holder.pid)):
        ds = tl.load(target.url, creds=target.creds, reset=True)
    ds.x.append(1)
    ds.commit("after takeover")
    assert ds.x.numpy().tolist() == [[1]]  # the dead writer's row was never committed


def test_lock_is_released_by_close_and_at_exit(target, holder):
    holder.stdin.write("\n")
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    ds = tl.load(target.url, creds=target.creds)
    ds.x.append(2)  # no LockedError: the holder released at exit
    ds.close()
    assert not target.open().exists("lock")


def test_break_lock(target, holder):
    removed = tl.break_lock(target.url, creds=target.creds)
    assert removed["pid"] == holder.pid
    ds = tl.load(target.url, creds=target.creds)
    ds.x.append(3)


def test_same_process_reopen_shares_the_lock(target):
    a = tl.load(target.url, creds=target.creds)
    b = tl.load(target.url, creds=target.creds)
    a.x.append(1)
    b.x.append(2)  # same process: no LockedError
    a.close()
    b.x.append(3)  # b still holds its share
    b.close()
    assert not target.open().exists("lock")
