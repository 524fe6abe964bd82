"""tl.ingest / tensorlake create: the source is detected, the dataset named after it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tensorlake as tl
from tensorlake.ingestion.auto import default_dest, detect_format
from tests.ingestion.test_classification import _folder, _image, _tree
from tests.ingestion.test_coco import coco_dir  # noqa: F401 (a fixture)

ROOT = str(Path(tl.__file__).resolve().parents[1])


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORLAKE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_formats_are_told_apart(tmp_path, coco_dir):  # noqa: F811 (the fixture)
    assert detect_format(_folder(tmp_path / "pets", _tree())) == "classification"
    assert detect_format(_folder(tmp_path / "split", _tree(splits=("train", "val")))) == (
        "classification"
    )
    mixed = _folder(tmp_path / "mixed", {"a/x.jpg": _image(1, "JPEG"), "notes.txt": b"t"})
    assert detect_format(mixed) == "files"
    layout = tmp_path / "coco"
    shutil.copytree(coco_dir / "images", layout / "images")
    (layout / "annotations").mkdir()
    shutil.copy(coco_dir / "instances.json", layout / "annotations" / "instances.json")
    assert detect_format(layout) == "coco"
    for src in ("https://host/list.csv", "s3://b/manifest.JSON", str(tmp_path / "m.json")):
        assert detect_format(src) == "manifest"
    for src in ("https://host/trainingSet.tar.gz", "s3://b/data.zip", "https://host/get?id=3"):
        assert detect_format(src) == "archive"


def test_ingest_puts_a_dataset_named_after_its_source_in_the_home(tmp_path, home):
    src = _folder(tmp_path / "My Pets", _tree())
    ds = tl.ingest(src, progressbar=False, summary=False)
    assert Path(ds.path) == home / "datasets" / "mypets" == default_dest("mypets")
    assert len(ds) == 9 and ds.labels.info.class_names == ["ant", "cat", "dog"]
    named = tl.ingest(src, name="pets-v2", progressbar=False, summary=False)
    assert Path(named.path) == home / "datasets" / "pets-v2"
    with pytest.raises(tl.InvalidNameError):
        tl.ingest(src, name="Bad Name", progressbar=False)
    with pytest.raises(tl.IngestError, match="format must be one of"):
        tl.ingest(src, format="yolo")


def test_a_coco_layout_is_ingested_as_coco(tmp_path, home, coco_dir):  # noqa: F811
    layout = tmp_path / "coco-small"
    shutil.copytree(coco_dir / "images", layout / "images")
    shutil.copy(coco_dir / "instances.json", layout / "instances.json")
    ds = tl.ingest(layout, progressbar=False, summary=False)
    assert Path(ds.path) == home / "datasets" / "coco-small"
    assert len(ds) == 5 and {"categories", "boxes", "masks"} <= set(ds.tensors)


def test_tensorlake_create_end_to_end(tmp_path, home):
    src = _folder(tmp_path / "digits", _tree(splits=("train", "test")))
    env = {**__import__("os").environ, "TENSORLAKE_HOME": str(home)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorlake.cli.main",
            "create",
            str(src),
            "--workers",
            "2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    ds = tl.load(home / "datasets" / "digits", read_only=True)
    assert len(ds) == 18 and tl.split_views(ds)["test"].labels.numpy().size == 9
    out = subprocess.run(
        [sys.executable, "-m", "tensorlake.cli.main", "create", str(src), "--name", "No Good"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 1 and "Invalid dataset name" in out.stderr
    assert "Traceback" not in out.stderr


def test_archives_and_other_folders_go_to_their_sources(tmp_path, home):
    import tarfile

    src = _folder(tmp_path / "pets", _tree())
    archive = tmp_path / "Pets Archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="pets")
    ds = tl.ingest(archive, progressbar=False, summary=False)
    assert Path(ds.path) == home / "datasets" / "petsarchive"
    assert len(ds) == 9 and ds.labels.info.class_names == ["ant", "cat", "dog"]
    # the rows belong to the archive, not to the temporary folder it was extracted to
    assert ds.info["ingest"]["source"] == str(archive)
    assert ds["_sources"][0].numpy()[0] == f"{archive}/ant/000.jpg"
    with pytest.raises(tl.IngestError, match="link=True cannot be used with an archive"):
        tl.ingest(archive, name="linked", link=True, progressbar=False)
    mixed = _folder(tmp_path / "mixed", {"a/x.jpg": _image(1, "JPEG"), "notes.txt": b"text"})
    files = tl.ingest(mixed, progressbar=False, summary=False)
    assert sorted(files["path"].numpy(aslist=True)) == ["a/x.jpg", "notes.txt"]


def test_a_manifest_is_registered_by_tl_ingest_and_the_cli(tmp_path, home):
    import json as json_module

    images = _folder(tmp_path / "objects", {f"x/{i}.jpg": _image(i, "JPEG") for i in range(3)})
    manifest = tmp_path / "Cloud Images.json"
    manifest.write_text(
        json_module.dumps(
            {
                "images": [
                    {"objectUrl": str(images / "x" / f"{i}.jpg"), "title": f"t{i}"}
                    for i in range(3)
                ]
            }
        )
    )
    ds = tl.ingest(manifest, link=True, progressbar=False, summary=False)
    assert Path(ds.path) == home / "datasets" / "cloudimages"
    assert len(ds) == 3 and ds.images.htype == "link[image]"
    env = {**__import__("os").environ, "TENSORLAKE_HOME": str(home)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorlake.cli.main",
            "ingest",
            "manifest",
            str(manifest),
            str(tmp_path / "copied"),
            "--copy",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    copied = tl.load(tmp_path / "copied", read_only=True)
    assert copied.images.htype == "image" and len(copied) == 3


def test_tensorlake_create_for_every_source(tmp_path, home, coco_dir):  # noqa: F811
    import json as json_module
    import tarfile

    pets = _folder(tmp_path / "pets", _tree())
    with tarfile.open(tmp_path / "pets.tgz", "w:gz") as tar:
        tar.add(pets, arcname="pets")
    layout = tmp_path / "coco-layout"
    shutil.copytree(coco_dir / "images", layout / "images")
    shutil.copy(coco_dir / "instances.json", layout / "instances.json")
    manifest = tmp_path / "links.json"
    manifest.write_text(
        json_module.dumps({"images": [{"objectUrl": str(pets / "cat" / "000.jpg")}]})
    )
    odd = _folder(tmp_path / "odd-files", {"a.txt": b"x", "b/c.bin": b"\x00\x01"})
    env = {**__import__("os").environ, "TENSORLAKE_HOME": str(home)}
    expected = {"pets": 9, "coco-layout": 5, "links": 1, "odd-files": 2}
    for src, name in (
        (tmp_path / "pets.tgz", "pets"),
        (layout, "coco-layout"),
        (manifest, "links"),
        (odd, "odd-files"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "tensorlake.cli.main", "create", str(src), "--no-progress"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert out.returncode == 0, (src, out.stderr)
        assert len(tl.load(home / "datasets" / name, read_only=True)) == expected[name]
