"""Crashes, at scale: rounds of SIGKILL at random moments across every kind of work.

Each round runs one job (``crash_rounds_driver.py``: appends + flushes + commits, a
``@tl.compute`` eval with process workers, ``tl.ingest_classification`` from a local
folder or an S3 prefix, ``tl.ingest_coco``, ``tl.ingest_manifest``, ``tl.ingest_archive``,
a push to an S3 remote) in its own process group, kills it with SIGKILL at a random
moment (the parent alone, the whole group, or one worker), recovers (``tl.load(...,
reset=True)`` and finishing the work, ``resume=True``, pushing again), and then checks:

- right after the crash, the dataset is exactly one of the states the uninterrupted job
  passes through (a commit, a checkpoint: a prefix of the reference's rows);
- once recovered, its content equals the uninterrupted run's, row by row, every tensor
  (hidden ones too), dtypes, shapes and class names;
- ``ds.verify()`` (``tensorlake verify``) finds no problem.

The kill's moment is aimed with the markers the job prints (and the checkpoints a thread
here sees landing), using the times an uninterrupted run of the same job took between
them: after a random marker, within the gap to the next. Each round's randomness comes
from ``random.Random(f"{seed}-{kind}-{round}")`` (``TL_CRASH_SEED``, default 0); a
failing round is reported with its seed, marker, delay and victim, and
``TL_CRASH_ONLY=kind:round`` replays only that one. A failed round does not stop the
others of its kind: the test fails at the end listing every failed round, and prints
"crash rounds: survived / run" per kind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tests.api import crash_writer as cw
from tests.compute import crash_eval as ce
from tests.compute.test_compute_crash import _wait_group_gone  # one /proc scan

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "crash_rounds_driver.py"
SEED = os.environ.get("TL_CRASH_SEED", "0")
ONLY = os.environ.get("TL_CRASH_ONLY")  # "kind:round": replay one round
DELAY_MS = 6  # per image check and per pushed object, in the driver
WORKERS, INTERVAL = 2, 32
SURVIVED: dict[str, list[int]] = {}  # kind -> [survived, run]


# --- the job ---------------------------------------------------------------------------


def _checkpoint_of(url: str, creds: dict | None) -> Callable[[], str | None]:
    """A probe giving ``CHECKPOINT <p>`` for the stored head of ``url`` (None if none)."""
    from tensorlake.engine.format import records
    from tensorlake.storage import from_url

    storage: list[Any] = []

    def probe() -> str | None:
        try:
            if not storage:
                storage.append(from_url(url, creds=creds, read_only=True))
            head = records.read_head(storage[0], records.DEFAULT_BRANCH)
            commit = records.read_commit(storage[0], head).commit
        except Exception:  # not there yet, or being written
            return None
        done = None if commit is None else commit.extra.get("samples_processed")
        return None if done is None else f"CHECKPOINT {done}"

    return probe


class Job:
    """The driver in a new session; its markers (and the checkpoints seen) with times."""

    def __init__(self, kind: str, args: dict, log: Path, env: dict | None = None,
                 watch: tuple[str, dict | None] | None = None) -> None:  # fmt: skip
        self.log = log
        full_env = {**os.environ, "CRASH_ROUNDS_DELAY_MS": str(DELAY_MS), **(env or {})}
        with open(log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DRIVER), kind, json.dumps(args)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                env=full_env,
            )
        self.started = time.monotonic()
        self.markers: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._threads = [threading.Thread(target=self._read, daemon=True)]
        if watch is not None:
            self._threads.append(threading.Thread(target=self._watch, args=watch, daemon=True))
        for t in self._threads:
            t.start()

    def _add(self, marker: str) -> None:
        with self._cond:
            self.markers.append((time.monotonic(), marker))
            self._cond.notify_all()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._add(line.strip())
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _watch(self, url: str, creds: dict | None) -> None:
        probe, last = _checkpoint_of(url, creds), None
        while not self._eof:
            seen = probe()
            if seen is not None and seen != last:
                self._add(seen)
                last = seen
            time.sleep(0.02)

    def wait_for(self, marker: str, timeout: float = 20.0) -> float | None:
        """When ``marker`` arrived; None if the job ended (or ``timeout`` passed) first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, m in self.markers:
                    if m == marker:
                        return t
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    return None
                self._cond.wait(left)

    def seen(self, prefix: str) -> list[str]:
        with self._cond:
            return [m for _, m in self.markers if m.startswith(prefix)]

    def finish(self, timeout: float = 120.0) -> None:
        """Wait for an uninterrupted run to end; it must have printed DONE."""
        self.proc.wait(timeout)
        self._close()
        assert self.proc.returncode == 0 and self.seen("DONE"), self.failure()

    def kill(self, victim: str) -> str:
        """SIGKILL ``victim`` (``parent``, ``group``, or ``worker``: one worker process,
        the parent where none runs); the group must then be gone within 5 s. Returns
        who was killed."""
        pgid = self.proc.pid
        if victim == "worker":
            workers = _children(pgid)
            random.Random(pgid).shuffle(workers)
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):  # it exited since it was listed
                    os.kill(worker, signal.SIGKILL)
                    break
            else:  # no worker (left) to kill
                victim = "parent"
        if victim == "group":
            os.killpg(pgid, signal.SIGKILL)
        elif victim == "parent":
            self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(30)  # a worker's death: the parent fails and exits
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # its threads' stacks, into the log
            time.sleep(1.0)
            raise AssertionError(f"still running 30 s after the {victim} was killed: "
                                 + self.failure(tail=12000)) from None  # fmt: skip
        finally:
            left = _wait_group_gone(pgid, 5.0)
            if left:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(10)  # reaped: no "still running" warning at its collection
            self._close()
        assert not left, f"processes {left} still ran 5 s after the {victim} was killed"
        assert self.proc.returncode in (-signal.SIGKILL, 0), self.failure()
        return victim

    def abandon(self) -> None:
        """After a failed round: the job's processes killed, reaped and its pipe closed
        (nothing left for the garbage collector to warn about in a later test)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self._close()

    def _close(self) -> None:
        for t in self._threads:
            t.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def failure(self, tail: int = 3000) -> str:
        return (
            f"rc {self.proc.poll()}, markers {self.markers[-4:]}, stderr:\n"
            + (self.log.read_text()[-tail:])
        )


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


# --- content -----------------------------------------------------------------------------

_LISTED = ("json", "text", "list", "tag")


def content(ds: Any) -> dict[str, Any]:
    """Every tensor (hidden ones too): htype, dtype, class names and each row's value
    (dtype, shape and bytes for arrays)."""
    out: dict[str, Any] = {}
    for name in sorted(ds._tensor_names(include_hidden=True)):
        t = ds[name]
        if not len(t):
            rows: list[Any] = []
        elif t.htype in _LISTED:
            rows = list(t.data()["value"])
        else:
            rows = [(a.dtype.str, a.shape, a.tobytes()) for a in t.numpy(aslist=True)]
        names = t.info.get("class_names") if t.htype == "class_label" else None
        out[name] = {"htype": t.htype, "dtype": str(t.dtype), "class_names": names, "rows": rows}
    return out


def assert_same(got: dict[str, Any], want: dict[str, Any], prefix: bool = False) -> None:
    """``got`` is ``want`` (``prefix``: its first rows, as many in every tensor; class
    names a prefix too), row by row; the first difference named."""
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    lengths = {len(g["rows"]) for g in got.values()}
    if prefix:
        assert len(lengths) <= 1, f"tensors of different lengths after a crash: {lengths}"
    for name, g in got.items():
        w = want[name]
        assert (g["htype"], g["dtype"]) == (w["htype"], w["dtype"]), name
        rows = w["rows"][: len(g["rows"])] if prefix else w["rows"]
        assert len(g["rows"]) == len(rows), f"{name}: {len(g['rows'])} rows, want {len(rows)}"
        for r, (a, b) in enumerate(zip(g["rows"], rows)):
            assert a == b, f"{name}[{r}] differs from the uninterrupted run's"
        if prefix and g["class_names"] is not None:
            assert list(w["class_names"][: len(g["class_names"])]) == list(g["class_names"])
        else:
            assert g["class_names"] == w["class_names"], name


def assert_verified(ds: Any) -> None:
    """``ds.verify()`` finds no problem; for a local dataset ``tensorlake verify`` (the
    command, run here) neither."""
    from tensorlake.cli.main import main as cli

    report = ds.verify()
    assert report.ok and not report.problems, str(report)
    if "://" not in ds.path:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli(["verify", ds.path, "--json"])
        said = json.loads(out.getvalue())
        assert code == 0 and said["ok"] and not said["problems"], out.getvalue()


@contextlib.contextmanager
def stale_lock_ok() -> Iterator[None]:
    """Taking over a killed job's lock warns; expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tl.StaleLockWarning)
        yield


# --- rounds ------------------------------------------------------------------------------


@dataclass
class Kind:
    """How one kind of work is run, killed and recovered."""

    name: str
    driver: str  # the driver's kind
    args: Callable[[int], dict]  # round -> the driver's arguments (-1: the reference)
    recover: Callable[[int, dict, Job], None]  # recovers and checks (raises if wrong)
    rounds: int
    victims: tuple[str, ...] = ("parent",)
    watch: Callable[[dict], tuple[str, dict | None]] | None = None  # checkpoints of
    env: Callable[[int], dict] = field(default=lambda i: {})
    prepare: Callable[[int], None] = field(default=lambda i: None)


def run_rounds(kind: Kind, tmp_path: Path) -> None:
    """The reference run (timing the markers), then ``kind.rounds`` killed rounds."""
    kind.prepare(-1)
    ref_args = kind.args(-1)
    watch = kind.watch(ref_args) if kind.watch else None
    ref = Job(kind.driver, ref_args, tmp_path / "ref.log", kind.env(-1), watch)
    ref.finish()
    timeline = [(t - ref.started, m) for t, m in ref.markers if m != "DONE"]
    tally = SURVIVED.setdefault(kind.name, [0, 0])
    failures = []
    for i in range(kind.rounds):
        if ONLY and f"{kind.name}:{i}" != ONLY:
            continue
        rng = random.Random(f"{SEED}-{kind.name}-{i}")
        k = rng.randrange(len(timeline))
        anchor = timeline[k][1]
        gap = timeline[k + 1][0] if k + 1 < len(timeline) else ref.markers[-1][0] - ref.started
        delay = rng.uniform(0, max(0.0, gap - timeline[k][0]))
        victim = kind.victims[i % len(kind.victims)]
        where = (
            f"{kind.name} round {i} (TL_CRASH_SEED={SEED} TL_CRASH_ONLY={kind.name}:{i}): "
            f"kill the {victim} {delay * 1000:.0f} ms after {anchor!r}"
        )
        tally[1] += 1
        job = None
        try:
            kind.prepare(i)
            args = kind.args(i)
            job = Job(kind.driver, args, tmp_path / f"round-{i}.log", kind.env(i),
                      kind.watch(args) if kind.watch else None)  # fmt: skip
            arrived = job.wait_for(anchor)
            if arrived is not None:
                time.sleep(max(0.0, arrived + delay - time.monotonic()))
            killed = job.kill(victim)
            where += f"; killed the {killed} after {job.markers[-1][1] if job.markers else None!r}"
            kind.recover(i, args, job)
        except Exception:
            failures.append(f"{where}:\n{traceback.format_exc()}")
            if job is not None:
                job.abandon()
            continue
        tally[0] += 1
        print(where)
    print(f"crash rounds: {kind.name}: {tally[0]} / {tally[1]} survived")
    assert not failures, "\n\n".join(failures)


def _head_number(ds: Any) -> int:
    listed = ds.commits
    return int(listed[0]["message"].split()[1]) if listed else 0


# --- appends + flush + commit ------------------------------------------------------------

APPEND_COMMITS = 5


@pytest.mark.parametrize("where", ["local", "s3"])
def test_killed_appends_reset_to_a_commit_and_finish_as_uninterrupted(request, tmp_path, where):
    if where == "s3":
        base, creds = f"s3://{request.getfixturevalue('s3_bucket')}/appends", request.getfixturevalue("s3_creds")  # fmt: skip
    else:
        base, creds = str(tmp_path / "appends"), None
    seed = 7
    states: dict[int, dict[str, Any]] = {}

    def args(i: int) -> dict:
        return {"url": f"{base}/{i}", "creds": creds, "seed": seed, "commits": APPEND_COMMITS}

    def reference(j: int) -> dict[str, Any]:
        """The reference run's content at commit ``j``."""
        if j not in states:
            ref = tl.load(f"{base}/-1", creds=creds, read_only=True)
            ids = {c["message"]: c["commit"] for c in ref.commits}
            states[j] = content(tl.load(f"{base}/-1", creds=creds, read_only=True, version=ids[f"commit {j}"]))  # fmt: skip
        return states[j]

    def recover(i: int, a: dict, job: Job) -> None:
        try:
            with stale_lock_ok():
                ds = tl.load(a["url"], creds=creds, reset=True)
        except tl.DatasetNotFoundError:
            assert not job.seen("CREATED"), "created, yet not found"
            ds = tl.empty(a["url"], creds=creds)
        head = _head_number(ds)
        assert head >= len(job.seen("COMMITTED")), (head, job.seen("COMMITTED")[-1:])
        assert not ds.has_head_changes
        if head:
            assert_same(content(ds), reference(head))
        else:
            assert not ds._tensor_names(include_hidden=True)
            cw.create_schema(ds)
        for j in range(head + 1, APPEND_COMMITS + 1):
            cw.write_commit(ds, seed, j)
        ds.close()
        again = tl.load(a["url"], creds=creds, read_only=True)
        assert_same(content(again), reference(APPEND_COMMITS))
        assert [c["message"] for c in again.commits] == [
            f"commit {j}" for j in range(APPEND_COMMITS, 0, -1)
        ]
        assert_verified(again)

    rounds = {"local": 7, "s3": 3}[where]
    run_rounds(Kind(f"appends-{where}", "appends", args, recover, rounds), tmp_path)


# --- compute: an eval with process workers ---------------------------------------------

EVAL_ITEMS, EVAL_INTERVAL = 300, 50


@pytest.mark.parametrize("where", ["local", "s3"])
def test_killed_eval_resets_to_a_checkpoint_and_resumes_as_uninterrupted(request, tmp_path, where):
    if where == "s3":
        base, creds = f"s3://{request.getfixturevalue('s3_bucket')}/eval", request.getfixturevalue("s3_creds")  # fmt: skip
    else:
        base, creds = str(tmp_path / "eval"), None
    want = ce.expected(EVAL_ITEMS)
    reference: list[dict[str, Any]] = []

    def args(i: int) -> dict:
        return {"url": f"{base}/{i}", "creds": creds, "n": EVAL_ITEMS, "workers": WORKERS,
                "interval": EVAL_INTERVAL, "delay_ms": 3}  # fmt: skip

    def recover(i: int, a: dict, job: Job) -> None:
        if not reference:
            ref = tl.load(f"{base}/-1", creds=creds, read_only=True)
            assert ce.content(ref) == want
            reference.append(content(ref))
        try:
            with stale_lock_ok():
                ds = tl.load(a["url"], creds=creds, reset=True)
        except tl.DatasetNotFoundError:
            assert not job.seen("SCHEMA"), "the schema was committed, yet no dataset"
            ds = tl.empty(a["url"], creds=creds)
        if "img" not in ds.tensors:  # killed before the schema was committed
            assert not job.seen("SCHEMA")
            ce.create_schema(ds)
            ds.commit("schema")
        k = ds.commits[0].get("samples_processed", 0)
        printed = [int(m.split()[1]) for m in job.seen("CHECKPOINT")]
        assert k >= max(printed, default=0) and k % EVAL_INTERVAL == 0, (k, printed)
        assert not ds.has_head_changes and ce.content(ds) == ce.expected(k)
        ce.crash_rows().eval(
            list(range(EVAL_ITEMS)), ds, checkpoint_interval=EVAL_INTERVAL, resume=True,
            progressbar=False,
        )  # fmt: skip
        ds.close()
        again = tl.load(a["url"], creds=creds, read_only=True)
        assert again.commits[0]["samples_processed"] == EVAL_ITEMS
        assert_same(content(again), reference[0])
        assert_verified(again)

    rounds = {"local": 6, "s3": 3}[where]
    kind = Kind(f"compute-{where}", "compute", args, recover, rounds,
                victims=("parent", "group", "worker"), watch=lambda a: (a["url"], creds))  # fmt: skip
    run_rounds(kind, tmp_path)


# --- ingestion ----------------------------------------------------------------------------


def _jpeg(seed: int, size: tuple[int, int] = (8, 10)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="JPEG")
    return out.getvalue()


def _classification_files() -> dict[str, bytes]:
    """Three classes, 160 images: five batches of 32 files."""
    classes = ("cat", "dog", "eel")
    files = {f"{c}/{i:03d}.jpg": _jpeg(i * 7 + k) for k, c in enumerate(classes) for i in range(53)}
    return files | {"cat/053.jpg": _jpeg(1)}


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def ingest_rounds(name: str, driver: str, tmp_path: Path, rounds: int, args: Callable[[int], dict],
                  dest_creds: dict | None = None) -> None:  # fmt: skip
    """Rounds of a killed ingest: after the crash, the dataset is a checkpoint (a prefix
    of the reference's rows) or absent; ``resume=True`` makes it the reference."""
    from tests import crash_rounds_driver as driver_module

    reference: list[dict[str, Any]] = []

    def recover(i: int, a: dict, job: Job) -> None:
        if not reference:
            reference.append(content(tl.load(args(-1)["dest"], creds=dest_creds, read_only=True)))
        want = reference[0]
        if tl.exists(a["dest"], creds=dest_creds):
            with stale_lock_ok():
                ds = tl.load(a["dest"], creds=dest_creds, reset=True)
            assert not ds.has_head_changes
            head = ds.commits[0] if ds.commits else {}
            printed = [int(m.split()[1]) for m in job.seen("CHECKPOINT")]
            if "samples_processed" in head:  # a checkpoint: at least the last one seen
                assert head["samples_processed"] >= max(printed, default=0), (head, printed)
            if job.seen("DONE"):
                assert_same(content(ds), want)
            elif ds._tensor_names(include_hidden=True):
                assert_same(content(ds), want, prefix=True)
            ds.close()
        with stale_lock_ok():
            ds = driver_module.ingest(driver, {**a, "workers": 0}, resume=True)
        ds.close()
        again = tl.load(a["dest"], creds=dest_creds, read_only=True)
        assert_same(content(again), want)
        assert_verified(again)

    kind = Kind(name, driver, args, recover, rounds, victims=("parent", "group", "worker"),
                watch=lambda a: (a["dest"], dest_creds))  # fmt: skip
    run_rounds(kind, tmp_path)


def test_killed_folder_ingest_resumes_as_uninterrupted(tmp_path):
    src = _write_tree(tmp_path / "src", _classification_files())

    def args(i: int) -> dict:
        return {"src": str(src), "src_creds": None, "dest": str(tmp_path / f"ds-{i}"),
                "dest_creds": None, "workers": WORKERS, "interval": INTERVAL}  # fmt: skip

    ingest_rounds("classification-local", "classification", tmp_path, 5, args)


def test_killed_s3_prefix_ingest_resumes_as_uninterrupted(tmp_path, s3_bucket, s3_creds, _s3_admin):
    for key, data in _classification_files().items():
        _s3_admin.put_object(Bucket=s3_bucket, Key=f"src/{key}", Body=data)

    def args(i: int) -> dict:
        return {"src": f"s3://{s3_bucket}/src/", "src_creds": s3_creds,
                "dest": f"s3://{s3_bucket}/ds-{i}", "dest_creds": s3_creds,
                "workers": WORKERS, "interval": INTERVAL}  # fmt: skip

    ingest_rounds("classification-s3", "classification", tmp_path, 5, args, s3_creds)


def test_killed_coco_ingest_resumes_as_uninterrupted(tmp_path):
    from examples.synthetic_coco import generate

    annotations = generate(tmp_path / "coco", 40, width=32, height=24)

    def args(i: int) -> dict:
        return {"images": str(tmp_path / "coco" / "images"), "annotations": str(annotations),
                "dest": str(tmp_path / f"ds-{i}"), "workers": WORKERS, "interval": 8}  # fmt: skip

    ingest_rounds("coco", "coco", tmp_path, 5, args)


def test_killed_manifest_ingest_resumes_as_uninterrupted(tmp_path):
    files = _write_tree(tmp_path / "files", {f"{i:03d}.jpg": _jpeg(i, (9, 7)) for i in range(60)})
    doc = {"images": [{"objectUrl": str(files / f"{i:03d}.jpg"), "title": f"image {i}",
                       "clientMetadata": {"n": i, "odd": i % 2 == 1}} for i in range(60)]}  # fmt: skip
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(doc))

    def args(i: int) -> dict:
        return {"manifest": str(manifest), "dest": str(tmp_path / f"ds-{i}"),
                "workers": WORKERS, "interval": 10}  # fmt: skip

    ingest_rounds("manifest", "manifest", tmp_path, 5, args)


def test_killed_archive_ingest_resumes_as_uninterrupted(tmp_path):
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for key, data in sorted(_classification_files().items()):
            info = tarfile.TarInfo(f"pets/{key}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "work").mkdir()

    def args(i: int) -> dict:
        return {"src": str(archive), "dest": str(tmp_path / f"ds-{i}"),
                "tmp_dir": str(tmp_path / "work"), "workers": WORKERS, "interval": INTERVAL}  # fmt: skip

    ingest_rounds("archive", "archive", tmp_path, 6, args)
    assert os.listdir(tmp_path / "work") == [], "an archive's workspace was left behind"


# --- push to an S3 remote -----------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a local copy but its lock and registry record."""
    from tensorlake.api.names import RECORD_NAME

    out = {}
    for parent, _, files in os.walk(root):
        for f in files:
            rel = Path(parent, f).relative_to(root).as_posix()
            if rel not in ("lock", RECORD_NAME):
                out[rel] = Path(parent, f).read_bytes()
    return out


def test_killed_push_publishes_nothing_and_pushing_again_publishes_it_whole(
    tmp_path, s3_bucket, s3_server, monkeypatch
):
    from tensorlake.registry.remote import Remote
    from tests.registry.conftest import make_local

    for key in ("REMOTE", "ENDPOINT_URL", "PROFILE", "REGION", "PUBLIC"):
        monkeypatch.delenv(f"TENSORLAKE_{key}", raising=False)
    monkeypatch.setenv("TENSORLAKE_ENDPOINT_URL", s3_server)
    with monkeypatch.context() as m:  # ~4 KB chunks: dozens of objects to push
        m.setenv("TENSORLAKE_CHUNK_SIZE", "4096")
        template = make_local(tmp_path / "template", "flower", rows=80)
        template.close()
    want = _tree(tmp_path / "template" / "datasets" / "flower")
    reference = content(tl.load(tmp_path / "template" / "datasets" / "flower", read_only=True))

    def env(i: int) -> dict:
        return {"TENSORLAKE_HOME": str(tmp_path / f"home-{i}"),
                "TENSORLAKE_REMOTE": f"s3://{s3_bucket}/remote-{i}",
                "TENSORLAKE_IO_THREADS": "2"}  # fmt: skip

    def prepare(i: int) -> None:
        shutil.copytree(tmp_path / "template", tmp_path / f"home-{i}")

    def recover(i: int, a: dict, job: Job) -> None:
        for name, value in env(i).items():
            monkeypatch.setenv(name, value)
        remote = Remote(env(i)["TENSORLAKE_REMOTE"], {"endpoint_url": s3_server})
        published = [v.number for v in remote.versions("flower")]
        assert published == ([1] if job.seen("DONE") else published) and published in ([], [1])
        with stale_lock_ok():
            report = tl.registry.push("flower", progressbar=False)
        assert report.version == 1
        assert [(v.number, v.commit) for v in remote.versions("flower")] == [(1, report.commit)]
        assert _tree(tmp_path / f"home-{i}" / "datasets" / "flower") == want  # unchanged
        monkeypatch.setenv("TENSORLAKE_HOME", str(tmp_path / f"pulled-{i}"))
        tl.registry.pull("flower", progressbar=False)
        assert _tree(tmp_path / f"pulled-{i}" / "datasets" / "flower") == want
        pulled = tl.load("flower", read_only=True)
        assert_same(content(pulled), reference)
        assert_verified(pulled)

    kind = Kind("push", "push", lambda i: {"name": "flower"}, recover, 7, env=env, prepare=prepare)
    run_rounds(kind, tmp_path)


# --- a kill between creating the dataset and its first commit -------------------------


@pytest.mark.parametrize("kind", ["classification", "coco", "manifest", "archive"])
def test_resume_after_a_kill_before_the_first_commit_makes_the_dataset(tmp_path, kind):
    """What such a kill leaves (seed 1 found it): an empty dataset, no commit, no tensor.
    ``resume=True`` made it an ``IngestError`` ("not made by ingest_..."); it is made as
    new, equal to an uninterrupted ingest."""
    from tests import crash_rounds_driver as driver_module

    files = {f"{c}/{i}.jpg": _jpeg(i + 9 * k) for k, c in enumerate("ab") for i in range(5)}
    src = _write_tree(tmp_path / "src", files)
    a: dict[str, Any] = {"src": str(src), "src_creds": None, "dest_creds": None,
                         "workers": 0, "interval": 0, "tmp_dir": str(tmp_path)}  # fmt: skip
    if kind == "coco":
        from examples.synthetic_coco import generate

        a["annotations"] = str(generate(tmp_path / "coco", 4, width=16, height=12))
        a["images"] = str(tmp_path / "coco" / "images")
    elif kind == "manifest":
        a["manifest"] = str(tmp_path / "manifest.json")
        urls = [{"objectUrl": str(src / k)} for k in sorted(files)]
        Path(a["manifest"]).write_text(json.dumps({"images": urls}))
    elif kind == "archive":
        a["src"] = str(tmp_path / "src.tar")
        with tarfile.open(a["src"], "w") as tar:
            tar.add(src, arcname="src")
    want = content(driver_module.ingest(kind, {**a, "dest": str(tmp_path / "ref")}))
    tl.empty(tmp_path / "ds").close()
    ds = driver_module.ingest(kind, {**a, "dest": str(tmp_path / "ds")}, resume=True)
    assert_same(content(ds), want)
    assert_verified(ds)
