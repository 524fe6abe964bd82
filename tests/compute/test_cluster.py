"""``eval(scheduler="ray" | "dask")``: the guarantees of ``processed`` on a cluster.

A local Ray (2 CPUs) and a Dask ``LocalCluster`` (2 worker processes), each started once
for the module, write to the moto S3 server: output equal to a serial run for 1, 2 and
4 workers, checkpoints and resume, failing items, a worker killed mid-eval (the engine
retries the block: no row duplicated or lost), the driver killed then ``resume=True``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.engine.links.managed import env_prefix
from tests.compute import crash_eval as ce
from tests.compute.transforms import (
    content,
    create_schema,
    die_once,
    fail_on,
    link_rows,
    make_rows,
    running_at_once,
)

pytestmark = pytest.mark.slow

ITEMS = list(range(120))
ROOT = Path(__file__).resolve().parents[2]


MANAGED = "cluster-src"  # a managed creds key: its workers find it in their environment


@pytest.fixture(scope="module", params=["ray", "dask"])
def engine(request, s3_server):
    """The scheduler's name, with its cluster up (this process is its driver). The
    workers' environment holds the managed key's credentials; this process's does not."""
    prefix = env_prefix(MANAGED)
    workers_env = {
        prefix + "ENDPOINT_URL": s3_server,
        prefix + "AWS_ACCESS_KEY_ID": "testing",
        prefix + "AWS_SECRET_ACCESS_KEY": "testing",
    }
    if request.param == "ray":
        ray = pytest.importorskip("ray")
        ray.init(
            num_cpus=2,
            object_store_memory=200 << 20,
            include_dashboard=False,
            runtime_env={"env_vars": workers_env},
        )
        yield "ray"
        ray.shutdown()
    else:
        distributed = pytest.importorskip("distributed")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=40,
            env=workers_env,  # restarted workers (after a kill) get it too
        )
        client = distributed.Client(cluster)
        yield "dask"
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def reference():
    ds = tl.empty("mem://cluster-reference", overwrite=True)
    create_schema(ds)
    make_rows().eval(ITEMS, ds)
    return content(ds)


@pytest.fixture
def target(s3_bucket, s3_creds):
    def make(schema=create_schema):
        ds = tl.empty(f"s3://{s3_bucket}/ds", creds=s3_creds)
        schema(ds)
        ds.commit("schema")
        return ds

    return make


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_output_equals_a_serial_run(engine, target, reference, workers):
    ds = target()
    report = make_rows().eval(
        ITEMS, ds, num_workers=workers, scheduler=engine, checkpoint_interval=40, progressbar=False
    )
    assert content(ds) == reference
    assert report.items == len(ITEMS) and len(report.checkpoints) == 3
    assert [c.get("samples_processed") for c in ds.commits[:3]] == [120, 80, 40]


@pytest.mark.parametrize("workers", [1, 2])
def test_num_workers_bounds_the_blocks_running_at_once(engine, target, tmp_path, workers):
    """The cluster has 2 CPUs: with num_workers=1 no two items ever run together."""
    ds = target(_numbers)
    running_at_once(folder=str(tmp_path)).eval(
        list(range(60)), ds, num_workers=workers, scheduler=engine, progressbar=False
    )
    most = int(ds.x.numpy().max())
    assert most == workers if workers == 1 else 1 <= most <= workers


def test_a_memory_target_gets_its_chunks_back(engine, reference):
    ds = tl.empty(f"mem://cluster-{engine}", overwrite=True)
    create_schema(ds)
    make_rows().eval(ITEMS, ds, num_workers=2, scheduler=engine, progressbar=False)
    assert content(ds) == reference


def _numbers(ds):
    ds.create_tensor("x", dtype="int64")


def test_a_failing_item_names_it_resets_to_the_checkpoint_and_resume_finishes(engine, target):
    ds = target(_numbers)
    with pytest.raises(tl.TransformError) as info:
        fail_on(bad=97).eval(
            ITEMS, ds, num_workers=2, scheduler=engine, checkpoint_interval=30, progressbar=False
        )
    err = info.value
    assert err.index == 97 and err.samples_processed == 90
    assert "item 97 is broken" in repr(err.__cause__)
    assert "Traceback" in str(err.__cause__.__cause__)  # the worker's traceback, as text
    assert ds.x.numpy().ravel().tolist() == list(range(90))
    assert not ds.has_head_changes
    fail_on(bad=-1).eval(
        ITEMS,
        ds,
        num_workers=2,
        scheduler=engine,
        checkpoint_interval=30,
        resume=True,
        progressbar=False,
    )
    assert ds.x.numpy().ravel().tolist() == ITEMS


def test_ignore_errors_skips_and_reports(engine, target):
    ds = target(_numbers)
    with pytest.warns(UserWarning, match="1 of 120 input items failed"):
        report = fail_on(bad=33).eval(
            ITEMS, ds, num_workers=2, scheduler=engine, ignore_errors=True, progressbar=False
        )
    assert report.failed_indices == [33]
    assert ds.x.numpy().ravel().tolist() == [i for i in ITEMS if i != 33]


def test_a_killed_worker_is_retried_without_duplicates_or_losses(
    engine, target, reference, tmp_path
):
    ds = target()
    marker = tmp_path / "died"
    die_once(marker=str(marker), at=57).eval(
        ITEMS, ds, num_workers=2, scheduler=engine, checkpoint_interval=40, progressbar=False
    )
    assert marker.exists()  # a worker was killed on item 57
    assert content(ds) == reference


def test_link_creds_reach_the_workers_populated_or_managed(engine, s3_bucket, s3_creds, _s3_admin):
    """Populated creds travel with the job (memory only); a managed key's are found by
    each worker in its own environment (here: the cluster's, set before it started)."""
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    _s3_admin.put_object(Bucket=s3_bucket, Key="raw/a.png", Body=buffer.getvalue())
    assert not any(k.startswith(env_prefix(MANAGED)) for k in os.environ)
    for key, managed in (("populated", False), (MANAGED, True)):
        ds = tl.empty(f"s3://{s3_bucket}/links-{managed}", creds=s3_creds)
        ds.create_tensor("images", htype="link[image]", sample_compression="png", verify=True)
        ds.add_creds_key(key, managed=managed)
        if not managed:
            ds.populate_creds(key, s3_creds)
        link_rows(creds_key=key).eval(
            [f"s3://{s3_bucket}/raw/a.png"] * 6,
            ds,
            num_workers=2,
            scheduler=engine,
            progressbar=False,
        )
        assert len(ds) == 6
        if not managed:  # this process cannot resolve the managed key: its workers did
            assert np.array_equal(ds.images[5].numpy(), image)


def test_an_unpicklable_argument_is_refused_before_any_work(engine, target):
    ds = target()
    head = ds.commit_id
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        make_rows(copies=_Unpicklable()).eval(ITEMS, ds, num_workers=2, scheduler=engine)
    assert ds.commit_id == head and len(ds) == 0


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("not today")


def test_a_dataset_input_is_read_by_the_workers(engine, target, s3_bucket, s3_creds):
    source = tl.empty(f"s3://{s3_bucket}/source", creds=s3_creds)
    source.create_tensor("images", htype="image", sample_compression=None)
    source.create_tensor("labels", htype="class_label")
    rng = np.random.default_rng(0)
    for i in range(30):
        source.append({"images": rng.integers(0, 255, (4, 4, 3), np.uint8), "labels": i % 3})
    source.commit("rows")
    out = tl.empty(f"s3://{s3_bucket}/doubled", creds=s3_creds)
    out.create_tensor("images", htype="image", sample_compression=None)
    out.create_tensor("labels", htype="class_label")
    from tests.compute.transforms import double_rows

    double_rows().eval(source, out, num_workers=2, scheduler=engine, progressbar=False)
    assert len(out) == 60
    assert np.array_equal(out.images[::2].numpy(), source.images.numpy())
    assert out.labels[1::2].numpy().ravel().tolist() == source.labels.numpy().ravel().tolist()


def test_dask_takes_the_client_it_is_given(engine, target, reference):
    if engine != "dask":
        pytest.skip("client= is Dask's")
    import distributed

    ds = target()
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        make_rows().eval(ITEMS, ds, num_workers=2, scheduler="dask", client="localhost:8786")
    make_rows().eval(
        ITEMS,
        ds,
        num_workers=2,
        scheduler="dask",
        client=distributed.get_client(),
        progressbar=False,
    )
    assert content(ds) == reference


# --- the driver dies -------------------------------------------------------------------

N, INTERVAL = 160, 40


def test_a_killed_driver_leaves_the_last_checkpoint_and_resume_finishes(
    engine, s3_bucket, s3_creds, tmp_path
):
    """The eval runs in a driver process of its own, which starts its own local cluster
    (no ``ray.init`` / client: the scheduler's default); it is killed, with its whole
    process group, once a checkpoint is stored."""
    url = f"s3://{s3_bucket}/crash"
    env = {**os.environ, "CRASH_EVAL_SCHEDULER": engine, "PYTHONPATH": str(ROOT)}
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(ce.__file__)),
                url,
                json.dumps(s3_creds),
                str(N),
                "2",
                str(INTERVAL),
                "40",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith("CHECKPOINT") or time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    assert any(m.startswith("CHECKPOINT") for m in seen), (seen, stderr.read_text())

    with pytest.warns(tl.StaleLockWarning):
        ds = tl.load(url, creds=s3_creds, reset=True)
    k = ds.commits[0]["samples_processed"]
    assert 0 < k < N and k % INTERVAL == 0
    assert ce.content(ds) == ce.expected(k)
    ce.crash_rows().eval(
        list(range(N)),
        ds,
        num_workers=2,
        scheduler=engine,
        checkpoint_interval=INTERVAL,
        resume=True,
        progressbar=False,
    )
    assert ce.content(tl.load(url, creds=s3_creds, read_only=True)) == ce.expected(N)
