"""``tensorlake ingest ...``: the sources from the command line; mistakes are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tensorlake as tl
from tests.ingestion.test_classification import _folder, _tree
from tests.ingestion.test_coco import coco_dir  # noqa: F401 (a fixture)

ROOT = str(Path(tl.__file__).resolve().parents[1])
CLI = [sys.executable, "-m", "tensorlake.cli.main"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT)


def test_ingest_classification_from_the_command_line(tmp_path):
    src = _folder(tmp_path / "src", _tree(splits=("train", "test"), per_class=20))
    out = _run(
        "ingest",
        "classification",
        str(src),
        str(tmp_path / "ds"),
        "--workers",
        "2",
        "--checkpoint",
        "64",
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    assert "Ingested 120 rows" in out.stdout and "splits" in out.stdout
    ds = tl.load(tmp_path / "ds", read_only=True)
    assert len(ds) == 120 and ds.splits.info.class_names == ["train", "test"]
    # every 64 files (2 batches of 32): after 64 and at the end
    assert sum("Auto-commit during compute" in (c["message"] or "") for c in ds.commits) == 2


def test_user_mistakes_are_one_line_on_stderr(tmp_path):
    for args, message in (
        (
            ["ingest", "classification", str(tmp_path / "none"), str(tmp_path / "ds")],
            "does not exist",
        ),
        (["ingest", "classification", str(tmp_path), str(tmp_path / "ds")], "No images"),
        (["info", str(tmp_path / "nothing")], "No dataset"),
    ):
        out = _run(*args)
        assert out.returncode == 1
        assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_ingest_coco_from_the_command_line(coco_dir, tmp_path):  # noqa: F811 (the fixture)
    out = _run(
        "ingest",
        "coco",
        str(coco_dir / "images"),
        str(coco_dir / "instances.json"),
        str(coco_dir / "person_keypoints.json"),
        str(tmp_path / "ds"),
        "--workers",
        "2",
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    ds = tl.load(tmp_path / "ds", read_only=True)
    assert len(ds) == 5 and ds.image_id.numpy().ravel().tolist() == [1, 2, 3, 4, 5]
    assert {"images", "categories", "boxes", "masks", "keypoints"} <= set(ds.tensors)
    bad = _run(
        "ingest",
        "coco",
        str(coco_dir / "images"),
        str(coco_dir / "nope.json"),
        str(tmp_path / "ds2"),
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
