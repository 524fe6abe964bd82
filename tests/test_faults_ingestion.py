"""Every ingestion source reading from S3 (or HTTP) through injected faults.

``tests/faults.py``'s proxy sits in front of moto (or a loopback HTTP server): with 20%
of the requests failing (500, 503, SlowDown, resets, lost answers, cut bodies) each
source ingests exactly what a fault-free run ingests; in an outage each ends in one
clear error (``StorageError``, or the source's ``IngestError`` wrapping it), never
``FormatError``, within a bounded time; ``tl.upload`` stores every file exactly. A
stalled HTTP answer times out after ``TENSORLAKE_HTTP_TIMEOUT`` and is retried (an
archive download, ``HTTPStorage``); a server that stalls everything is an error after
``TENSORLAKE_HTTP_MAX_ATTEMPTS`` timeouts.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tensorlake as tl
from tensorlake.ingestion import archive
from tensorlake.storage import HTTPStorage
from tests.faults import FaultProxy, RandomFaults, proxies

QUIET = {"progressbar": False, "summary": False}
OUTAGE_LIMIT = 30.0  # seconds an outage may take to surface (3 attempts per request)


@pytest.fixture
def fault_proxy(s3_server: str) -> Iterator[Callable[..., FaultProxy]]:
    yield from proxies(s3_server)


@pytest.fixture(autouse=True)
def _short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "S3_PART", 1000)  # an S3 archive is read in several ranges
    # Transient faults fit 3 attempts (the proxy injects at most 2 in a row); outages
    # then surface in seconds, not the default ~70 s.
    monkeypatch.setenv("TENSORLAKE_S3_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("TENSORLAKE_HTTP_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("TENSORLAKE_S3_READ_TIMEOUT", "5")
    monkeypatch.setenv("TENSORLAKE_HTTP_TIMEOUT", "5")


def _png(seed: int, size: tuple[int, int] = (6, 8)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="PNG")
    return out.getvalue()


CLASSES = {
    f"{c}/{i:02d}.png": _png(i * 2 + (c == "dog")) for c in ("cat", "dog") for i in range(12)
}
COCO_IMAGES = {f"{i:06d}.png": _png(100 + i, (10, 12)) for i in range(1, 13)}
COCO = {
    "images": [
        {"id": i, "file_name": f"{i:06d}.png", "height": 10, "width": 12} for i in range(12, 0, -1)
    ],
    "annotations": [
        {
            "id": 100 + i,
            "image_id": 1 + i % 12,
            "category_id": 1 + i % 2,
            "bbox": [float(i % 5), 1.0, 3.0, 4.0],
            "area": 12.0,
            "iscrowd": 0,
        }
        for i in range(30)
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            # a fixed time: the same files give the same bytes, whenever they are zipped
            entry = zipfile.ZipInfo(f"pets/{name}", date_time=(2026, 1, 1, 0, 0, 0))
            z.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@pytest.fixture
def source(s3_bucket: str, _s3_admin: Any) -> str:
    """The sources of every test, put straight into a fresh bucket."""
    objects = {f"cls/{k}": v for k, v in CLASSES.items()}
    objects |= {f"coco/images/{k}": v for k, v in COCO_IMAGES.items()}
    objects["coco/instances.json"] = json.dumps(COCO).encode()
    urls = [f"s3://{s3_bucket}/cls/{k}" for k in sorted(CLASSES)]
    objects["manifest.json"] = json.dumps({"images": [{"objectUrl": u} for u in urls]}).encode()
    objects["in/pets.zip"] = _zip(CLASSES)
    for key, body in objects.items():
        _s3_admin.put_object(Bucket=s3_bucket, Key=key, Body=body)
    return s3_bucket


@pytest.fixture
def http_site(tmp_path: Path) -> Iterator[str]:
    """The archive on a loopback HTTP server (no Range: a resumed download restarts)."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "pets.zip").write_bytes(_zip(CLASSES))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _content(ds: tl.Dataset) -> dict[str, list]:
    """Every tensor's rows: stored image bytes, links, or array shape and bytes."""
    out: dict[str, list] = {}
    for name, t in ds.tensors.items():
        if t.meta.htype.startswith("link["):
            out[name] = t.links()
        elif t.meta.htype == "image":
            out[name] = [t[i].tobytes() for i in range(len(t))]
        else:
            out[name] = [
                (a.shape, a.tobytes()) if isinstance(a, np.ndarray) else a
                for a in t.numpy(aslist=True)
            ]
    return out


# -- one ingest per source: run(creds, dest) with the S3 creds to read through ----------


def _classification(bucket: str, creds: dict, dest: Path) -> tl.Dataset:
    return tl.ingest_classification(
        f"s3://{bucket}/cls/", dest, src_creds=creds, num_workers=2, **QUIET
    )


def _coco(bucket: str, creds: dict, dest: Path) -> tl.Dataset:
    return tl.ingest_coco(
        f"s3://{bucket}/coco/images",
        f"s3://{bucket}/coco/instances.json",
        dest,
        src_creds=creds,
        num_workers=2,
        **QUIET,
    )


def _manifest_verified(bucket: str, creds: dict, dest: Path) -> tl.Dataset:
    return tl.ingest_manifest(
        f"s3://{bucket}/manifest.json", dest, verify=True, src_creds=creds, **QUIET
    )


def _manifest_copied(bucket: str, creds: dict, dest: Path) -> tl.Dataset:
    return tl.ingest_manifest(
        f"s3://{bucket}/manifest.json", dest, link=False, src_creds=creds, num_workers=2, **QUIET
    )


def _archive(bucket: str, creds: dict, dest: Path) -> tl.Dataset:
    return tl.ingest_archive(f"s3://{bucket}/in/pets.zip", dest, src_creds=creds, **QUIET)


SOURCES = {
    "classification": _classification,
    "coco": _coco,
    "manifest-verify": _manifest_verified,
    "manifest-copy": _manifest_copied,
    "archive-s3": _archive,
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_source_through_transient_faults_is_exact(
    name: str, fault_proxy, source: str, s3_creds: dict, tmp_path: Path
) -> None:
    run = SOURCES[name]
    expected = _content(run(source, s3_creds, tmp_path / "direct"))
    proxy = fault_proxy(RandomFaults(0.2, seed=len(name)))
    ds = run(source, {**s3_creds, "endpoint_url": proxy.url}, tmp_path / "faulty")
    assert _content(ds) == expected and len(ds) > 0
    print(f"\n{name}: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 2, proxy.injected


@pytest.mark.parametrize("after", [0, 4], ids=["from-the-start", "midway"])
@pytest.mark.parametrize("name", list(SOURCES))
def test_each_source_in_an_outage_fails_with_one_clear_error(
    name: str, after: int, fault_proxy, source: str, s3_creds: dict, tmp_path: Path
) -> None:
    proxy = fault_proxy()
    proxy.down_after = after  # midway: the listing or manifest read, then the objects
    started = time.monotonic()
    with pytest.raises((tl.StorageError, tl.IngestError)) as info:
        SOURCES[name](source, {**s3_creds, "endpoint_url": proxy.url}, tmp_path / "ds")
    elapsed = time.monotonic() - started
    print(f"\n{name} outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    _assert_outage_error(info.value)
    assert elapsed < OUTAGE_LIMIT


def _assert_outage_error(err: BaseException) -> None:
    """A StorageError, or a typed error caused by one, that names the server's answer."""
    assert not isinstance(err, tl.FormatError)
    chain = [err]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    assert any(isinstance(e, tl.StorageError) for e in chain), chain
    assert "InternalError" in str(err) or "500" in str(err), err


# -- HTTP archives ---------------------------------------------------------------------


def test_an_http_archive_through_transient_faults_is_exact(
    fault_proxy, http_site: str, source: str, s3_creds: dict, tmp_path: Path
) -> None:
    expected = _content(_archive(source, s3_creds, tmp_path / "direct"))
    kinds = ("500", "503", "reset", "truncate")
    proxy = fault_proxy(lambda n, m, p: kinds[n - 1] if n <= 4 else None, http_site)
    proxy.max_repeat = 4
    ds = tl.ingest_archive(f"{proxy.url}/pets.zip", tmp_path / "faulty", **QUIET)
    assert _content(ds) == expected
    assert proxy.faults == 4 and proxy.requests == 5, proxy.injected


def test_an_http_archive_in_an_outage_fails_with_one_clear_error(
    fault_proxy, http_site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "BACKOFF", 0.05)
    proxy = fault_proxy(upstream_url=http_site)
    proxy.down = True
    started = time.monotonic()
    with pytest.raises(tl.IngestError, match="500") as info:
        tl.ingest_archive(f"{proxy.url}/pets.zip", tmp_path / "ds", **QUIET)
    assert time.monotonic() - started < OUTAGE_LIMIT
    assert proxy.injected["down"] == archive.RETRIES + 1, proxy.injected
    assert not isinstance(info.value, tl.FormatError)


# -- tl.upload -------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    files = {f"train/{k}": v for k, v in CLASSES.items()}
    files["big.bin"] = np.random.default_rng(0).bytes(3 * 1024 * 1024)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _stored(admin: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            body = admin.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix) :]] = body
    return out


def test_upload_through_transient_faults_stores_every_file_exactly(
    fault_proxy, s3_bucket: str, s3_creds: dict, _s3_admin: Any, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "up")
    proxy = fault_proxy(RandomFaults(0.15, seed=3))
    creds = {**s3_creds, "endpoint_url": proxy.url}
    parts = {"multipart_threshold": 1024 * 1024, "multipart_chunksize": 512 * 1024}
    report = tl.upload(tmp_path / "up", f"s3://{s3_bucket}/up", creds, progressbar=False, **parts)
    assert report.files_uploaded == len(files)
    assert _stored(_s3_admin, s3_bucket, "up/") == files
    again = tl.upload(tmp_path / "up", f"s3://{s3_bucket}/up", creds, progressbar=False, **parts)
    assert again.files_skipped == len(files) and again.files_uploaded == 0
    print(f"\nupload: {proxy.faults} faults in {proxy.requests} requests {dict(proxy.injected)}")
    assert proxy.faults >= 3, proxy.injected


def test_upload_rides_out_throttling_of_its_bucket_check(
    fault_proxy, s3_bucket: str, s3_creds: dict, _s3_admin: Any, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "up")
    proxy = fault_proxy(lambda n, m, p: "slowdown" if n <= 2 else None)  # the first HEAD
    creds = {**s3_creds, "endpoint_url": proxy.url}
    report = tl.upload(tmp_path / "up", f"s3://{s3_bucket}/up", creds, progressbar=False)
    assert report.files_uploaded == len(files) and proxy.injected["slowdown"] == 2
    assert _stored(_s3_admin, s3_bucket, "up/") == files


def test_upload_in_an_outage_fails_with_one_storage_error(
    fault_proxy, s3_bucket: str, s3_creds: dict, tmp_path: Path
) -> None:
    _tree(tmp_path / "up")
    proxy = fault_proxy()
    proxy.down_after = 3  # the bucket is found, then the server goes down
    started = time.monotonic()
    with pytest.raises(tl.StorageError) as info:
        tl.upload(
            tmp_path / "up", f"s3://{s3_bucket}/up", {**s3_creds, "endpoint_url": proxy.url},
            progressbar=False,
        )  # fmt: skip
    elapsed = time.monotonic() - started
    print(f"\nupload outage: {type(info.value).__name__} in {elapsed:.1f}s: {info.value}")
    _assert_outage_error(info.value)
    assert elapsed < OUTAGE_LIMIT


def test_a_stalled_http_download_times_out_and_is_resumed(
    fault_proxy, http_site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_HTTP_TIMEOUT", "0.5")
    proxy = fault_proxy(lambda n, m, p: "stall" if n == 1 else None, http_site)
    started = time.monotonic()
    ds = tl.ingest_archive(f"{proxy.url}/pets.zip", tmp_path / "ds", **QUIET)
    assert len(ds) == len(CLASSES) and proxy.injected["stall"] == 1
    assert time.monotonic() - started < 10


def test_http_storage_times_out_a_stall_and_fails_on_a_stalled_server(
    fault_proxy, http_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENSORLAKE_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("TENSORLAKE_HTTP_MAX_ATTEMPTS", "2")
    proxy = fault_proxy(lambda n, m, p: "stall" if n == 1 else None, http_site)
    store = HTTPStorage(proxy.url)
    assert store.get("pets.zip") == _zip(CLASSES)  # the stalled first attempt is retried
    proxy.down, proxy.down_with = True, "stall"
    started = time.monotonic()
    with pytest.raises(tl.StorageError, match="after 2 attempts"):
        store.get("pets.zip")
    assert 0.9 <= time.monotonic() - started < 10  # two timeouts of 0.5 s, not a hang
