"""Reading an S3 dataset through injected faults: the loaders, linked objects, stalls.

``tests/faults.py``'s proxy sits in front of moto. With 15% of the requests failing
(500, 503, SlowDown, resets, lost answers, cut bodies), ``ds.pytorch()`` (worker
processes) and ``ds.batches()`` yield every row exactly once and exactly as stored,
``verify_links()`` and ``verify=True`` appends of ``s3://`` links give the fault-free
answers. In an outage each ends in one ``StorageError`` (never ``FormatError``) within
a bounded time. A stalled connection (an answer that never comes) times out after
``TENSORLAKE_S3_READ_TIMEOUT`` and is retried; a server that stalls every request ends
in a ``StorageError`` after ``TENSORLAKE_S3_MAX_ATTEMPTS`` timeouts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tensorlake as tl
from tests.api.helpers import jpeg_bytes
from tests.faults import FaultProxy, RandomFaults, proxies
from tests.integrations import data

ROWS = 60
OUTAGE_LIMIT = 30.0


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[Callable[..., FaultProxy]]:
    yield from proxies(s3_server)


@pytest.fixture(autouse=True)
def _short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "5")


@pytest.fixture
def stored(s3_bucket: str, s3_creds: dict, monkeypatch: pytest.MonkeyPatch) -> str:
    """An S3 dataset of ``ROWS`` rows in small chunks (many objects), written directly."""
    monkeypatch.setenv("TENSORLAKE_CHUNK_SIZE", "2048")
    url = f"s3://{s3_bucket}/ds"
    data.make(url, s3_creds, n=ROWS).close()
    monkeypatch.delenv("TENSORLAKE_CHUNK_SIZE")
    return url


def _through(proxy: FaultProxy, creds: dict) -> dict:
    return {**creds, "endpoint_url": proxy.url}


def _check_batches(batches: Any, ds: tl.Dataset) -> None:
    seen = []
    for batch in batches:
        for k in range(len(batch["index"])):
            data.check_row(batch, k, ds)
            seen.append(int(batch["index"][k]))
    assert sorted(seen) == list(range(ROWS))  # every row exactly once


def test_batches_through_transient_faults_are_exact(
    fault_proxy, stored: str, s3_creds: dict
) -> None:
    reference = tl.load(stored, creds=s3_creds, read_only=True)
    proxy = fault_proxy(RandomFaults(0.15, seed=5))
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    _check_batches(ds.batches(8, shuffle=True, seed=1), reference)
    print(f"\nbatches: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 5, proxy.injected


def test_pytorch_workers_through_transient_faults_are_exact(
    fault_proxy, stored: str, s3_creds: dict
) -> None:
    pytest.importorskip("torch")
    reference = tl.load(stored, creds=s3_creds, read_only=True)
    proxy = fault_proxy(RandomFaults(0.15, seed=6))
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    loader = ds.pytorch(num_workers=2, batch_size=8, shuffle=True, seed=2, collate_fn=_numpy)
    _check_batches(loader, reference)
    print(f"\npytorch: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 5, proxy.injected


def _numpy(rows: list[dict]) -> dict[str, list]:
    """A collate that keeps numpy rows as they are (lists per tensor)."""
    return {name: [row[name] for row in rows] for name in rows[0]}


@pytest.mark.parametrize("loader", ["batches", "pytorch"])
def test_a_loader_in_an_outage_fails_with_one_storage_error(
    loader: str, fault_proxy, stored: str, s3_creds: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    if loader == "pytorch":
        pytest.importorskip("torch")
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "3")
    proxy = fault_proxy()
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    proxy.down = True  # opened; no chunk read yet
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        if loader == "batches":
            list(ds.batches(8))
        else:
            list(ds.pytorch(num_workers=2, batch_size=8, collate_fn=_numpy))
    elapsed = time.monotonic() - started
    print(f"\n{loader} outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    assert not isinstance(info.value, tl.FormatError)
    assert "InternalError" in str(info.value)
    assert elapsed < OUTAGE_LIMIT


# -- stalls ----------------------------------------------------------------------------


def test_a_stalled_read_times_out_and_is_retried(
    fault_proxy, stored: str, s3_creds: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "0.5")
    reference = tl.load(stored, creds=s3_creds, read_only=True)
    stalled: set[str] = set()

    def first_chunk_stalls(n: int, method: str, path: str) -> str | None:
        if "/chunks/" in path and not stalled:
            stalled.add(path)
            return "stall"
        return None

    proxy = fault_proxy(first_chunk_stalls)
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    started = time.monotonic()
    _check_batches(ds.batches(8), reference)
    assert proxy.injected["stall"] == 1 and time.monotonic() - started < 15


def test_a_server_that_stalls_every_request_is_a_storage_error_in_bounded_time(
    fault_proxy, stored: str, s3_creds: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "2")
    proxy = fault_proxy()
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    proxy.down, proxy.down_with = True, "stall"
    started = time.monotonic()
    with pytest.raises(tl.StorageError, match=r"timeout|timed out") as info:
        ds.images[3].numpy()
    elapsed = time.monotonic() - started
    print(f"\nstalled server: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    assert 0.9 <= elapsed < 10  # two attempts of 0.5 s (and a backoff), not a hang


# -- linked objects --------------------------------------------------------------------


@pytest.fixture
def linked_bucket(s3_bucket: str, _s3_admin: Any) -> str:
    for i in range(20):
        _s3_admin.put_object(Bucket=s3_bucket, Key=f"raw/{i}.jpg", Body=jpeg_bytes(12, 14, seed=i))
    return s3_bucket


def _links(bucket: str) -> list[Any]:
    return [tl.link(f"s3://{bucket}/raw/{i}.jpg", creds_key="raw") for i in range(20)]


def _linked_dataset(path: Path, creds: dict, bucket: str) -> tl.Dataset:
    ds = tl.empty(path)
    ds.add_creds_key("raw")
    ds.populate_creds("raw", creds)
    ds.create_tensor("images", htype="link[image]", sample_compression="jpeg", verify=True)
    ds.images.extend(_links(bucket))
    ds.commit("links")
    return ds


def test_link_verification_through_transient_faults_is_exact(
    fault_proxy, linked_bucket: str, s3_creds: dict, tmp_path: Path
) -> None:
    direct = _linked_dataset(tmp_path / "direct", s3_creds, linked_bucket)
    proxy = fault_proxy(RandomFaults(0.2, seed=7))
    ds = _linked_dataset(tmp_path / "faulty", _through(proxy, s3_creds), linked_bucket)
    rows = [ds.images[i].numpy() for i in range(20)]
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(row, direct.images[i].numpy())
    assert ds.images.verify_links() == {"checked": 20, "missing": [], "changed": []}
    assert ds.images.shape == direct.images.shape
    print(f"\nlinks: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 5, proxy.injected


@pytest.mark.parametrize("step", ["append", "verify_links"])
def test_link_verification_in_an_outage_fails_with_one_storage_error(
    step: str, fault_proxy, linked_bucket: str, s3_creds: dict, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "3")
    proxy = fault_proxy()
    creds = _through(proxy, s3_creds)
    ds = _linked_dataset(tmp_path / "ds", creds, linked_bucket)
    proxy.down = True
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        if step == "append":
            ds.images.extend(_links(linked_bucket))
        else:
            ds.images.verify_links()
    elapsed = time.monotonic() - started
    print(f"\nlinks {step} outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    assert not isinstance(info.value, (tl.FormatError, tl.SampleError))
    assert elapsed < OUTAGE_LIMIT
    proxy.down = False
    assert len(ds.images) == 20  # the failed append added nothing


def test_dataset_verify_in_an_outage_is_a_storage_error_not_a_damage_report(
    fault_proxy, stored: str, s3_creds: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "2")
    proxy = fault_proxy()
    ds = tl.load(stored, creds=_through(proxy, s3_creds), read_only=True)
    proxy.down_after = proxy.requests + 8  # the commits read, then the server goes down
    with pytest.raises(tl.StorageError):
        report = ds.verify()
        print(f"\nverify in an outage: {report}")
