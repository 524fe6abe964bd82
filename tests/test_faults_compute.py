"""``@tl.compute`` eval with process workers writing to S3 through injected faults.

Through ``tests/faults.py``'s proxy in front of moto: with 15% of the requests failing
(500, 503, SlowDown, resets, lost answers, cut bodies) the eval and its checkpoints
complete and the dataset equals a fault-free run exactly (nothing lost or duplicated);
an outage in the middle of the eval ends in one ``StorageError`` within a bounded time;
the last checkpoint is then restored exactly and ``resume=True`` completes the eval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tensorlake as tl
from tests.compute.transforms import content, create_schema, make_rows
from tests.faults import FaultProxy, RandomFaults, proxies

ITEMS = 90


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[Callable[..., FaultProxy]]:
    yield from proxies(s3_server)


@pytest.fixture
def reference(tmp_path) -> dict:
    """The same eval without faults, on local disk, in this thread."""
    ds = tl.empty(tmp_path / "reference")
    create_schema(ds)
    make_rows().eval(range(ITEMS), ds, progressbar=False)
    return content(ds)


def _eval(ds: Any) -> None:
    make_rows().eval(
        range(ITEMS),
        ds,
        num_workers=2,
        scheduler="processed",
        checkpoint_interval=30,
        progressbar=False,
    )


def test_eval_with_process_workers_through_transient_faults_is_exact(
    fault_proxy, s3_bucket: str, s3_creds: dict, reference: dict, monkeypatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "5")
    proxy = fault_proxy(RandomFaults(0.15, seed=11))
    creds = {**s3_creds, "endpoint_url": proxy.url}
    url = f"s3://{s3_bucket}/eval"
    ds = tl.empty(url, creds=creds)
    create_schema(ds)
    ds.commit("schema")
    _eval(ds)
    assert content(ds) == reference
    ds.close()
    direct = tl.load(url, creds=s3_creds, read_only=True)  # straight from the server
    assert content(direct) == reference
    messages = [c["message"] for c in direct.commits]
    assert sum(m.startswith("Auto-commit during compute") for m in messages) == 3, messages
    print(f"\neval: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 10 and {"reset", "lost", "slowdown"} <= set(proxy.injected)


def test_an_outage_during_eval_is_one_storage_error_in_bounded_time(
    fault_proxy, s3_bucket: str, s3_creds: dict, reference: dict, monkeypatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "3")
    proxy = fault_proxy()
    creds = {**s3_creds, "endpoint_url": proxy.url}
    url = f"s3://{s3_bucket}/outage"
    ds = tl.empty(url, creds=creds)
    create_schema(ds)
    ds.commit("schema")
    proxy.down_after = proxy.requests + 60  # some way into the eval
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        _eval(ds)
    elapsed = time.monotonic() - started
    print(f"\neval outage: {type(info.value).__name__} after {elapsed:.1f}s: {info.value}")
    assert not isinstance(info.value, tl.FormatError)
    assert "InternalError" in str(info.value)
    assert elapsed < 30
    proxy.down_after = None
    proxy.down = False
    ds.close()

    again = tl.load(url, creds=creds, reset=True)  # the last checkpoint, exactly
    done = again.commits[0].get("samples_processed", 0)
    expected = _prefix(reference, len(again))
    assert content(again) == expected and done % 30 == 0
    make_rows().eval(  # and the eval resumes from it: nothing lost or duplicated
        range(ITEMS), again, num_workers=2, checkpoint_interval=30, resume=True, progressbar=False
    )
    assert content(tl.load(url, creds=s3_creds, read_only=True)) == reference


def _prefix(content_: dict, rows: int) -> dict:
    return {name: values[:rows] for name, values in content_.items()}
