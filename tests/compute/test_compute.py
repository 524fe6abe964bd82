"""@tl.compute: order, equality with a serial run, checkpoints, errors, schedulers, targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest

import tensorlake as tl
from benchmarks.harness import slow_proxy
from tensorlake.engine.format import keys, records, segments
from tensorlake.engine.version import commit as version_commit
from tensorlake.storage import LocalStorage, _direct


def _schema(ds) -> None:
    with ds:
        ds.create_tensor("x", dtype="int64")
        ds.create_tensor("img", htype="image", sample_compression=None)
        ds.create_tensor("label", htype="class_label")
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("meta", htype="json")


@tl.compute
def make_rows(i, sample_out, copies=1):
    """0..2 rows per item, ragged shapes, labels met in an order that depends on i."""
    for c in range((i + copies) % 3):
        rng = np.random.default_rng(i * 10 + c)
        sample_out.append(
            {
                "x": np.arange(i % 4 + 1) + i,
                "img": rng.integers(0, 255, (4 + i % 3, 5, 3), dtype=np.uint8),
                "label": [f"class-{(i * 7 + c) % 11}"],
                "boxes": rng.uniform(0, 50, (c + 1, 4)).astype(np.float32),
                "meta": {"i": int(i), "c": c},
            }
        )


def _content(ds) -> dict:
    return {
        "x": [a.tolist() for a in ds.x.numpy(aslist=True)],
        "img": [a.tobytes() for a in ds.img.numpy(aslist=True)],
        "label": [a.tolist() for a in ds.label.numpy(aslist=True)],
        "names": list(ds.label.info.class_names),
        "boxes": [a.tobytes() for a in ds.boxes.numpy(aslist=True)],
        "meta": [m for m in ds.meta.data()["value"]] if len(ds.meta) else [],
    }


@pytest.fixture(scope="module")
def serial_reference():
    ds = tl.empty("mem://compute-reference", overwrite=True)
    _schema(ds)
    make_rows().eval(list(range(60)), ds, progressbar=False)
    return _content(ds)


@pytest.mark.parametrize(
    "scheduler,workers",
    [
        ("serial", 0),
        ("threaded", 1),
        ("threaded", 2),
        ("threaded", 4),
        ("processed", 1),
        ("processed", 2),
        ("processed", 4),
        ("processed-fork", 2),
        ("processed-forkserver", 2),
    ],
)
def test_same_rows_in_the_same_order_as_serial(
    tmp_path, monkeypatch, serial_reference, scheduler, workers
):
    scheduler, _, start_method = scheduler.partition("-")
    if start_method:
        monkeypatch.setenv("TENSORLAKE_START_METHOD", start_method)
    ds = tl.empty(str(tmp_path / "ds"))
    _schema(ds)
    report = make_rows().eval(
        list(range(60)), ds, num_workers=workers, scheduler=scheduler, progressbar=False
    )
    assert report.items == 60 and report.samples == len(serial_reference["x"])
    assert _content(ds) == serial_reference
    assert _content(tl.load(str(tmp_path / "ds"), read_only=True)) == serial_reference


def test_targets_memory_local_s3_with_processes(storage_target, serial_reference):
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    _schema(ds)
    make_rows().eval(range(60), ds, num_workers=2, checkpoint_interval=25, progressbar=False)
    assert _content(ds) == serial_reference
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert _content(again) == serial_reference
    assert again.commits[0]["samples_processed"] == 60


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
    _schema(ds)
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


def test_checkpoints_are_commits_in_the_log(capsys):
    ds = tl.empty("mem://compute-ckpt", overwrite=True)
    _schema(ds)
    report = make_rows().eval(np.arange(50), ds, checkpoint_interval=20, progressbar=False)
    assert len(report.checkpoints) == 3  # 20, 40, and the final 50
    commits = ds.commits
    assert [c["samples_processed"] for c in commits[:3]] == [50, 40, 20]
    assert commits[2]["message"] == "Auto-commit during compute of make_rows after 40.0% progress"
    assert commits[3]["message"] == "Auto-commit before compute of make_rows"  # the schema
    assert not ds.has_head_changes
    ds.log()
    assert "after 80.0% progress" in capsys.readouterr().out


@tl.compute
def fail_on(i, sample_out, bad):
    if i == bad:
        raise ValueError(f"item {i} is broken")
    sample_out.x.append(i)


@pytest.mark.parametrize("scheduler,workers", [("serial", 0), ("threaded", 2), ("processed", 2)])
def test_failure_resets_to_the_last_checkpoint(tmp_path, scheduler, workers):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(tl.TransformError) as info:
        fail_on(bad=57).eval(
            range(100),
            ds,
            num_workers=workers,
            scheduler=scheduler,
            checkpoint_interval=20,
            progressbar=False,
        )
    err = info.value
    assert str(err) == (
        "Transform failed at index 57 of the input data on the item: 57. Last checkpoint: "
        "40 samples processed. You can slice the input to resume from this point."
    )
    assert err.index == 57 and err.samples_processed == 40
    assert isinstance(err.__cause__, ValueError) and "item 57 is broken" in str(err.__cause__)
    if scheduler == "processed":
        assert "fail_on" in str(err.__cause__.__cause__)  # the worker's traceback
    assert ds.x.numpy().tolist() == list(range(40)) and not ds.has_head_changes
    assert ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0}
    # resume from the checkpoint with a fixed transform
    fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, resume=True, progressbar=False)
    assert ds.x.numpy().tolist() == list(range(100))


def _gate_checkpoint_stores(monkeypatch, gate):
    """Have the background thread that stores checkpoints call ``gate(n)`` before it
    stores its n-th commit (1-based)."""
    real_store = version_commit.PreparedCommit.store
    calls = []

    def store(self):
        if threading.current_thread().name.startswith("tl-checkpoint"):
            calls.append(self.id)
            gate(len(calls))
        real_store(self)

    monkeypatch.setattr(version_commit.PreparedCommit, "store", store)


@tl.compute
def signal_at(i, sample_out, at, event, fail=False):
    if i == at:
        event.set()
        if fail:
            raise ValueError(f"item {i} is broken")
    sample_out.x.append(i)


def test_items_run_on_while_checkpoints_are_stored(monkeypatch):
    """Storing a checkpoint (round trips, fsyncs) never holds up the transform: here the
    first one is only stored once item 70 has run, three checkpoints later; they are
    then stored in order."""
    reached_70 = threading.Event()
    waited = []
    _gate_checkpoint_stores(monkeypatch, lambda n: n == 1 and waited.append(reached_70.wait(30)))
    ds = tl.empty("mem://compute-ckpt-behind", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    report = signal_at(at=70, event=reached_70).eval(
        range(100), ds, checkpoint_interval=20, progressbar=False
    )
    assert waited == [True]
    assert [c["samples_processed"] for c in ds.commits[:5]] == [100, 80, 60, 40, 20]
    assert report.checkpoints == [c["commit"] for c in ds.commits[:5]][::-1]
    assert tl.load("mem://compute-ckpt-behind").x.numpy().tolist() == list(range(100))


def test_a_failure_while_a_checkpoint_is_stored_waits_for_it(monkeypatch):
    """The error names the last checkpoint that is stored: one still being stored when
    an item fails is waited for, and counts."""
    failing = threading.Event()
    _gate_checkpoint_stores(monkeypatch, lambda n: n == 1 and failing.wait(30))
    ds = tl.empty("mem://compute-ckpt-fail", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    with pytest.raises(tl.TransformError, match="Last checkpoint: 20 samples processed"):
        signal_at(at=25, event=failing, fail=True).eval(
            range(50), ds, checkpoint_interval=20, progressbar=False
        )
    assert ds.x.numpy().tolist() == list(range(20)) and not ds.has_head_changes


def test_a_checkpoint_that_cannot_be_stored_fails_the_eval_at_the_one_before(tmp_path, monkeypatch):
    def gate(n):
        if n == 2:
            raise tl.StorageError("disk full (injected)")

    _gate_checkpoint_stores(monkeypatch, gate)
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    ds.commit("schema")
    with pytest.raises(tl.StorageError, match="disk full"):
        fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, progressbar=False)
    for reopened in (ds, tl.load(str(tmp_path / "ds"))):
        assert reopened.x.numpy().tolist() == list(range(20))
        assert [c["samples_processed"] for c in reopened.commits[:1]] == [20]
    assert ds.gc()["commits"] == 0  # the commit that failed was never stored


def test_when_the_commit_before_the_eval_cannot_be_stored_the_changes_stay(tmp_path, monkeypatch):
    def gate(n):
        if n == 1:  # "Auto-commit before compute": the tensor created below
            raise tl.StorageError("disk full (injected)")

    _gate_checkpoint_stores(monkeypatch, gate)
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(tl.StorageError, match="disk full"):
        fail_on(bad=-1).eval(range(100), ds, checkpoint_interval=20, progressbar=False)
    for reopened in (ds, tl.load(str(tmp_path / "ds"))):
        assert list(reopened.tensors) == ["x"] and len(reopened.x) == 0
        assert reopened.has_head_changes and len(reopened.commits) == 1


def _chunk_keys_of_commit(storage, commit_id: str) -> list[str]:
    stored = records.read_commit(storage, commit_id).manifest
    manifest = segments.ManifestStore(storage).load(stored)
    return [
        keys.chunk_key(name, int(i))
        for name, state in manifest.tensors.items()
        for i in state.table.column("ids")
    ]


def test_a_checkpoint_waits_for_the_uploads_of_worker_processes(
    s3_server, s3_bucket, s3_creds, monkeypatch
):
    """Workers go on with their next block while their chunks upload, and report them
    stored; a checkpoint's branch pointer moves only once every chunk it names is
    stored. Here each chunk upload takes 0.4 s longer than anything else."""
    direct = tl.storage.from_url(f"s3://{s3_bucket}/uploads", creds=s3_creds)
    named_missing = []
    real_write_head = records.write_head

    def write_head(storage, branch, commit_id):
        keys = _chunk_keys_of_commit(direct, commit_id)
        named_missing.extend(k for k in keys if not direct.exists(k))
        real_write_head(storage, branch, commit_id)

    monkeypatch.setattr(records, "write_head", write_head)
    slow_chunks = lambda method, path: 0.4 if method == "PUT" and "/chunks/" in path else 0.0  # noqa: E731
    with slow_proxy(urlsplit(s3_server).port, slow_chunks) as endpoint:
        ds = tl.empty(direct.url, creds={**s3_creds, "endpoint_url": endpoint})
        ds.create_tensor("x", dtype="int64")
        ds.commit("schema")
        report = fail_on(bad=-1).eval(
            range(160), ds, num_workers=2, checkpoint_interval=40, progressbar=False
        )
        assert len(report.checkpoints) == 4 and not named_missing
        assert ds.x.numpy().tolist() == list(range(160))


def test_a_chunk_upload_that_fails_in_a_worker_fails_the_eval_at_the_checkpoint_before(
    s3_server, s3_bucket, s3_creds, monkeypatch
):
    refusing = threading.Event()  # set once the first checkpoint is stored
    real_write_head = records.write_head

    def write_head(storage, branch, commit_id):
        real_write_head(storage, branch, commit_id)
        if records.read_commit(storage, commit_id).commit.extra.get("samples_processed"):
            refusing.set()

    monkeypatch.setattr(records, "write_head", write_head)
    refuse = lambda method, path: refusing.is_set() and method == "PUT" and "/chunks/" in path  # noqa: E731
    with slow_proxy(urlsplit(s3_server).port, 0.0, refuse) as endpoint:
        url, creds = f"s3://{s3_bucket}/refused", {**s3_creds, "endpoint_url": endpoint}
        ds = tl.empty(url, creds=creds)
        ds.create_tensor("x", dtype="int64")
        ds.commit("schema")
        with pytest.raises(tl.StorageError, match="could not store the chunks of the block"):
            fail_on(bad=-1).eval(
                range(400), ds, num_workers=2, checkpoint_interval=40, progressbar=False
            )
        k = ds.commits[0]["samples_processed"]
        assert k >= 40 and k % 40 == 0 and ds.x.numpy().tolist() == list(range(k))
        assert ds.gc() == {"chunks": 0, "segments": 0, "commits": 0, "staging": 0}


def test_failure_without_checkpoints_restores_the_state_before_eval():
    ds = tl.empty("mem://compute-rollback", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.x.extend([-1, -2])  # uncommitted, kept
    with pytest.raises(tl.TransformError, match="Last checkpoint: 0 samples processed"):
        fail_on(bad=30).eval(range(50), ds, progressbar=False)
    assert ds.x.numpy().tolist() == [-1, -2] and ds.has_head_changes
    assert tl.load("mem://compute-rollback").x.numpy().tolist() == [-1, -2]


def test_ignore_errors_skips_and_reports(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.warns(UserWarning, match="1 of 30 input items failed"):
        report = fail_on(bad=12).eval(
            range(30), ds, num_workers=2, ignore_errors=True, progressbar=False
        )
    assert report.failed_indices == [12]
    assert ds.x.numpy().tolist() == [i for i in range(30) if i != 12]


def test_a_bad_sample_is_a_transform_error_naming_the_item():
    @tl.compute
    def bad_box(i, sample_out):
        sample_out.boxes.append(np.zeros((1, 5)) if i == 3 else np.zeros((1, 4)))

    ds = tl.empty("mem://compute-bad-sample", overwrite=True)
    ds.create_tensor("boxes", htype="bbox")
    with pytest.raises(tl.TransformError, match="index 3") as info:
        bad_box().eval(range(5), ds, progressbar=False)
    assert isinstance(info.value.__cause__, tl.SampleError)
    assert len(ds.boxes) == 0


def test_compose_chains_transforms():
    @tl.compute
    def expand(i, sample_out):
        sample_out.extend([{"v": i, "tag": "a"}, {"v": i, "tag": "b"}])

    @tl.compute
    def finish(row, sample_out, offset):
        sample_out.x.append(row["v"] * 10 + offset)
        sample_out.t.append(row["tag"])

    ds = tl.empty("mem://compute-compose", overwrite=True)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("t", htype="text")
    tl.compose([expand(), finish(offset=1)]).eval(range(3), ds, num_workers=2, progressbar=False)
    assert ds.x.numpy().tolist() == [1, 1, 11, 11, 21, 21]
    assert ds.t.text() == ["a", "b"] * 3


def test_dataset_as_input(tmp_path):
    src = tl.empty(str(tmp_path / "src"))
    src.create_tensor("x", dtype="int64")
    src.x.extend(list(range(20)))
    src.commit("source")

    @tl.compute
    def double(row, sample_out):
        sample_out.y.append(int(row.x.numpy()) * 2)

    for scheduler in ("threaded", "processed"):
        out = tl.empty(str(tmp_path / scheduler))
        out.create_tensor("y", dtype="int64")
        double().eval(src, out, num_workers=2, scheduler=scheduler, progressbar=False)
        assert out.y.numpy().tolist() == [2 * i for i in range(20)]
    view_out = tl.empty(str(tmp_path / "view"))
    view_out.create_tensor("y", dtype="int64")
    double().eval(src[5:8], view_out, num_workers=2, scheduler="threaded", progressbar=False)
    assert view_out.y.numpy().tolist() == [10, 12, 14]


@pytest.mark.parametrize(
    "setting,forked",
    [("alone", True), ("thread running", False), ("forkserver forced", False)],
)
def test_closures_from_main_run_in_worker_processes(tmp_path, setting, forked):
    """Workers are forked from a process where nothing else runs, else they come from a
    forkserver; closures and globals of ``__main__`` work either way."""
    script = textwrap.dedent(
        """
        import json
        import os
        import sys
        import threading
        import tensorlake as tl

        OFFSET = 1000

        def main(path, setting):
            factor = 3  # captured by the closure below
            parent = os.getpid()

            @tl.compute
            def scaled(i, sample_out):
                sample_out.x.append(i * factor + OFFSET)
                sample_out.forked.append(os.getppid() == parent)

            if setting == "thread running":
                threading.Thread(target=threading.Event().wait, daemon=True).start()
            ds = tl.empty(path)
            ds.create_tensor("x", dtype="int64")
            ds.create_tensor("forked", dtype="bool")
            scaled().eval(range(10), ds, num_workers=2, scheduler="processed", progressbar=False)
            print(json.dumps([ds.x.numpy().tolist(), sorted(set(ds.forked.numpy().tolist()))]))

        if __name__ == "__main__":
            main(*sys.argv[1:])
        """
    )
    path = tmp_path / "job.py"
    path.write_text(script)
    env = dict(os.environ)
    env.pop("TENSORLAKE_START_METHOD", None)
    if setting == "forkserver forced":
        env["TENSORLAKE_START_METHOD"] = "forkserver"
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "ds"), setting],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    values, fork_flags = json.loads(out.stdout.strip().splitlines()[-1])
    assert values == [i * 3 + 1000 for i in range(10)]
    assert fork_flags == [forked]


def test_progress_bar_counts_items_and_samples_from_worker_processes(monkeypatch, capsys):
    pipeline = sys.modules["tensorlake.compute.pipeline"]
    monkeypatch.setattr(pipeline, "_is_terminal", lambda stream: True)  # as in a terminal
    ds = tl.empty("mem://compute-bar", overwrite=True)
    _schema(ds)
    report = make_rows().eval(range(60), ds, num_workers=2)
    err = capsys.readouterr().err
    assert "make_rows" in err and "60/60" in err and f"samples={report.samples}" in err
    make_rows().eval(range(60), ds, num_workers=2, progressbar=False)
    assert capsys.readouterr().err == ""


def test_progress_in_logs_is_whole_lines(monkeypatch, capsys):
    """Output that is not a terminal (pytest captures it) gets plain lines, never ``\\r``
    redraws: one per LOG_LINE_SECONDS while items finish, and a last one at the end."""
    pipeline = sys.modules["tensorlake.compute.pipeline"]
    ds = tl.empty("mem://compute-log-lines", overwrite=True)
    _schema(ds)
    report = make_rows().eval(range(40), ds, num_workers=2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "\r" not in lines[0]
    assert "make_rows" in lines[0] and "40/40" in lines[0]
    assert f"samples={report.samples}" in lines[0]

    monkeypatch.setattr(pipeline, "LOG_LINE_SECONDS", 0.0)  # a line per update
    make_rows().eval(range(40), ds, num_workers=2)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 2 and lines[-1].startswith("make_rows: 100% 40/40")
    counts = [int(line.split("/40")[0].rsplit(" ", 1)[1]) for line in lines]
    assert counts == sorted(counts) and counts[0] < 40


def test_a_process_forks_the_workers_of_every_eval(tmp_path):
    """Nothing an eval leaves behind (a progress monitor, writer threads) may keep the
    next eval from forking."""
    script = textwrap.dedent(
        """
        import json, os, sys
        import tensorlake as tl

        parent = os.getpid()

        @tl.compute
        def mark(i, sample_out):
            sample_out.forked.append(os.getppid() == parent)

        ds = tl.empty(sys.argv[1])
        ds.create_tensor("forked", dtype="bool")
        for _ in range(3):
            mark().eval(range(8), ds, num_workers=2, checkpoint_interval=4)
        print(json.dumps(ds.forked.numpy().tolist()))
        """
    )
    path = tmp_path / "evals.py"
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "TENSORLAKE_START_METHOD"}
    out = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True] * 24


def test_a_bad_start_method_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_START_METHOD", "vfork")
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(ValueError, match="TENSORLAKE_START_METHOD must be one of"):
        make_rows().eval(range(4), ds, num_workers=2, progressbar=False)


def test_class_names_met_in_different_orders_by_workers_match_serial(tmp_path):
    @tl.compute
    def labels(i, sample_out):
        # each block of 10 items meets the new names in its own order
        sample_out.label.append([f"n{(i * 7919) % 23}", f"n{(i * 31) % 17}"])

    serial = tl.empty("mem://labels-serial", overwrite=True)
    serial.create_tensor("label", htype="class_label")
    labels().eval(range(200), serial, progressbar=False)
    parallel = tl.empty(str(tmp_path / "p"))
    parallel.create_tensor("label", htype="class_label")
    labels().eval(range(200), parallel, num_workers=4, progressbar=False)
    assert parallel.label.info.class_names == serial.label.info.class_names
    assert [a.tolist() for a in parallel.label.numpy(aslist=True)] == [
        a.tolist() for a in serial.label.numpy(aslist=True)
    ]
    assert parallel.gc()["chunks"] == 0  # rewritten blocks left nothing behind


def test_bad_arguments_are_clear_errors(tmp_path):
    ds = tl.empty("mem://compute-args", overwrite=True)
    with pytest.raises(tl.DatasetError, match="no tensors"):
        make_rows().eval(range(3), ds)
    ds.create_tensor("x", dtype="int64")
    with pytest.raises(TypeError, match="sized iterable"):
        make_rows().eval((i for i in range(3)), ds)
    with pytest.raises(ValueError, match="scheduler"):
        make_rows().eval(range(3), ds, num_workers=2, scheduler="spark")
    with pytest.raises(tl.DatasetError, match="view"):
        make_rows().eval(range(3), ds[0:1])
    with pytest.raises(TypeError, match="compose"):
        tl.compose([make_rows])
    with pytest.raises(tl.TransformError, match="index 0") as info:
        fail_on_missing().eval(range(2), ds, progressbar=False)
    assert "no tensor 'nope'" in str(info.value.__cause__)


@tl.compute
def fail_on_missing(i, sample_out):
    sample_out.nope.append(i)
