"""ingest_classification: folders and S3 prefixes of <class>/<file> or <split>/<class>/<file>."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.ingestion.classification import SOURCES_TENSOR

ROOT = str(Path(tl.__file__).resolve().parents[1])


def _image(seed: int, fmt: str, size: tuple[int, int] = (12, 16)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format=fmt)
    return out.getvalue()


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for key, data in files.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _tree(splits: tuple[str, ...] = (), per_class: int = 3, fmt: str = "JPEG") -> dict[str, bytes]:
    ext = "jpg" if fmt == "JPEG" else "png"
    files = {}
    for s, split in enumerate(splits or ("",)):
        for c, name in enumerate(("dog", "cat", "ant")):
            for i in range(per_class):
                prefix = f"{split}/" if split else ""
                files[f"{prefix}{name}/{i:03d}.{ext}"] = _image(100 * s + 10 * c + i, fmt)
    return files


def test_a_class_folder_becomes_images_and_sorted_labels(tmp_path):
    files = _tree()
    src = _folder(tmp_path / "src", files)
    ds = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert ds.labels.info.class_names == ["ant", "cat", "dog"]  # sorted folder names
    assert len(ds) == 9 and ds.images.sample_compression == "jpeg"
    for row, key in enumerate(sorted(files)):
        assert ds.images[row].tobytes() == files[key]  # JPEG bytes as they were
        assert ds.labels[row].data()["text"] == [key.split("/")[0]]
    assert "splits" not in ds.tensors
    assert ds.info["ingest"]["rows"] == 9 and ds.commits[0]["message"].startswith("Ingested 9")


def test_a_split_layout_records_each_rows_split(tmp_path):
    src = _folder(tmp_path / "src", _tree(splits=("train", "val")))
    ds = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert ds.splits.info.class_names == ["train", "val"]
    views = tl.split_views(ds)
    assert {k: len(v) for k, v in views.items()} == {"train": 9, "val": 9}
    assert set(views["val"][SOURCES_TENSOR].numpy(aslist=True)) == {
        str(src / "val" / c / f"{i:03d}.jpg") for c in ("dog", "cat", "ant") for i in range(3)
    }
    assert ds.labels.info.class_names == ["ant", "cat", "dog"]
    with pytest.raises(tl.IngestError, match="splits"):
        tl.split_views(
            tl.ingest_classification(
                _folder(tmp_path / "flat", _tree()),
                tmp_path / "flat-ds",
                progressbar=False,
                summary=False,
            )
        )


def test_mixed_formats_lose_nothing_and_odd_files_are_reported(tmp_path):
    files = {"a/0.jpg": _image(1, "JPEG"), "a/1.png": _image(2, "PNG"), "b/2.png": _image(3, "PNG")}
    src = _folder(tmp_path / "src", files)
    _folder(
        src,
        {
            ".hidden/x.jpg": _image(4, "JPEG"),
            "a/.DS_Store": b"x",
            "a/notes.txt": b"t",
            "loose.jpg": _image(5, "JPEG"),
        },
    )
    (src / "empty").mkdir()
    ds = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert ds.images.sample_compression == "png"
    for row, key in enumerate(sorted(files)):  # PNG stays lossless; the JPEG as decoded
        expected = np.asarray(Image.open(io.BytesIO(files[key])).convert("RGB"))
        assert np.array_equal(ds.images[row].numpy(), expected)
    report = ds.info["ingest"]
    assert report["skipped"] == {
        "hidden files": [".hidden/x.jpg", "a/.DS_Store"],
        "files that are not images (by their extension)": ["a/notes.txt"],
        "files outside a class folder": ["loose.jpg"],
    }
    assert ds.labels.info.class_names == ["a", "b", "empty"]
    assert any("without images" in n for n in report["notes"])
    assert any("stored as PNG" in n for n in report["notes"])


def test_a_corrupt_image_names_the_file_or_is_skipped_and_recorded(tmp_path):
    files = _tree(per_class=2)
    files["cat/001.jpg"] = files["cat/001.jpg"][:-40]  # truncated
    files["dog/000.jpg"] = b"not an image at all"
    src = _folder(tmp_path / "src", files)
    with pytest.raises(tl.SampleError, match=r"cat/001\.jpg is a truncated JPEG"):
        tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert not tl.exists(tmp_path / "ds")  # a failed first ingest leaves nothing
    with pytest.warns(UserWarning, match="2 of 6 files failed"):
        ds = tl.ingest_classification(
            src, tmp_path / "ds", ignore_errors=True, progressbar=False, summary=False
        )
    assert len(ds) == 4 and ds.info["ingest"]["failed"] == ["cat/001.jpg", "dog/000.jpg"]


def test_a_grown_folder_adds_only_its_new_files_as_a_new_commit(tmp_path):
    files = _tree()
    src = _folder(tmp_path / "src", files)
    ds = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    first = ds.commit_id
    new = {"cat/100.jpg": _image(7, "JPEG"), "bee/000.jpg": _image(8, "JPEG")}
    _folder(src, new)
    ds = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert len(ds) == 11 and ds.commits[1]["commit"] == first
    assert ds.labels.info.class_names == ["ant", "cat", "dog", "bee"]  # old ids stay
    assert [ds.labels[r].data()["text"][0] for r in (9, 10)] == ["bee", "cat"]
    assert ds.images[10].tobytes() == new["cat/100.jpg"]
    assert ds.info["ingest"]["already"] == 9
    again = tl.ingest_classification(src, tmp_path / "ds", progressbar=False, summary=False)
    assert len(again) == 11 and again.commit_id == ds.commit_id  # nothing new: no commit


def test_link_mode_points_at_the_sources_and_reports_changes(tmp_path):
    files = _tree()
    src = _folder(tmp_path / "src", files)
    ds = tl.ingest_classification(src, tmp_path / "ds", link=True, progressbar=False, summary=False)
    assert ds.images.htype == "link[image]"
    assert ds.images.links()[0] == "file://" + str(src / "ant" / "000.jpg")
    assert ds.images[0].tobytes() == files["ant/000.jpg"]
    time.sleep(0.01)
    (src / "ant" / "000.jpg").write_bytes(_image(99, "JPEG"))
    assert ds.images.verify_links()["changed"] == [{"row": 0, "url": ds.images.links()[0]}]


@pytest.mark.parametrize(
    "src,message",
    [
        ("missing", "does not exist"),
        ("empty", "No images"),
        ("texts", "found 1 other files"),
    ],
)
def test_bad_sources_are_ingest_errors(tmp_path, src, message):
    (tmp_path / "empty").mkdir()
    _folder(tmp_path / "texts", {"a/readme.txt": b"x"})
    with pytest.raises(tl.IngestError, match=message):
        tl.ingest_classification(tmp_path / src, tmp_path / "ds", progressbar=False)
    assert not tl.exists(tmp_path / "ds")


def test_an_unfinished_dataset_needs_resume_or_overwrite(tmp_path):
    src = _folder(tmp_path / "src", _tree())
    ds = tl.empty(tmp_path / "ds")
    ds.create_tensor("images", htype="image", sample_compression="jpeg")
    with pytest.raises(tl.IngestError, match=r"uncommitted changes.*resume=True"):
        tl.ingest_classification(src, tmp_path / "ds", progressbar=False)
    ds.commit("an images tensor")
    with pytest.raises(tl.IngestError, match="has no tensors"):
        tl.ingest_classification(src, tmp_path / "ds", progressbar=False)
    ds = tl.ingest_classification(
        src, tmp_path / "ds", overwrite=True, progressbar=False, summary=False
    )
    assert len(ds) == 9


def _s3_upload(s3_server, s3_creds, bucket: str, files: dict[str, bytes], prefix: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    for key, data in files.items():
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def test_an_s3_prefix_with_more_than_a_thousand_files(
    s3_server, s3_creds, s3_bucket, tmp_path, caplog
):
    files = {f"train/{c}/{i:04d}.png": _image(i, "PNG", (4, 4)) for c in "ab" for i in range(520)}
    files["train/a/.hidden.png"] = b"x"
    _s3_upload(s3_server, s3_creds, s3_bucket, files, "mnist")
    digits_creds = {  # the DIGITS form: endpoint, access key, secret key
        "endpoint_url": s3_server,
        "aws_access_key_id": "0123456789abcde",
        "aws_secret_access_key": "PrIclctP80KrMi6+UPO9ZYNrkg6ByFeFRR6484qL",
    }
    with caplog.at_level(logging.INFO, logger="werkzeug"):  # the server's request log
        ds = tl.ingest_classification(
            f"s3://{s3_bucket}/mnist/",
            tmp_path / "ds",
            src_creds=digits_creds,
            num_workers=2,
            progressbar=False,
            summary=False,
        )
    fetched = [r for r in caplog.messages if f'"GET /{s3_bucket}/mnist/train/' in r]
    assert len(fetched) == 1040  # each file once: prefetching wastes no request
    assert len(ds) == 1040 and ds.labels.info.class_names == ["a", "b"]
    assert ds.info["ingest"]["skipped"] == {"hidden files": ["train/a/.hidden.png"]}
    keys = sorted(k for k in files if ".hidden" not in k)
    for row in (0, 519, 520, 1039):
        assert ds.images[row].tobytes() == files[keys[row]]
    assert ds[SOURCES_TENSOR][0].numpy()[0] == f"s3://{s3_bucket}/mnist/{keys[0]}"


def test_linked_s3_images_read_with_the_source_credentials(
    s3_server, s3_creds, s3_bucket, tmp_path
):
    files = _tree(per_class=2)
    _s3_upload(s3_server, s3_creds, s3_bucket, files, "pets")
    ds = tl.ingest_classification(
        f"s3://{s3_bucket}/pets",
        tmp_path / "ds",
        src_creds=s3_creds,
        link=True,
        progressbar=False,
        summary=False,
    )
    assert ds.get_creds_keys() == ["source"]
    assert ds.images[1].tobytes() == files[sorted(files)[1]]
    reopened = tl.load(tmp_path / "ds", read_only=True)
    reopened.populate_creds("source", s3_creds)
    assert reopened.images.verify_links() == {"checked": 6, "missing": [], "changed": []}


def test_a_missing_bucket_is_an_ingest_error(s3_server, s3_creds, tmp_path):
    with pytest.raises(tl.IngestError, match="Cannot list the source"):
        tl.ingest_classification(
            "s3://no-such-bucket-tl/x", tmp_path / "ds", src_creds=s3_creds, progressbar=False
        )
    assert not tl.exists(tmp_path / "ds")


_CRASH = """
import sys, time
import tensorlake as tl
from tensorlake.ingestion import files

real = files.check_image
def slow(data, where):
    time.sleep(0.01)
    return real(data, where)
files.check_image = slow
tl.ingest_classification(sys.argv[1], sys.argv[2], num_workers=2, checkpoint_interval=40,
                         progressbar=False, summary=False)
"""


def test_a_killed_ingest_resumes_to_the_same_dataset(tmp_path):
    files = {
        f"{c}/{i:03d}.png": _image(i * 3 + ord(c), "PNG", (6, 6)) for c in "xyz" for i in range(100)
    }
    src = _folder(tmp_path / "src", files)
    reference = tl.ingest_classification(src, tmp_path / "ref", progressbar=False, summary=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH, str(src), str(tmp_path / "ds")],
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it once a checkpoint holds rows
        time.sleep(0.05)
        if (tmp_path / "ds" / "commits").exists() and len(
            os.listdir(tmp_path / "ds" / "commits")
        ) >= 4:  # the first checkpoint is stored once the second one's commit is
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.warns(tl.StaleLockWarning):  # the killed run's lock
        ds = tl.ingest_classification(
            src, tmp_path / "ds", resume=True, num_workers=2, progressbar=False, summary=False
        )
    assert 0 < ds.info["ingest"]["already"] < 300
    assert len(ds) == len(reference) == 300
    assert ds[SOURCES_TENSOR].numpy(aslist=True) == reference[SOURCES_TENSOR].numpy(aslist=True)
    assert ds.labels.numpy().tolist() == reference.labels.numpy().tolist()
    assert [ds.images[r].tobytes() for r in range(300)] == [
        reference.images[r].tobytes() for r in range(300)
    ]
