"""``@tl.compute`` under crashes: a killed eval resumes to the uninterrupted result.

1. The process running ``eval`` (``crash_eval.py``) is killed with SIGKILL at random
   moments: before the first checkpoint, between checkpoints, just after one. Either
   the whole process group goes at once (power loss) or only the parent, whose
   workers must then exit on their own. ``tl.load(url, reset=True)`` takes over the
   dead writer's lock with a ``StaleLockWarning`` and gives exactly the last
   checkpoint (recomputed from the item numbers, never read back from what the job
   wrote); evaluating ``items[k:]`` (or ``resume=True``) then finishes the job with the
   same content as an uninterrupted serial run, and nothing is left for ``gc``.
2. A worker that dies (SIGKILL, ``os._exit``, SIGKILL while it sends progress) is a
   ``TransformError`` naming the item range, never a hang, and the dataset is the last
   checkpoint. These evals run in ``crash_eval.py`` too, so that a hang is a failure
   after ``TIMEOUT`` rather than a test session that never ends.
3. A failing item in a worker process is a ``TransformError`` with the exact message,
   the item's exception as cause and the worker's traceback as the cause's cause.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tests.compute import crash_eval as ce

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(ce.__file__).resolve()

N, WORKERS, INTERVAL, DELAY_MS = 600, 2, 100, 3
ITEMS = list(range(N))
ROUNDS = {"local": 10, "s3": 3}
# seconds from EVAL to the first checkpoint and between checkpoints, until measured
GAPS = {"local": {"first": 1.4, "next": 0.25}, "s3": {"first": 2.0, "next": 0.5}}
GC_ZERO = {"chunks": 0, "segments": 0, "commits": 0, "staging": 0, "temp_files": 0}
TIMEOUT = 30  # seconds; no eval here takes a tenth of this: reaching it is a hang


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """An uninterrupted serial run, checked once against the item-number oracle."""
    ds = tl.empty("mem://compute-crash-reference", overwrite=True)
    ce.create_schema(ds)
    ce.crash_rows().eval(ITEMS, ds, progressbar=False)
    content = ce.content(ds)
    assert content == ce.expected(N)
    return content


def _message(k: int, name: str = "crash_rows") -> str:
    return f"Auto-commit during compute of {name} after {100 * k / N:.1f}% progress"


def _assert_at_checkpoint(ds: Any, k: int, schema_message: str = "schema") -> None:
    """``ds`` is exactly the checkpoint after the first ``k`` items, with nothing to gc."""
    head = ds.commits[0]
    assert head.get("samples_processed", 0) == k
    assert head["message"] == (_message(k) if k else schema_message)
    assert not ds.has_head_changes
    assert ce.content(ds) == ce.expected(k)
    assert ds.gc() == GC_ZERO


# --- 1. the eval process is killed ---------------------------------------------------


class EvalProcess:
    """``crash_eval.py`` in a new session (its own process group); markers with times."""

    ARGS = (str(N), str(WORKERS), str(INTERVAL), str(DELAY_MS))

    def __init__(self, url: str, creds: dict | None, stderr: Path) -> None:
        self._stderr_path = stderr
        with open(stderr, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), url, json.dumps(creds), *self.ARGS],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.markers: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.markers.append((time.monotonic(), line.strip()))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, marker: str, timeout: float = 60.0) -> float | None:
        """When ``marker`` arrived; None if the output ended without it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, m in self.markers:
                    if m == marker:
                        return t
                if self._eof:
                    return None
                left = deadline - time.monotonic()
                assert left > 0, f"crash_eval never printed {marker}: {self.failure()}"
                self._cond.wait(left)

    def seen(self, prefix: str) -> list[str]:
        with self._cond:
            return [m for _, m in self.markers if m.startswith(prefix)]

    def gaps(self) -> list[float]:
        """Seconds between consecutive checkpoints."""
        with self._cond:
            times = [t for t, m in self.markers if m.startswith("CHECKPOINT")]
        return [b - a for a, b in itertools.pairwise(times)]

    def first_gap(self) -> float | None:
        """Seconds from EVAL to the first checkpoint, if both were printed."""
        with self._cond:
            times = {m: t for t, m in self.markers}
        if "EVAL" in times and f"CHECKPOINT {INTERVAL}" in times:
            return times[f"CHECKPOINT {INTERVAL}"] - times["EVAL"]
        return None

    def kill(self, whole_group: bool) -> None:
        """SIGKILL the process group, or the parent alone; then wait for the group to go."""
        pgid = self.proc.pid  # start_new_session: the group leader
        if whole_group:
            os.killpg(pgid, signal.SIGKILL)
        else:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        # without the parent, its workers must exit on their own, and soon
        left = _wait_group_gone(pgid, 5.0)
        if left:  # they would hold the output pipe open (and run) forever
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self._reader.join(30)
        if not self._reader.is_alive():
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        assert self.proc.returncode in (-signal.SIGKILL, 0), self.failure()
        assert not left, f"processes {left} of the killed eval still ran 5 s after its parent"

    def failure(self) -> str:
        return f"rc {self.proc.poll()}, markers {self.markers[-4:]}, stderr:\n" + (
            self._stderr_path.read_text()
        )


def _group_members(pgid: int) -> list[int] | None:
    """Live (not zombie) processes of group ``pgid``; None where /proc is missing."""
    if not os.path.isdir("/proc"):
        return None
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _wait_group_gone(pgid: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        members = _group_members(pgid)
        if members is None:  # no /proc: give the workers the time they need to notice
            time.sleep(1.0)
            return []
        if not members or time.monotonic() > deadline:
            return members
        time.sleep(0.05)


def _kill_at_random(
    job: EvalProcess, rng: random.Random, gaps: dict[str, float], whole_group: bool, at_once: bool
) -> None:
    """Kill the job a random time after a random anchor: the start of eval (so before
    the first checkpoint) or one of its checkpoints; ``at_once``: as eval starts.
    ``gaps`` (``first``: from the start to the first checkpoint, ``next``: between
    checkpoints) is updated with what this job took, to aim the next one."""
    j = 0 if at_once else rng.randrange(N // INTERVAL)
    anchor = "EVAL" if j == 0 else f"CHECKPOINT {j * INTERVAL}"
    arrived = job.wait_for(anchor)
    if arrived is not None and not at_once:
        wait = rng.uniform(0, gaps["first"] if j == 0 else gaps["next"])
        time.sleep(max(0.0, arrived + wait - time.monotonic()))
    job.kill(whole_group)
    if job.gaps():
        gaps["next"] = statistics.median(job.gaps())
    gaps["first"] = job.first_gap() or gaps["first"]


def _load_after_crash(job: EvalProcess, url: str, creds: dict | None) -> Any:
    """``tl.load(reset=True)``: it takes over the dead writer's lock, with a warning."""
    if job.seen("DONE"):  # finished before the kill: the lock may be released already
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tl.StaleLockWarning)
            return tl.load(url, creds=creds, reset=True)
    with pytest.warns(tl.StaleLockWarning, match=str(job.proc.pid)):
        return tl.load(url, creds=creds, reset=True)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_killed_eval_resets_to_its_last_checkpoint_and_resumes(request, tmp_path, kind, reference):
    if kind == "s3":
        url = f"s3://{request.getfixturevalue('s3_bucket')}/crash"
        creds = request.getfixturevalue("s3_creds")
    else:
        url, creds = str(tmp_path / "crash"), None
    rng = random.Random(f"compute-crash-{kind}")
    gaps = dict(GAPS[kind])
    seen_k = []
    for i in range(ROUNDS[kind]):
        round_url = f"{url}/round-{i}"
        whole_group, resume = i % 2 == 0, i // 2 % 2 == 1
        job = EvalProcess(round_url, creds, tmp_path / f"stderr-{kind}-{i}.txt")
        assert job.wait_for("EVAL") is not None, job.failure()
        _kill_at_random(job, rng, gaps, whole_group, at_once=i == 0)
        printed = [int(m.split()[1]) for m in job.seen("CHECKPOINT")]
        where = f"round {i} ({kind}), checkpoints printed {printed}, done {job.seen('DONE')}"

        ds = _load_after_crash(job, round_url, creds)
        k = ds.commits[0].get("samples_processed", 0)
        seen_k.append(k)
        assert k % INTERVAL == 0 and k >= max(printed, default=0), where
        _assert_at_checkpoint(ds, k)

        if k < N:
            if resume:
                report = ce.crash_rows().eval(
                    ITEMS,
                    ds,
                    num_workers=WORKERS,
                    checkpoint_interval=INTERVAL,
                    resume=True,
                    progressbar=False,
                )
            else:
                report = ce.crash_rows().eval(
                    ITEMS[k:],
                    ds,
                    num_workers=WORKERS,
                    checkpoint_interval=INTERVAL,
                    progressbar=False,
                )
            assert report.items == N - k, where
            done = ds.commits[0]["samples_processed"]
            assert done == (N if resume else N - k), where
        ds.close()
        assert ce.content(tl.load(round_url, creds=creds, read_only=True)) == reference, where
        again = tl.load(round_url, creds=creds)
        assert again.gc() == GC_ZERO, where
        again.close()
    if kind == "local":  # the kills were spread: before the first checkpoint and after
        assert min(seen_k) == 0 and max(seen_k) >= 2 * INTERVAL, seen_k


# --- 2. a worker process dies ----------------------------------------------------------


def _failing_job(url: str, how: str, bad: int, stderr: Path) -> dict[str, Any]:
    """Run ``crash_eval.py`` with a worker that dies on item ``bad``; what it printed as
    ``FAILED``. A job still running after ``TIMEOUT`` is a hang: killed, and a failure."""
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), url, "null", *EvalProcess.ARGS, how, str(bad)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"eval still running {TIMEOUT} s after a worker died: a hang. {out}")
    failed = [line[len("FAILED ") :] for line in out.splitlines() if line.startswith("FAILED ")]
    assert proc.returncode == 0 and failed, f"rc {proc.returncode}: {out}{stderr.read_text()}"
    return json.loads(failed[0])


@pytest.mark.parametrize(
    "how,bad", [("sigkill", 337), ("sigkill", 175), ("exit", 42), ("sigkill-reporting", 250)]
)
def test_a_dead_worker_is_an_error_naming_the_items_never_a_hang(tmp_path, reference, how, bad):
    url = str(tmp_path / "ds")
    state = _failing_job(url, how, bad, tmp_path / "stderr.txt")
    message = state["message"]
    found = re.fullmatch(
        r"A worker process died \(killed, out of memory or crashed\) while processing items "
        r"(\d+) to (\d+) of the input data\. Last checkpoint: (\d+) samples processed\. "
        r"You can slice the input to resume from this point\.",
        message,
    )
    assert found, message
    first, last, k = map(int, found.groups())
    assert k <= first <= bad <= last and k % INTERVAL == 0, message
    # right after the error: at the checkpoint, nothing to gc, no worker left
    assert state["samples_processed"] == state["head_samples_processed"] == k, state
    assert not state["has_head_changes"] and state["gc"] == GC_ZERO, state
    assert state["live_workers"] == 0, state
    ds = tl.load(url)
    _assert_at_checkpoint(ds, k)
    # slicing the input from the checkpoint finishes the job
    ce.crash_rows().eval(
        ITEMS[k:], ds, num_workers=WORKERS, checkpoint_interval=INTERVAL, progressbar=False
    )
    assert ce.content(ds) == reference
    assert ds.gc() == GC_ZERO
    ds.close()


@tl.compute
def dies_storing_its_last_block(item: int, sample_out: Any, last: int) -> None:
    """Item ``last`` makes its worker die as it stores that block's chunks: a second
    after the block's result went back, so once the parent has every result (the rows
    carry no class names, so the chunks are stored behind the result)."""
    if item == last:
        from tensorlake.storage.local import LocalStorage

        def die(self: Any, key: str, data: Any) -> None:
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)

        LocalStorage._put = LocalStorage._put_parts = die  # type: ignore[method-assign]
    sample_out.x.append(np.full(1000, item % 251, np.uint8))


def test_a_worker_dead_before_storing_its_last_block_is_an_error_never_a_hang(tmp_path):
    """All results are in and no future can break: only the dead worker's exit code says
    that chunks the last commit would name were never stored."""
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("x", dtype="uint8")
    ds.commit("schema")
    caught: list[BaseException] = []

    def run() -> None:
        try:
            dies_storing_its_last_block(last=39).eval(
                list(range(40)), ds, num_workers=2, checkpoint_interval=20, progressbar=False
            )
        except BaseException as err:
            caught.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"eval still running {TIMEOUT} s after a worker died: a hang"
    assert len(caught) == 1 and isinstance(caught[0], tl.TransformError), caught
    assert str(caught[0]).startswith("A worker process died (killed, out of memory or crashed)")
    assert caught[0].samples_processed == 20 and len(ds) == 20 and not ds.has_head_changes
    assert ds.gc() == GC_ZERO
    assert ds.x.numpy()[:, 0].tolist() == list(range(20))
    ds.close()


# --- 3. an item fails in a worker process -----------------------------------------------


def _names(n: int) -> list[str]:
    return [f"file-{i:04d}.jpg" for i in range(n)]


@tl.compute
def fails_on(name: str, sample_out: Any, bad: int) -> None:
    item = int(name[5:9])
    if item == bad:
        raise ValueError(f"cannot decode {name}")
    for row in ce.rows(item):
        sample_out.append(row)


@pytest.fixture
def target(tmp_path) -> Iterator[Any]:
    ds = tl.empty(str(tmp_path / "ds"))
    ce.create_schema(ds)
    ds.commit("schema")
    yield ds
    ds.close()


def test_a_failing_item_in_a_worker_names_it_and_resets_to_the_checkpoint(target, reference):
    with pytest.raises(tl.TransformError) as info:
        fails_on(bad=257).eval(
            _names(N), target, num_workers=WORKERS, checkpoint_interval=INTERVAL, progressbar=False
        )
    err = info.value
    assert str(err) == (
        "Transform failed at index 257 of the input data on the item: 'file-0257.jpg'. "
        "Last checkpoint: 200 samples processed. You can slice the input to resume from "
        "this point."
    )
    assert err.index == 257 and err.item == "'file-0257.jpg'" and err.samples_processed == 200
    cause = err.__cause__
    assert type(cause) is ValueError and str(cause) == "cannot decode file-0257.jpg"
    remote = str(cause.__cause__)
    assert "fails_on" in remote and "ValueError: cannot decode file-0257.jpg" in remote
    head = target.commits[0]
    assert head["message"] == _message(200, "fails_on") and head["samples_processed"] == 200
    assert not target.has_head_changes and ce.content(target) == ce.expected(200)
    assert target.gc() == GC_ZERO
    # the fixed transform picks up where the checkpoint left off
    report = fails_on(bad=-1).eval(
        _names(N),
        target,
        num_workers=WORKERS,
        checkpoint_interval=INTERVAL,
        resume=True,
        progressbar=False,
    )
    assert report.items == N - 200 and target.commits[0]["samples_processed"] == N
    assert ce.content(target) == reference
    assert target.gc() == GC_ZERO
