"""S3-compatible servers that ignore ``If-None-Match: *``: detected, and the lock refused.

``header_proxy.HeaderStrippingProxy`` in front of moto's server drops the header, as such
servers do: a "conditional" put then overwrites. ``S3Storage.conditional_writes`` probes
that once per endpoint and bucket; the writer lock refuses such storage with
``ConditionalWritesError`` (what the server lacks, and ``lock="none"`` as the way on);
``lock="none"`` writes without any lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tensorlake.engine.format.keys import LOCK_KEY
from tensorlake.storage import S3Storage, from_url
from tests.storage.header_proxy import HeaderStrippingProxy


@pytest.fixture
def proxy(s3_server: str) -> Iterator[HeaderStrippingProxy]:
    with HeaderStrippingProxy(s3_server) as p:
        yield p


@pytest.fixture
def stripped_creds(s3_creds: dict[str, Any], proxy: HeaderStrippingProxy) -> dict[str, Any]:
    return {**s3_creds, "endpoint_url": proxy.url}


def test_moto_honours_conditional_writes(s3_bucket: str, s3_creds: dict[str, Any]) -> None:
    store = S3Storage(s3_bucket, "ds", s3_creds)
    assert store.conditional_writes
    assert list(store.list()) == []  # the probe object is gone
    assert store.put_if_absent("k", b"1") and not store.put_if_absent("k", b"2")


def test_a_server_ignoring_if_none_match_is_detected(
    s3_bucket: str, stripped_creds: dict[str, Any], proxy: HeaderStrippingProxy
) -> None:
    store = S3Storage(s3_bucket, "ds", stripped_creds)
    # what the lock would meet: both "atomic creates" win, the second overwrites
    assert store.put_if_absent("k", b"1") and store.put_if_absent("k", b"2")
    assert store.get("k") == b"2"
    assert proxy.stripped == 2
    assert not store.conditional_writes
    assert list(store.list()) == ["k"]  # the probe object is gone
    probes = proxy.stripped
    assert not S3Storage(s3_bucket, "elsewhere", stripped_creds).conditional_writes
    assert proxy.stripped == probes  # known for this endpoint and bucket: no new probe
    reader = S3Storage(s3_bucket, "ds", stripped_creds, read_only=True)
    assert reader.conditional_writes  # a read-only storage takes no lock: nothing to probe


def test_the_lock_is_refused_with_an_error_saying_what_to_do(
    s3_bucket: str, stripped_creds: dict[str, Any], proxy: HeaderStrippingProxy
) -> None:
    url = f"s3://{s3_bucket}/ds"
    ds = tl.empty(url, creds=stripped_creds)
    with pytest.raises(tl.ConditionalWritesError) as caught:
        ds.create_tensor("x")
    message = str(caught.value)
    assert "If-None-Match" in message and 'lock="none"' in message and url in message
    assert isinstance(caught.value, tl.StorageError)
    storage = from_url(url, creds=stripped_creds)
    assert not storage.exists(LOCK_KEY)
    probes = proxy.stripped
    # once per endpoint and bucket: another dataset there, another refusal, no new probe
    other = tl.empty(f"s3://{s3_bucket}/other", creds=stripped_creds)
    with pytest.raises(tl.ConditionalWritesError):
        other.create_tensor("x")
    with pytest.raises(tl.ConditionalWritesError):
        tl.empty(url, creds=stripped_creds, overwrite=True)  # deleting takes the lock too
    assert proxy.stripped == probes
    assert tl.load(url, creds=stripped_creds, read_only=True).tensors == {}  # reads work


def test_lock_none_writes_without_a_lock(
    s3_bucket: str, stripped_creds: dict[str, Any], s3_creds: dict[str, Any]
) -> None:
    url = f"s3://{s3_bucket}/ds"
    ds = tl.empty(url, creds=stripped_creds, lock="none")
    ds.create_tensor("x", dtype="int64")
    ds.x.extend(np.arange(10).reshape(5, 2))
    ds.commit("five rows")
    assert not from_url(url, creds=s3_creds).exists(LOCK_KEY)
    again = tl.load(url, creds=stripped_creds, lock="none")
    again.x.append(np.array([10, 11]))
    assert again.x.numpy().tolist() == np.arange(12).reshape(6, 2).tolist()
    again.close()
    ds = tl.dataset(url, creds=stripped_creds, lock="none", overwrite=True)
    assert ds.tensors == {}


def test_a_bad_lock_mode_is_refused(tmp_path: Any) -> None:
    with pytest.raises(tl.DatasetArgumentError, match="lock must be one of"):
        tl.empty(str(tmp_path / "ds"), lock="off")
    tl.empty(str(tmp_path / "ds"))
    with pytest.raises(tl.DatasetArgumentError, match="'writer'"):
        tl.load(str(tmp_path / "ds"), lock="nolock")


def test_lock_none_stores_no_lock_object_anywhere(tmp_path: Any) -> None:
    path = str(tmp_path / "ds")
    ds = tl.empty(path)
    ds.create_tensor("x")
    assert from_url(path).exists(LOCK_KEY)  # the default: a writer holds the lock
    ds.close()
    assert not from_url(path).exists(LOCK_KEY)
    unlocked = tl.load(path, lock="none")
    unlocked.x.append(np.array([1]))
    assert not from_url(path).exists(LOCK_KEY)
    unlocked.close()
