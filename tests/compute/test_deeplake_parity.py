"""eval and pipelines with Deep Lake 3's arguments and meanings."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl

from .transforms import double_rows, flip_rows, skip_everything


def source(path, rows: int = 6, short: int | None = None) -> tl.Dataset:
    """``images`` (2x2 uint8 filled with i) and ``labels``; ``short`` labels only."""
    ds = tl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", dtype="uint8")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.images.extend(np.stack([np.full((2, 2), i, np.uint8) for i in range(rows)]))
        ds.labels.extend(np.arange(short if short is not None else rows, dtype=np.uint32) % 2)
    return ds


def target(path) -> tl.Dataset:
    ds = tl.empty(path, overwrite=True)
    with ds:
        ds.create_tensor("images", dtype="uint8")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
    return ds


@pytest.mark.parametrize(
    ("scheduler", "workers"), [("serial", 0), ("threaded", 2), ("processed", 2)]
)
def test_a_pipeline_passes_samples_read_as_deeplake_reads_them(tmp_path, scheduler, workers):
    src = source(tmp_path / "src")
    out = target(tmp_path / "out")
    pipeline = tl.compose([double_rows(), flip_rows()])
    pipeline.eval(src, out, num_workers=workers, scheduler=scheduler, progressbar=False)
    # double_rows reads dataset rows (sample_in.images.numpy()) and appends each twice,
    # the second stage reads those as sample_in.images.numpy() and sample_in["labels"]
    assert len(out) == 12
    assert out.images.numpy()[:, 0, 0].tolist() == [i * 2 + 1 for i in range(6) for _ in (0, 1)]
    assert out.labels.numpy().ravel().tolist() == [i % 2 for i in range(6) for _ in (0, 1)]


def test_rows_and_tensor_views_can_be_appended_as_they_are(tmp_path):
    @tl.compute
    def passthrough(sample_in, sample_out):
        sample_out.append({"images": sample_in.images, "labels": sample_in.labels})

    @tl.compute
    def again(sample_in, sample_out):
        sample_out.images.append(sample_in.images)
        sample_out.labels.append(sample_in.labels)

    src, out = source("mem://parity-src"), target("mem://parity-out")
    tl.compose([passthrough(), again()]).eval(src, out, progressbar=False)
    np.testing.assert_array_equal(out.images.numpy(), src.images.numpy())
    np.testing.assert_array_equal(out.labels.numpy(), src.labels.numpy())


def test_an_intermediate_row_names_what_it_lacks():
    @tl.compute
    def first(i, sample_out):
        sample_out.append({"images": np.zeros((2, 2), np.uint8), "labels": 0})

    @tl.compute
    def second(sample_in, sample_out):
        sample_out.append({"images": sample_in.imgs.numpy(), "labels": 0})

    out = target("mem://parity-missing")
    with pytest.raises(tl.TransformError) as err:
        tl.compose([first(), second()]).eval([0], out, progressbar=False)
    assert "has no tensor 'imgs'; it has ['images', 'labels']" in str(err.value.__cause__)


@pytest.mark.parametrize(("scheduler", "workers"), [("serial", 0), ("processed", 2)])
def test_pad_data_in_reads_to_the_longest_tensor(tmp_path, scheduler, workers):
    src = source(tmp_path / "src", rows=6, short=4)
    assert (len(src), src.max_len) == (4, 6)

    @tl.compute
    def copy(sample_in, sample_out):
        sample_out.append({"images": sample_in.images, "labels": sample_in["labels"]})

    out = target(tmp_path / "out")
    copy().eval(
        src, out, num_workers=workers, scheduler=scheduler, pad_data_in=True, progressbar=False
    )
    assert len(out.images) == 6 and len(out.labels) == 6
    labels = out.labels.numpy(aslist=True)
    assert [x.tolist() for x in labels] == [[0], [1], [0], [1], [], []]
    assert out.images[5].numpy()[0, 0] == 5
    short = target(tmp_path / "short")
    copy().eval(src, short, progressbar=False)  # without padding: len(src) rows
    assert len(short) == 4


def test_check_lengths_refuses_an_uneven_target_unless_asked(tmp_path):
    out = target(tmp_path / "out")
    with out:
        out.images.append(np.zeros((2, 2), np.uint8))
    src = source(tmp_path / "src")
    with pytest.raises(tl.DatasetError, match=r"different lengths.*check_lengths=False"):
        double_rows().eval(src, out, progressbar=False)
    assert len(out.images) == 1 and len(out.labels) == 0
    double_rows().eval(src, out, check_lengths=False, progressbar=False)
    assert (len(out.images), len(out.labels)) == (13, 12)


def test_all_samples_skipped_raises_and_writes_nothing(tmp_path):
    out = target(tmp_path / "out")
    before = out.commit_id
    with pytest.raises(tl.AllSamplesSkippedError, match="All 5 input items failed"):
        skip_everything().eval(list(range(5)), out, ignore_errors=True, progressbar=False)
    assert len(out.images) == 0 and out.commit_id == before
    assert isinstance(tl.AllSamplesSkippedError("x"), tl.TransformError)


def test_deeplake_arguments_are_taken_and_unknown_ones_named(tmp_path):
    src, out = source(tmp_path / "src"), target(tmp_path / "out")
    report = double_rows().eval(
        src,
        out,
        0,
        "threaded",
        False,
        False,
        True,  # check_lengths
        False,  # pad_data_in
        False,  # read_only_ok
        16,  # cache_size
        0,  # checkpoint_interval
        False,  # ignore_errors
        verbose=False,
        disable_rechunk=True,
    )
    assert report.samples == 12
    with pytest.raises(tl.TransformArgumentError, match=r"unexpected argument\(s\) \['nonsense'\]"):
        double_rows().eval(src, out, nonsense=1)
    with pytest.raises(TypeError):  # also a TypeError, as Python's own would be
        double_rows().eval(src, out, nonsense=1)


def test_verbose_false_drops_the_skipped_items_warning(tmp_path, recwarn):
    @tl.compute
    def odd_fails(i, sample_out):
        if i % 2:
            raise ValueError("odd")
        sample_out.append({"images": np.zeros((2, 2), np.uint8), "labels": 0})

    out = target(tmp_path / "out")
    odd_fails().eval(list(range(4)), out, ignore_errors=True, verbose=False, progressbar=False)
    assert len(out) == 2 and not [w for w in recwarn if "failed and were skipped" in str(w.message)]
    with pytest.warns(UserWarning, match="2 of 4 input items failed"):
        odd_fails().eval(list(range(4)), out, ignore_errors=True, progressbar=False)
