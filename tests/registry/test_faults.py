"""push / pull through injected S3 faults (``tests/faults.py``'s proxy in front of moto).

With 20% of the requests failing (500, 503, SlowDown, resets, lost answers, cut bodies)
a push publishes exactly the local dataset and a pull elsewhere installs it byte for
byte. An outage in the middle of either ends in one ``StorageError`` within a bounded
time; nothing half-done is published or installed, and the next run completes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tensorlake as tl
from tests.faults import FaultProxy, RandomFaults, proxies

from .conftest import make_local
from .test_push_pull import remote_keys, switch_home, tree

OUTAGE_LIMIT = 30.0


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[Callable[..., FaultProxy]]:
    yield from proxies(s3_server)


@pytest.fixture(autouse=True)
def _short_retries(monkeypatch: pytest.MonkeyPatch, small_chunks: None) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "5")


def _via(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORLAKE_ENDPOINT_URL", proxy.url)


def test_push_and_pull_through_transient_faults_are_exact(
    home, remote, fault_proxy, monkeypatch, tmp_path: Path
) -> None:
    ds = make_local(home, "flower", rows=120)
    proxy = fault_proxy(RandomFaults(0.2, seed=8))
    _via(proxy, monkeypatch)
    report = tl.registry.push("flower", progressbar=False)
    assert report.version == 1 and report.uploaded_objects == report.objects > 20
    pushed = proxy.faults
    switch_home(monkeypatch, tmp_path / "other")
    pulled = tl.registry.pull("flower", progressbar=False)
    assert pulled.version == 1 and pulled.downloaded_objects > 20
    assert tree(tmp_path / "other" / "datasets" / "flower") == tree(home / "datasets" / "flower")
    assert tl.load("flower").commit_id == ds.commit_id
    print(
        f"\npush+pull: {proxy.faults} faults ({pushed} in the push) in {proxy.requests} "
        f"requests {dict(proxy.injected)}"
    )
    assert pushed >= 3 and proxy.faults - pushed >= 3, proxy.injected


def test_an_outage_during_push_publishes_nothing_and_the_next_push_completes(
    home, remote, fault_proxy, monkeypatch, s3_bucket, _s3_admin, tmp_path: Path
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "3")
    make_local(home, "flower", rows=120)
    proxy = fault_proxy()
    proxy.down_after = 25  # some objects sent, then the server goes down
    _via(proxy, monkeypatch)
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        tl.registry.push("flower", progressbar=False)
    elapsed = time.monotonic() - started
    print(f"\npush outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    assert not isinstance(info.value, tl.FormatError) and elapsed < OUTAGE_LIMIT
    assert remote_keys(_s3_admin, s3_bucket, "shared/versions/") == []  # nothing published
    proxy.down_after, proxy.down = None, False
    report = tl.registry.push("flower", progressbar=False)
    assert report.version == 1 and 0 < report.uploaded_objects < report.objects
    switch_home(monkeypatch, tmp_path / "other")
    tl.registry.pull("flower", progressbar=False)
    assert tree(tmp_path / "other" / "datasets" / "flower") == tree(home / "datasets" / "flower")


def test_an_outage_during_pull_installs_nothing_and_the_next_pull_completes(
    home, remote, fault_proxy, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "3")
    make_local(home, "flower", rows=120)
    tl.registry.push("flower", progressbar=False)
    proxy = fault_proxy()
    _via(proxy, monkeypatch)
    other = switch_home(monkeypatch, tmp_path / "other")
    proxy.down_after = 25
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        tl.registry.pull("flower", progressbar=False)
    elapsed = time.monotonic() - started
    print(f"\npull outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    assert not isinstance(info.value, tl.FormatError) and elapsed < OUTAGE_LIMIT
    assert tl.registry.ls() == []  # nothing installed
    proxy.down_after, proxy.down = None, False
    tl.registry.pull("flower", progressbar=False)
    assert tree(other / "datasets" / "flower") == tree(home / "datasets" / "flower")
