"""@tl.compute end to end: order, equality with a serial run, targets, compose, inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tests.compute.transforms import content, create_schema, fail_on, make_rows


@pytest.fixture(scope="module")
def serial_reference():
    ds = tl.empty("mem://compute-reference", overwrite=True)
    create_schema(ds)
    make_rows().eval(list(range(60)), ds, progressbar=False)
    return content(ds)


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
    create_schema(ds)
    report = make_rows().eval(
        list(range(60)), ds, num_workers=workers, scheduler=scheduler, progressbar=False
    )
    assert report.items == 60 and report.samples == len(serial_reference["x"])
    assert content(ds) == serial_reference
    assert content(tl.load(str(tmp_path / "ds"), read_only=True)) == serial_reference


def test_targets_memory_local_s3_with_processes(storage_target, serial_reference):
    ds = tl.empty(storage_target.url, creds=storage_target.creds, overwrite=True)
    create_schema(ds)
    make_rows().eval(range(60), ds, num_workers=2, checkpoint_interval=25, progressbar=False)
    assert content(ds) == serial_reference
    again = tl.load(storage_target.url, creds=storage_target.creds, read_only=True)
    assert content(again) == serial_reference
    assert again.commits[0]["samples_processed"] == 60


def test_ignore_errors_skips_and_reports(tmp_path):
    ds = tl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x", dtype="int64")
    with pytest.warns(UserWarning, match="1 of 30 input items failed"):
        report = fail_on(bad=12).eval(
            range(30), ds, num_workers=2, ignore_errors=True, progressbar=False
        )
    assert report.failed_indices == [12]
    assert ds.x.numpy().ravel().tolist() == [i for i in range(30) if i != 12]


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
    assert ds.x.numpy().ravel().tolist() == [1, 1, 11, 11, 21, 21]
    assert ds.t.text() == ["a", "b"] * 3


def test_dataset_as_input(tmp_path):
    src = tl.empty(str(tmp_path / "src"))
    src.create_tensor("x", dtype="int64")
    src.x.extend(list(range(20)))
    src.commit("source")

    @tl.compute
    def double(row, sample_out):
        sample_out.y.append(int(row.x.numpy()[0]) * 2)

    for scheduler in ("threaded", "processed"):
        out = tl.empty(str(tmp_path / scheduler))
        out.create_tensor("y", dtype="int64")
        double().eval(src, out, num_workers=2, scheduler=scheduler, progressbar=False)
        assert out.y.numpy().ravel().tolist() == [2 * i for i in range(20)]
    view_out = tl.empty(str(tmp_path / "view"))
    view_out.create_tensor("y", dtype="int64")
    double().eval(src[5:8], view_out, num_workers=2, scheduler="threaded", progressbar=False)
    assert view_out.y.numpy().ravel().tolist() == [10, 12, 14]


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
