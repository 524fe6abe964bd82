"""Shared test fixtures: storage targets over memory, local disk and a real S3 server.

Every test that touches storage takes ``storage`` (or ``storage_target`` when it
needs to reopen the same place, e.g. read-only or from another process). Both
are parametrized over ``memory``, ``local`` and ``s3``; the S3 target talks to
moto's server on 127.0.0.1 (started once per session, only when an S3 test
runs). Nothing patches boto3.

``StorageTarget`` lives here, in conftest, rather than in an importable helper
module: tests receive it through the fixture and need not import it.

Fixtures:

- ``aws_test_env`` (session, autouse): fake AWS credentials, no profile or
  config file, no instance-metadata lookups, no proxy for 127.0.0.1, so no real
  AWS account is ever reached.
- ``s3_server`` (session): the moto endpoint URL ``http://127.0.0.1:<port>``.
- ``s3_creds``: creds dict for that server.
- ``s3_bucket``: a fresh, uniquely named bucket (emptied and removed afterwards).
- ``storage_target``: a ``StorageTarget(kind, url, creds)``; ``.open(read_only=False)``.
- ``storage``: ``storage_target.open()``.
- ``small_disk``: a ``SmallDisk`` (``tests/small_disk.py``), an 8 MiB tmpfs to fill, free,
  resize and turn read-only; skips, saying why, where mounting is not allowed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.small_disk import SmallDisk

if TYPE_CHECKING:
    from tensorlake.storage import Storage

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_UNSET_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@pytest.fixture(scope="session", autouse=True)
def aws_test_env() -> Iterator[None]:
    """Keep real AWS credentials and config out of every test."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _UNSET_AWS_ENV:
            mp.delenv(name, raising=False)
        for name, value in _FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        # garbage deleted at once, as tests of deletion expect; tests of the grace
        # period (tests/engine/concurrency) set it themselves
        mp.setenv("TENSORLAKE_GC_GRACE", "0")
        yield


@pytest.fixture(scope="session")
def s3_server(aws_test_env: None) -> Iterator[str]:
    """Start moto's S3-compatible server on a free loopback port; yield its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_creds(s3_server: str) -> dict[str, str]:
    return {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "endpoint_url": s3_server,
        "aws_region": "us-east-1",
    }


@pytest.fixture(scope="session")
def _s3_admin(s3_server: str) -> Any:
    """A plain boto3 client for creating and removing test buckets."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3_bucket(_s3_admin: Any) -> Iterator[str]:
    """A fresh bucket for one test; emptied and deleted afterwards."""
    name = f"tl-test-{uuid.uuid4().hex[:16]}"
    _s3_admin.create_bucket(Bucket=name)
    yield name
    for page in _s3_admin.get_paginator("list_objects_v2").paginate(Bucket=name):
        objects = [{"Key": obj["Key"]} for obj in page.get("Contents", ())]
        if objects:
            _s3_admin.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
    _s3_admin.delete_bucket(Bucket=name)


@dataclass(frozen=True)
class StorageTarget:
    """Where a test's storage lives: reopen it with ``open`` (e.g. read-only)."""

    kind: str
    url: str
    creds: dict[str, Any] | None = None

    def open(self, read_only: bool = False) -> Storage:
        from tensorlake.storage import from_url

        return from_url(self.url, creds=self.creds, read_only=read_only)


@pytest.fixture(params=["memory", "local", "s3"])
def storage_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageTarget]:
    """The same test against memory, local disk and the moto S3 server."""
    kind = request.param
    if kind == "memory":
        name = f"test-{uuid.uuid4().hex}"
        yield StorageTarget(kind, f"mem://{name}")
        from tensorlake.storage import MemoryStorage

        MemoryStorage.drop(name)
    elif kind == "local":
        yield StorageTarget(kind, str(tmp_path / "storage"))
    else:
        bucket = request.getfixturevalue("s3_bucket")
        creds = request.getfixturevalue("s3_creds")
        yield StorageTarget(kind, f"s3://{bucket}/tl-root", creds)


@pytest.fixture
def storage(storage_target: StorageTarget) -> Iterator[Storage]:
    store = storage_target.open()
    yield store
    store.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """An 8 MiB tmpfs under ``tmp_path``, unmounted afterwards (skips where not allowed)."""
    disk = SmallDisk.mount(tmp_path / "small-disk", 8 << 20)
    try:
        yield disk
    finally:
        disk.unmount()
