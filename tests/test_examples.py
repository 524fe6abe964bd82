"""The examples run as the docs say (each in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
