"""The examples run as the docs say (each in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_digits_workflow_runs_against_a_local_s3_server():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits_from_s3.py")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "250 files uploaded" in out.stdout
    assert "{'train': 200, 'test': 50}" in out.stdout
    assert "train images (8, 28, 28, 1)" in out.stdout


def test_sharing_registers_pushes_and_pulls(s3_server, s3_bucket):
    remote = f"s3://{s3_bucket}/team"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "share.py"), "--remote", remote,
         "--endpoint-url", s3_server],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "published version 1" in out.stdout and "published version 2" in out.stdout
    assert "{'license': 'CC-BY-4.0'} 6 train rows" in out.stdout
    assert "[('flower', [1, 2])]" in out.stdout
    assert "9 rows now; 8 in version 1" in out.stdout


def test_the_training_loop_trains_and_resumes():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_loop.py"), "--epochs", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "epoch 2: 6 batches" in out.stdout
    assert "resumed after 2 batches: 4 more, none repeated or lost" in out.stdout


def test_the_exploring_notebook_runs_headless():
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "explore.ipynb", as_version=4)
    # the kernel is this interpreter's (the test environment's), whatever jupyter knows
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "examples")}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    rich = [o for o in outputs if o.output_type in ("execute_result", "display_data")]
    assert any("text/html" in o.data and "tl-tensors" in o.data["text/html"] for o in rich)
    assert any("image/png" in o.data for o in rich)  # a visualize() grid


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["ray", "dask"])
def test_the_cluster_example_runs_on_ray_and_dask(scheduler):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cluster.py"), "--scheduler", scheduler],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert f"{scheduler}: 400 items -> 400 rows, 4 checkpoints" in out.stdout
    if scheduler == "dask":
        assert "label counts: {0: 40, 1: 40" in out.stdout
    else:
        assert "ray read 400 rows; labels of the first 3 by index: [0, 1, 2]" in out.stdout
