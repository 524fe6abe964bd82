"""Mistakes users make outside create_tensor raise TensorlakeError subclasses that still
are the builtin callers catch (ValueError, KeyError, TypeError), never a bare builtin."""

from __future__ import annotations

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.registry.register import RegisteredDataset


@pytest.mark.parametrize(
    "url,creds,match",
    [
        ("ftp://host/ds", None, "unsupported storage URL"),
        ("", None, "expected a storage URL"),
        ("s3://", None, "names no bucket"),
        ("mem://", None, "needs a name"),
        ("file://", None, "names no path"),
        ("mem://x", {"aws_access_key_id": "k"}, "only used for s3"),
        ("s3://bucket/ds", {"aws_secret": "k"}, "unknown S3 creds key"),
    ],
)
def test_bad_storage_urls_and_creds(url, creds, match):
    with pytest.raises(tl.StorageArgumentError, match=match) as info:
        tl.empty(url, creds=creds, overwrite=True)
    assert isinstance(info.value, tl.StorageError) and isinstance(info.value, ValueError)


def test_a_creds_key_that_is_not_a_string_is_a_link_error():
    with pytest.raises(tl.LinkError, match="creds_key must be a string"):
        tl.link("s3://bucket/a.jpg", creds_key=5)  # type: ignore[arg-type]


@pytest.fixture
def ds():
    ds = tl.empty("mem://typed-errors", overwrite=True)
    ds.create_tensor("images", htype="image", sample_compression="png")
    ds.images.append(np.zeros((4, 4, 3), np.uint8))
    return ds


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"world_size": 2, "rank": 2}, "rank must be < world_size"),
    ],
)
def test_bad_loader_arguments(ds, kwargs, match):
    with pytest.raises(tl.DatasetArgumentError, match=match) as info:
        ds.batches(**kwargs)
    assert isinstance(info.value, ValueError)


def test_bad_visualize_arguments(ds):
    with pytest.raises(tl.DatasetArgumentError, match="cols must be >= 1"):
        ds.visualize(cols=0)


def test_a_missing_partition_is_a_key_error(ds):
    registered = RegisteredDataset("demo", ds)
    with pytest.raises(tl.ViewNotFoundError, match="no partition 'train'") as info:
        registered["train"]
    assert isinstance(info.value, KeyError)
