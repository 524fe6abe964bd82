"""Crash safety and transient storage faults, end to end.

1. A real writer process (``crash_writer.py``) is killed with SIGKILL at random
   moments: mid append, mid flush, mid update, mid commit, and before the first
   commit. The dataset must open, ``reset`` must return it exactly to the last
   commit (recomputed here from row and commit numbers, never read back from what
   the writer wrote), no object a crash orphaned may survive ``reset`` or ``gc``,
   and writing must go on from the recovered state.
2. A loopback proxy in front of moto answers some requests with 500/503, cuts
   response bodies short and delays answers past the read timeout: the dataset is
   written and read back exactly. While it fails every request, reads raise
   ``StorageError`` (never ``FormatError``) and the stored dataset stays unchanged.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format import keys, records, segments
from tensorlake.storage import S3Storage, from_url
from tests.api import crash_writer as cw
from tests.faults import proxies

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(cw.__file__).resolve()

ROUNDS = {"local": 24, "s3": 8}
LANES = 2  # rounds checked at once
TARGETS = {"local": 4, "s3": 2}  # kill during one of the first commits
STEP_GUESS = {"local": 0.02, "s3": 0.08}  # seconds a writer step takes, before one is seen
ANYTIME = {"local": 0.9, "s3": 1.2}  # kill within this long after the writer starts
STYLES = ("ready", "batch", "commit", "first", "anytime", "commit", "batch", "first")
"""Where round i aims its kill (``STYLES[i % 8]``): ``ready`` while the dataset is
created; ``first`` in any step before commit 1 lands (schema, a batch, the updates, the
commit); ``batch`` in a batch (appends, flushes) and ``commit`` inside ``ds.commit`` of
one of the first commits; ``anytime`` at a random time."""
GC_ZERO = {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 0}
_STALE_LOCK = getattr(tl, "StaleLockWarning", None)


@contextmanager
def _dead_writer_lock_ok() -> Iterator[None]:
    """Taking over the lock of the killed writer warns; that warning is expected here.
    (Entered once around all rounds: ``catch_warnings`` is not thread-safe.)"""
    with warnings.catch_warnings():
        if _STALE_LOCK is not None:
            warnings.simplefilter("ignore", _STALE_LOCK)
        yield


# --- the writer process ------------------------------------------------------------


class WriterProcess:
    """``crash_writer.py`` in a subprocess, started waiting; its markers with arrival times."""

    def __init__(self, url: str, creds: dict | None, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), url, json.dumps(creds), str(seed), "--wait"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.markers: list[tuple[float, list[str]]] = []
        self._cond = threading.Condition()
        self._eof = False
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.markers.append((time.monotonic(), line.split()))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, marker: list[str], timeout: float = 60.0) -> bool:
        """Wait until a marker starting with ``marker`` arrives; False at end of output."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(m[: len(marker)] == marker for _, m in self.markers):
                    return True
                if self._eof:
                    return False
                left = deadline - time.monotonic()
                assert left > 0, f"writer never printed {marker}: {self.markers[-3:]}"
                self._cond.wait(left)

    def start(self) -> float:
        assert self.wait_for(["READY"]), self._failure()
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return time.monotonic()

    def kill(self) -> str:
        """SIGKILL it; return the last marker seen before the signal went."""
        with self._cond:
            last = self.markers[-1][1][0] if self.markers else "none"
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)
        assert self.proc.stdout and self.proc.stderr and self.proc.stdin
        self.stderr = self.proc.stderr.read()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()
        assert self.proc.returncode in (-signal.SIGKILL, 0), self._failure()
        return last

    def _failure(self) -> str:
        return f"writer failed (rc {self.proc.poll()}): {self.stderr}"

    def step_time(self, marker: str) -> float | None:
        """How long the last completed step that began with ``marker`` took."""
        with self._cond:
            seen = list(self.markers)
        for (t0, m0), (t1, _) in zip(reversed(seen[:-1]), reversed(seen[1:])):
            if m0[0] == marker:
                return t1 - t0
        return None

    def last_committed(self) -> tuple[int, int, str | None]:
        """``(commit number, rows, id)`` of the last COMMITTED marker, else ``(0, 0, None)``."""
        for _, m in reversed(self.markers):
            if m[0] == "COMMITTED":
                return int(m[1]), int(m[2]), m[3]
        return 0, 0, None


def _aim(rng: random.Random, seed: int, style: str, kind: str) -> list[str] | None:
    """The marker after which a round kills its writer (None: at a random time)."""
    if style == "anytime":
        return None
    if style == "ready":
        return ["READY"]
    j = 1 if style == "first" else rng.randint(1, TARGETS[kind])
    if style == "commit":
        return ["COMMITTING", str(j)]
    choices = [["BATCH", str(j), str(b)] for b in range(len(cw.plan(seed, j)))]
    if style == "first":
        choices += [["CREATED"], ["UPDATING", "1"], ["COMMITTING", "1"]]
    return rng.choice(choices)


def _kill_at_random(
    writer: WriterProcess, rng: random.Random, aim: list[str] | None, kind: str
) -> str:
    """Start the writer, kill it soon after ``aim``; return the last marker it printed."""
    started = writer.start()
    if aim is None:
        time.sleep(max(0.0, started + rng.uniform(0, ANYTIME[kind]) - time.monotonic()))
    elif writer.wait_for(aim):
        # up to about as long as the step took last time: nearly always inside it
        step = writer.step_time(aim[0]) or writer.step_time("BATCH") or STEP_GUESS[kind]
        time.sleep(rng.uniform(0, 0.9 * step))
    return writer.kill()


# --- expected state ------------------------------------------------------------------


def _head_number(ds: Any) -> int:
    listed = ds.commits  # the root commit is not listed
    return int(listed[0]["message"].split()[1]) if listed else 0


def _assert_log(ds: Any, head: int) -> None:
    messages = [c["message"] for c in ds.commits]
    assert messages == [f"commit {j}" for j in range(head, 0, -1)]


def _assert_state(ds: Any, state: cw.State) -> None:
    """``ds`` holds exactly ``state``: every value, dtype and class name."""
    if state.commit == 0:
        assert list(ds.tensors) == [] and len(ds) == 0
        return
    assert sorted(ds.tensors) == sorted(cw.TENSORS)
    assert [len(ds[t]) for t in cw.TENSORS] == [state.rows] * len(cw.TENSORS)
    x = ds.x.numpy()
    assert x.dtype == np.int64 and x.shape == (state.rows, 1)  # scalars: (N, 1)
    x = x.reshape(-1)
    np.testing.assert_array_equal(x, np.array(state.values["x"], dtype=np.int64))
    images = ds.img.numpy(aslist=True)
    assert len(images) == state.rows
    for r, (got, want) in enumerate(zip(images, state.values["img"])):
        assert got.dtype == np.uint8, r
        np.testing.assert_array_equal(got, want, err_msg=f"img[{r}]")
    assert ds.text.text() == state.values["text"]
    assert list(ds.label.info["class_names"]) == state.class_names
    assert ds.label.data()["text"] == [[v] for v in state.values["label"]]
    ids = [state.class_names.index(v) for v in state.values["label"]]
    np.testing.assert_array_equal(ds.label.numpy().reshape(-1), np.array(ids, dtype=np.uint32))
    assert ds.record.dict() == state.values["record"]


def _assert_between(ds: Any, seed: int, head: int) -> None:
    """What plain ``load`` shows after a crash: commit ``head`` plus part of ``head + 1``
    (some of its rows, some of its row updates), every tensor alike in length."""
    before, after = cw.expected(seed, head), cw.expected(seed, head + 1)
    if not ds.tensors:
        assert head == 0
        return
    n = len(ds[cw.TENSORS[0]])
    assert [len(ds[t]) for t in cw.TENSORS] == [n] * len(cw.TENSORS)
    assert before.rows <= n <= after.rows
    names = list(ds.label.info["class_names"])
    assert names[: len(before.class_names)] == before.class_names
    assert after.class_names[: len(names)] == names
    got = {
        "x": ds.x.numpy().reshape(-1).tolist(),
        "img": ds.img.numpy(aslist=True),
        "text": ds.text.text(),
        "label": [t[0] for t in ds.label.data()["text"]],
        "record": ds.record.dict(),
    }
    for t in cw.TENSORS:
        for r in range(n):
            old = before.values[t][r] if r < before.rows else cw.row(r)[t]
            new = after.values[t][r]
            assert _same(got[t][r], old) or _same(got[t][r], new), (t, r)


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _stored_keys(url: str, creds: dict | None) -> list[str]:
    return list(from_url(url, creds=creds, read_only=True).list(""))


def _assert_nothing_orphaned(url: str, creds: dict | None, keep_staging: bool = False) -> set[str]:
    """Every stored chunk, table segment and commit is reachable from ``main`` (its
    commits, and its staging state when ``keep_staging``), and each of those exists.
    Returns the stored keys."""
    store = from_url(url, creds=creds, read_only=True)
    stored_keys = set(store.list(""))
    head = records.read_head(store, "main")
    manifests, commits, commit_id = [], set(), head
    while commit_id is not None:
        stored = records.read_commit(store, commit_id)
        manifests.append(stored.manifest)
        commits.add(keys.commit_key(commit_id))
        commit_id = stored.commit.parent
    staged = records.current_staging(store, "main", head) if keep_staging else None
    if staged is not None:
        manifests.append(staged.manifest)
    loader = segments.ManifestStore(store)
    chunks = set()
    # the segments they name, and for large tables the leaves their index segments list
    named_segments = segments.references(manifests, store.get_many).segments
    for d in manifests:
        for name, state in loader.load(d).tensors.items():
            chunks.update(keys.chunk_key(name, int(i)) for i in state.table.column("ids"))
    assert {k for k in stored_keys if "/chunks/" in k} == chunks
    assert {k for k in stored_keys if k.startswith(keys.SEGMENTS_PREFIX)} == named_segments
    assert {k for k in stored_keys if k.startswith(keys.COMMITS_PREFIX)} == commits
    assert {k for k in stored_keys if k.startswith(keys.REFS_PREFIX)} == {"refs/heads/main"}
    want_staging = {keys.staging_key("main")} if staged is not None else set()
    assert {k for k in stored_keys if k.startswith(keys.STAGING_PREFIX)} == want_staging
    return stored_keys


# --- task 1: SIGKILL at random moments -------------------------------------------------


def _check_round(
    url: str,
    creds: dict | None,
    seed: int,
    round_no: int,
    printed: tuple[int, int, str | None],
    stats: Counter,
) -> None:
    """Recover a dataset whose writer was killed after printing ``printed`` (its last
    ``COMMITTED`` line); check it against the recomputed state."""
    last, rows, last_id = printed
    chunks_before = {k for k in _stored_keys(url, creds) if "/chunks/" in k}
    plain_load = round_no % 4 == 1
    try:
        ds = tl.load(url, creds=creds, reset=not plain_load)
    except tl.DatasetNotFoundError:
        assert last == 0, "a commit was printed, yet the dataset is not there"
        stats["no dataset yet"] += 1
        return
    try:
        if plain_load:  # what a crash leaves, before reset: opens, consistent; gc keeps it
            _assert_between(ds, seed, _head_number(ds))
            stats["plain gc removed chunks"] += ds.gc()["chunks"] > 0
            _assert_nothing_orphaned(url, creds, keep_staging=True)
            ds.reset()
        head = _head_number(ds)
        assert head in (last, last + 1), (head, last)
        stats["commit landed, not printed"] += head == last + 1
        if head == last and last_id is not None:
            assert ds.commit_id == last_id
        assert rows == cw.expected(seed, last).rows
        _assert_log(ds, head)
        assert not ds.has_head_changes
        _assert_state(ds, cw.expected(seed, head))
        assert ds.gc() == GC_ZERO
        left = {k for k in _assert_nothing_orphaned(url, creds) if "/chunks/" in k}
        stats["reset removed chunks"] += bool(chunks_before - left)
        if head > 1:  # an older commit is intact too
            past = random.Random(seed).randint(1, head - 1)
            old_id = ds.commits[head - past]["commit"]
            old = tl.load(url, creds=creds, read_only=True, version=old_id)
            _assert_state(old, cw.expected(seed, past))
        if round_no % 6 == 1:  # write on from the recovered state, in this process
            if head == 0:
                cw.create_schema(ds)
            cw.write_commit(ds, seed, head + 1)
            _assert_state(ds, cw.expected(seed, head + 1))
            assert ds.gc() == GC_ZERO
            _assert_state(tl.load(url, creds=creds, read_only=True), cw.expected(seed, head + 1))
            _assert_nothing_orphaned(url, creds)
            stats["continued"] += 1
    finally:
        ds.close()


def _round(target: Any, i: int, seed: int) -> tuple[str, Counter]:
    """One round: start a writer, kill it, check what it left. Returns the phase the
    kill landed in (the writer's last marker) and what the check saw."""
    rng = random.Random(seed)
    url = f"{target.url}/round-{i}"
    writer = WriterProcess(url, target.creds, seed)
    aim = _aim(rng, seed, STYLES[i % len(STYLES)], target.kind)
    phase = _kill_at_random(writer, rng, aim, target.kind)
    printed = writer.last_committed()
    stats: Counter = Counter()
    try:
        _check_round(url, target.creds, seed, i, printed, stats)
    except BaseException as err:
        said = "\n".join(" ".join(m) for _, m in writer.markers[-6:])
        raise AssertionError(
            f"round {i} (seed {seed}) killed after {phase}; the writer said:\n{said}\n"
            f"{writer.stderr}"
        ) from err
    return (phase if printed[0] else f"{phase} (before commit 1)"), stats


@pytest.mark.slow
def test_sigkill_at_random_moments_then_reset_restores_the_last_commit(storage_target):
    kind = storage_target.kind
    if kind == "memory":
        pytest.skip("a memory dataset cannot be reached from another process")
    rng = random.Random(20240611)
    seeds = [rng.randrange(1_000_000) for _ in range(ROUNDS[kind])]
    started = time.monotonic()
    # Rounds run in LANES threads: mostly they wait (for a writer to start, or to reach
    # the step its kill aims at), and each aims by the writer's own markers.
    with _dead_writer_lock_ok(), ThreadPoolExecutor(LANES) as pool:
        results = list(pool.map(_round, repeat(storage_target), range(len(seeds)), seeds))
    phases = Counter(phase for phase, _ in results)
    stats = sum((s for _, s in results), Counter())
    elapsed = time.monotonic() - started
    print(f"\n{kind}: {len(seeds)} rounds in {elapsed:.1f}s; killed after {dict(phases)}; {stats}")
    steps = Counter(phase.split()[0] for phase in phases.elements())
    assert steps["BATCH"] and steps["COMMITTING"], phases  # mid append/flush, mid commit
    assert sum(n for p, n in phases.items() if "before commit 1" in p), phases


# --- task 2: transient S3 faults ---------------------------------------------------------


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[Callable[..., Any]]:
    yield from proxies(s3_server)


class Flaky:
    """About one request in four fails: 503, 500, or a GET whose body breaks off; the
    first chunk written and the first chunk read are answered too late."""

    def __init__(self) -> None:
        self.delayed: set[str] = set()

    def __call__(self, n: int, method: str, path: str) -> str | None:
        if "/chunks/" in path and n > 20 and method not in self.delayed:
            self.delayed.add(method)
            return "delay"
        return {3: "503", 7: "500", 5: "truncate"}.get(n % 10)


def test_transient_s3_faults_are_retried_and_the_data_is_exact(
    fault_proxy, s3_bucket: str, s3_creds: dict, monkeypatch
) -> None:
    # creds have no timeout key; a short read timeout lets a delayed answer time out
    monkeypatch.setitem(S3Storage.__init__.__kwdefaults__, "read_timeout", 0.5)
    proxy = fault_proxy(Flaky())
    creds = {**s3_creds, "endpoint_url": proxy.url}
    url, seed = f"s3://{s3_bucket}/flaky", 206  # a seed whose batches use all four modes
    ds = tl.empty(url, creds=creds)
    cw.create_schema(ds)
    ids = [cw.write_commit(ds, seed, j) for j in (1, 2, 3)]
    _assert_state(ds, cw.expected(seed, 3))
    ds.close()

    again = tl.load(url, creds=creds, read_only=True)  # read back through the faults
    assert again.commit_id == ids[-1]
    _assert_log(again, 3)
    _assert_state(again, cw.expected(seed, 3))
    _assert_state(tl.load(url, creds=creds, version=ids[0]), cw.expected(seed, 1))
    direct = tl.load(url, creds=s3_creds, read_only=True)  # and straight from the server
    _assert_state(direct, cw.expected(seed, 3))
    _assert_nothing_orphaned(url, s3_creds)  # retried writes left nothing behind
    assert set(proxy.injected) == {"500", "503", "truncate", "delay", "retried"}, proxy.injected
    assert proxy.injected["delay"] == 2 and proxy.injected["retried"] >= 2, proxy.injected
    assert proxy.injected.total() > 20


def test_s3_outage_raises_storage_error_and_leaves_the_dataset_unchanged(
    fault_proxy, s3_bucket: str, s3_creds: dict, monkeypatch
) -> None:
    # A budget of 3 attempts (default 8) fails as surely and much sooner: botocore backs
    # off up to 0.05 * 2**attempt seconds between attempts.
    monkeypatch.setitem(S3Storage.__init__.__kwdefaults__, "max_attempts", 3)
    proxy = fault_proxy()
    creds = {**s3_creds, "endpoint_url": proxy.url}
    url, seed = f"s3://{s3_bucket}/outage", 298
    ds = tl.empty(url, creds=creds)
    cw.create_schema(ds)
    head = cw.write_commit(ds, seed, 1)
    reader = tl.load(url, creds=creds, read_only=True)  # manifests read, no chunk yet
    before = sorted(_stored_keys(url, s3_creds))

    proxy.down = True
    with pytest.raises(tl.StorageError, match="InternalError") as read_error:
        reader.img.numpy(aslist=True)
    with pytest.raises(tl.StorageError, match="InternalError") as write_error:
        ds.x.append(-1)  # one chunk to write: see test_a_failed_write_leaves_no_stale_error
    with pytest.raises(tl.StorageError, match="InternalError"):
        ds.commit("never stored")
    for err in (read_error.value, write_error.value):
        assert not isinstance(err, tl.FormatError)
    assert proxy.injected["down"] >= 3  # every attempt of the first request failed
    proxy.down = False

    assert sorted(_stored_keys(url, s3_creds)) == before
    for through in (creds, s3_creds):
        again = tl.load(url, creds=through, read_only=True)
        assert again.commit_id == head and not again.has_head_changes
        _assert_state(again, cw.expected(seed, 1))
    _assert_state(reader, cw.expected(seed, 1))  # the reader works again, unharmed
    ds.reset()  # drops the row that never reached storage
    _assert_state(ds, cw.expected(seed, 1))
    assert ds.gc() == GC_ZERO
    cw.write_commit(ds, seed, 2)  # and writing goes on
    ds.close()
    _assert_state(tl.load(url, creds=s3_creds, read_only=True), cw.expected(seed, 2))


def test_a_failed_write_leaves_no_stale_error(
    fault_proxy, s3_bucket: str, s3_creds: dict, monkeypatch
) -> None:
    monkeypatch.setitem(S3Storage.__init__.__kwdefaults__, "max_attempts", 2)
    proxy = fault_proxy()
    creds = {**s3_creds, "endpoint_url": proxy.url}
    ds = tl.empty(f"s3://{s3_bucket}/stale", creds=creds)
    names = [f"t{i}" for i in range(6)]
    with ds:
        for name in names:
            ds.create_tensor(name, dtype="int64", max_chunk_size=64)
    ds.commit("schema")
    proxy.down = True
    with pytest.raises(tl.StorageError), ds:  # more chunks than the writer keeps in flight
        ds.extend({name: list(range(100)) for name in names})
    time.sleep(0.5)  # every put still running has failed by now (2 attempts each)
    proxy.down = False
    try:
        ds.reset()  # nothing is in flight any more: this must not fail
        assert len(ds) == 0 and ds.gc() == GC_ZERO
    finally:
        ds.close()
