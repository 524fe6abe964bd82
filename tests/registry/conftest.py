"""A fresh home and a remote for each registry test: a bucket on the moto S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import tensorlake as tl


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("TENSORLAKE_HOME", str(path))
    for key in ("REMOTE", "ENDPOINT_URL", "PROFILE", "REGION", "PUBLIC"):
        monkeypatch.delenv(f"TENSORLAKE_{key}", raising=False)
    return path


@pytest.fixture
def remote(home: Path, s3_bucket: str, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"s3://{s3_bucket}/shared"
    monkeypatch.setenv("TENSORLAKE_REMOTE", url)
    monkeypatch.setenv("TENSORLAKE_ENDPOINT_URL", s3_server)
    return url


def make_local(home: Path, name: str, rows: int = 40, seed: int = 0) -> tl.Dataset:
    """A committed local dataset ``name`` in the home (images, labels, text), reopened:
    it takes the writer lock again only when written."""
    rng = np.random.default_rng(seed)
    ds = tl.empty(home / "datasets" / name)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
        ds.create_tensor("notes", htype="text")
        for i in range(rows):
            ds.append(
                {
                    "images": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                    "labels": i % 2,
                    "notes": f"row {i}",
                }
            )
    ds.commit("first rows")
    ds.close()  # no writer lock held: other processes may push or write it
    return tl.load(home / "datasets" / name)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chunks of ~4 KB, so a small dataset has many objects."""
    monkeypatch.setenv("TENSORLAKE_CHUNK_SIZE", "4096")
    yield
