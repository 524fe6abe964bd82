"""S3Storage specifics against moto's server: errors, retries, multipart, pagination.

Faults are injected by a tiny loopback HTTP proxy in front of moto (or a server
that answers every request with one canned S3 error); boto3 is never patched.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from tensorlake.errors import KeyNotFoundError, StorageError
from tensorlake.storage import S3Storage, from_url


def _error_xml(code: str, message: str = "injected by the test proxy") -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Forwards to ``upstream`` after playing ``plan`` (one step per request).

    Steps: ``(status, code)`` answers with that S3 error without forwarding;
    ``("forward", status, code)`` forwards, then hides the real answer behind the error.
    """

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] | None = None
    plan: list[tuple]
    log: list[tuple[str, str]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if not size:
                    break
                chunks.append(chunk)
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "date",
                "server",
            ):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        self._reply(status, [("Content-Type", "application/xml")], _error_xml(code))

    def _handle(self) -> None:
        body = self._body()
        self.log.append((self.command, self.path))
        step = self.plan.pop(0) if self.plan else None
        if step is not None and step[0] != "forward":
            self._error(*step)
            return
        assert self.upstream is not None
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if step is not None:
            self._error(step[1], step[2])
            return
        self._reply(response.status, response.getheaders(), data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@pytest.fixture
def proxy(s3_server: str) -> Iterator[Any]:
    """Start a proxy in front of moto; yields a function ``start(plan) -> handler class``."""
    servers = []
    host, port = urlsplit(s3_server).hostname, urlsplit(s3_server).port

    def start(plan: list[tuple], upstream: bool = True) -> Any:
        handler = type(
            "P",
            (ProxyHandler,),
            {"plan": list(plan), "log": [], "upstream": (host, port) if upstream else None},
        )
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        servers.append((httpd, thread))
        handler.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        return handler

    yield start
    for httpd, thread in servers:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _open(bucket: str, creds: dict, endpoint: str | None = None, **kwargs: Any) -> S3Storage:
    creds = {**creds, "endpoint_url": endpoint or creds["endpoint_url"]}
    return S3Storage(bucket, "root", creds, **kwargs)


# --- errors -------------------------------------------------------------------


def test_missing_bucket(s3_creds: dict) -> None:
    store = S3Storage("tl-no-such-bucket", "x", s3_creds)
    for op in (lambda: store.get("k"), lambda: store.put("k", b"v"), lambda: list(store.list())):
        with pytest.raises(StorageError, match="bucket 'tl-no-such-bucket' does not exist") as info:
            op()
        assert not isinstance(info.value, KeyError)
        assert info.value.__cause__ is not None


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_auth_errors_say_to_check_creds(proxy, code: str) -> None:
    server = proxy([(403, code)] * 5, upstream=False)
    store = _open("bucket", {"endpoint_url": server.url})
    with pytest.raises(StorageError, match=r"check the `creds`") as info:
        store.get("k")
    assert code in str(info.value)
    assert info.value.key == "k"


def test_other_client_errors_carry_the_code(proxy) -> None:
    server = proxy([(400, "InvalidArgument")], upstream=False)
    store = _open("bucket", {"endpoint_url": server.url})
    with pytest.raises(StorageError, match="InvalidArgument"):
        store.put("k", b"v")


def test_wrong_credentials_with_moto_auth(s3_server: str, s3_bucket: str, s3_creds: dict) -> None:
    def reset_auth(value: str) -> str:
        request = urllib.request.Request(
            f"{s3_server}/moto-api/reset-auth",
            data=value.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    try:
        previous = reset_auth("0")
    except (urllib.error.URLError, KeyError, ValueError):
        pytest.skip("this moto server cannot switch on authentication")
    try:
        store = S3Storage(s3_bucket, "x", {**s3_creds, "aws_access_key_id": "not-a-real-key"})
        with pytest.raises(StorageError, match=r"check the `creds`"):
            store.get("k")
    finally:
        reset_auth(previous)


def test_unknown_creds_key(s3_creds: dict) -> None:
    with pytest.raises(ValueError, match="aws_secret_access_key") as info:
        S3Storage("bucket", "", {**s3_creds, "secret": "x"})
    assert "'secret'" in str(info.value)
    with pytest.raises(ValueError):
        S3Storage("bucket", "", {"aws_region": "us-east-1", "region_name": "us-east-1"})
    S3Storage("bucket", "", {"region_name": "us-east-1"})  # a synonym of aws_region


# --- retries ------------------------------------------------------------------


def test_retries_transient_errors(proxy, s3_bucket: str, s3_creds: dict) -> None:
    server = proxy([(503, "SlowDown"), (500, "InternalError")])
    store = _open(s3_bucket, s3_creds, server.url)
    store.put("k", b"value")
    assert len(server.log) == 3
    server.plan[:] = [(503, "ServiceUnavailable")]
    assert store.get("k") == b"value"
    assert len(server.log) == 5


def test_put_if_absent_retries_conflicts(proxy, s3_bucket: str, s3_creds: dict) -> None:
    server = proxy([(409, "ConditionalRequestConflict")])
    store = _open(s3_bucket, s3_creds, server.url)
    assert store.put_if_absent("lock", b"me") is True
    assert store.get("lock") == b"me"
    assert store.put_if_absent("lock", b"other") is False


def test_put_if_absent_survives_a_lost_response(proxy, s3_bucket: str, s3_creds: dict) -> None:
    # The first PUT reaches S3 but its answer is lost; the retry then sees 412.
    server = proxy([("forward", 503, "SlowDown")])
    store = _open(s3_bucket, s3_creds, server.url)
    assert store.put_if_absent("lock", b"me") is True
    assert [m for m, _ in server.log[:2]] == ["PUT", "PUT"]
    assert store.put_if_absent("lock", b"me") is False  # no retry: a plain loss


def test_gives_up_after_max_attempts(proxy, s3_bucket: str, s3_creds: dict) -> None:
    server = proxy([(503, "SlowDown")] * 5)
    store = _open(s3_bucket, s3_creds, server.url, max_attempts=2)
    with pytest.raises(StorageError, match="SlowDown"):
        store.get("k")
    assert len(server.log) == 2


# --- big objects and many keys --------------------------------------------------


def test_multipart_upload(s3_bucket: str, s3_creds: dict) -> None:
    mib = 1024 * 1024
    store = S3Storage(
        s3_bucket, "mp", s3_creds, multipart_threshold=5 * mib, multipart_chunksize=5 * mib
    )
    data = bytes(range(256)) * (6 * mib // 256) + b"tail"
    store.put("big", memoryview(data))
    assert store.info("big").size == len(data)
    assert store.info("big").version.endswith("-2")  # S3's ETag of a 2-part upload
    assert store.get("big") == data
    assert store.get_range("big", 5 * mib - 2, 5 * mib + 2) == data[5 * mib - 2 : 5 * mib + 2]


def _bulk_create(store: S3Storage, keys: list[str]) -> None:
    """Create empty objects fast: straight into moto's in-process backend when it is there.

    Over HTTP each PUT to moto costs ~5 ms; the session's server runs in this
    process, so its backend can be filled directly (falling back to PUTs).
    """
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backends = s3_backends[DEFAULT_ACCOUNT_ID]
        backend = backends["aws"] if "aws" in backends else backends["global"]
        for key in keys:
            backend.put_object(store.bucket, f"{store.prefix}/{key}", b"")
        if store.exists(keys[-1]):
            return
    except (ImportError, KeyError, AttributeError, TypeError):
        pass
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: store.put(k, b""), keys))


def test_pagination_and_batched_delete(s3_bucket: str, s3_creds: dict) -> None:
    store = S3Storage(s3_bucket, "many", s3_creds)
    keys = [f"k/{i:05d}" for i in range(1005)]
    _bulk_create(store, keys)
    store.put("k/01004", b"over http")
    assert list(store.list()) == keys
    assert list(store.list("k/0100")) == [f"k/{i:05d}" for i in range(1000, 1005)]
    assert store.get("k/01004") == b"over http"
    store.clear()
    assert list(store.list()) == []


# --- layout -------------------------------------------------------------------


def test_prefix_isolation_and_folder_markers(
    _s3_admin: Any, s3_bucket: str, s3_creds: dict
) -> None:
    store = S3Storage(s3_bucket, "/data/ds/", s3_creds)
    assert store.url == f"s3://{s3_bucket}/data/ds"
    store.put("a/b", b"v")
    _s3_admin.put_object(Bucket=s3_bucket, Key="data/ds2/x", Body=b"")
    _s3_admin.put_object(Bucket=s3_bucket, Key="data/ds/folder/", Body=b"")
    _s3_admin.put_object(Bucket=s3_bucket, Key="outside", Body=b"")
    assert list(store.list()) == ["a/b"]
    head = _s3_admin.get_object(Bucket=s3_bucket, Key="data/ds/a/b")
    assert head["Body"].read() == b"v"
    whole = S3Storage(s3_bucket, "", s3_creds)
    assert whole.url == f"s3://{s3_bucket}"
    assert list(whole.list()) == ["data/ds/a/b", "data/ds2/x", "outside"]


def test_from_url_and_missing_keys(s3_bucket: str, s3_creds: dict) -> None:
    store = from_url(f"s3://{s3_bucket}/p/q", creds=s3_creds)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix) == (s3_bucket, "p/q")
    with pytest.raises(KeyNotFoundError, match=f"s3://{s3_bucket}/p/q"):
        store.get("nope")
    assert store.get_range("nope", 3, 3) == b""  # empty ranges make no request
    store.close()
    store.put("k", b"v")  # the client is recreated after close()
    assert store.get("k") == b"v"
