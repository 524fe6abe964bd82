"""HTTPStorage against a loopback http.server, with and without Range support.

``TestHTTPStorageConformance`` runs the shared read suite: objects are written to a
local storage in the folder the server serves, then read back over HTTP.
"""

from __future__ import annotations

import functools
import http.server
import pickle
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorlake.errors import KeyNotFoundError, ReadOnlyError, StorageError
from tensorlake.storage import HTTPStorage, LocalStorage, Storage, from_url
from tests.storage.conformance import ReadSuite

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; optionally honours single byte ranges, refuses HEAD, or fails.

    ``list_folders = False`` answers 404 for a folder, as an object store does,
    rather than an HTML listing.

    The class attributes are overridden per server by ``_serve``.
    """

    ranges = True
    refuse_head = False
    list_folders = True
    failures: list[int]  # statuses to answer before serving normally, consumed in order
    log: list[tuple[str, str]]

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _fail(self) -> bool:
        self.log.append((self.command, self.path))
        if self.failures:
            self.send_error(self.failures.pop(0))
            return True
        return False

    def send_head(self) -> Any:
        if not self.list_folders and Path(self.translate_path(self.path)).is_dir():
            self.send_error(404)
            return None
        return super().send_head()

    def do_HEAD(self) -> None:
        if self._fail():
            return
        if self.refuse_head:
            self.send_error(405)
            return
        super().do_HEAD()

    def do_GET(self) -> None:
        if self._fail():
            return
        match = _RANGE.match(self.headers.get("Range", ""))
        if not (self.ranges and match):
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(data)
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start : min(end, len(data))]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{len(data)}"')
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "obj.bin").write_bytes(b"0123456789")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "with space é").write_bytes(b"quoted")
    return tmp_path


class Server:
    def __init__(self, root: Path, **options: object) -> None:
        attrs = {"failures": [], "log": [], **options}
        handler = type("H", (Handler,), attrs)
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def serve(site: Path) -> Iterator:
    servers: list[Server] = []

    def start(**options: object) -> Server:
        servers.append(Server(site, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(params=[True, False], ids=["ranges", "no-ranges"])
def server(request: pytest.FixtureRequest, serve) -> Server:
    return serve(ranges=request.param)


def test_get_and_ranges(server: Server) -> None:
    store = HTTPStorage(server.url)
    assert store.get("dir/obj.bin") == b"0123456789"
    assert store.get("empty") == b""
    assert store.get_range("dir/obj.bin", 2, 5) == b"234"
    assert store.get_range("dir/obj.bin", 7, 100) == b"789"
    assert store.get_range("dir/obj.bin", 10, 20) == b""
    assert store.get_range("dir/obj.bin", 3, 3) == b""
    assert store.get_range("empty", 0, 4) == b""
    assert store.get("with space é") == b"quoted"
    assert dict(store.get_many(["dir/obj.bin", "empty"])) == {
        "dir/obj.bin": b"0123456789",
        "empty": b"",
    }


def test_ranged_requests_are_used_when_supported(serve) -> None:
    server = serve(ranges=True)
    store = HTTPStorage(server.url + "/dir/")
    assert store.get_range("obj.bin", 1, 2) == b"1"
    assert store.url == server.url + "/dir/"


def test_missing_key(server: Server) -> None:
    store = HTTPStorage(server.url)
    with pytest.raises(KeyNotFoundError) as info:
        store.get("nope")
    assert isinstance(info.value, KeyError)
    assert server.url in str(info.value)
    with pytest.raises(KeyNotFoundError):
        store.get_range("nope", 0, 3)
    with pytest.raises(KeyNotFoundError):
        store.info("nope")
    assert not store.exists("nope")


def test_info_and_exists(server: Server) -> None:
    store = HTTPStorage(server.url)
    assert store.exists("dir/obj.bin")
    info = store.info("dir/obj.bin")
    assert info.size == 10
    assert info.version  # Last-Modified from SimpleHTTPRequestHandler
    assert store.info("empty").size == 0


@pytest.mark.parametrize("ranges", [True, False])
def test_info_falls_back_to_get_when_head_is_refused(serve, ranges: bool) -> None:
    server = serve(ranges=ranges, refuse_head=True)
    store = HTTPStorage(server.url)
    assert store.info("dir/obj.bin").size == 10
    assert store.info("empty").size == 0
    assert store.exists("dir/obj.bin")
    assert not store.exists("missing")
    assert ("GET", "/dir/obj.bin") in server.handler.log


def test_read_only_and_no_listing(server: Server) -> None:
    store = HTTPStorage(server.url)
    assert store.read_only
    for write in (
        lambda: store.put("k", b"v"),
        lambda: store.put_if_absent("k", b"v"),
        lambda: store.delete("k"),
        lambda: store.delete_many(["k"]),
        lambda: store.clear("k"),
    ):
        with pytest.raises(ReadOnlyError, match="'k'"):
            write()
    with pytest.raises(StorageError, match="HTTP storage cannot list keys"):
        list(store.list())
    with pytest.raises(ReadOnlyError):
        store.with_read_only(False)


def test_retries_transient_errors(serve) -> None:
    server = serve(failures=[503, 500])
    store = HTTPStorage(server.url)
    assert store.get("dir/obj.bin") == b"0123456789"
    assert len(server.handler.log) == 3


def test_gives_up_after_max_attempts(serve) -> None:
    server = serve(failures=[503] * 10)
    store = HTTPStorage(server.url, max_attempts=2)
    with pytest.raises(StorageError, match="503") as info:
        store.get("dir/obj.bin")
    assert not isinstance(info.value, KeyError)
    assert len(server.handler.log) == 2


def test_client_errors_are_not_retried(serve) -> None:
    server = serve(failures=[403])
    store = HTTPStorage(server.url)
    with pytest.raises(StorageError, match="403"):
        store.get("dir/obj.bin")
    assert len(server.handler.log) == 1


def test_unreachable_server_is_a_storage_error() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    httpd.server_close()  # nothing listens there now
    store = HTTPStorage(f"http://127.0.0.1:{port}", max_attempts=2, timeout=2)
    with pytest.raises(StorageError, match="after 2 attempts"):
        store.get("k")


def test_key_urls_are_quoted() -> None:
    store = HTTPStorage("https://example.com/base/?sig=abc")
    assert store.key_url("a b/c#d") == "https://example.com/base/a%20b/c%23d?sig=abc"


def test_pickle_and_from_url(server: Server) -> None:
    store = from_url(server.url, read_only=False)
    assert isinstance(store, HTTPStorage)
    assert store.read_only
    store.get("empty")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("dir/obj.bin") == b"0123456789"


def test_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError):
        HTTPStorage("ftp://example.com/x")


class TestHTTPStorageConformance(ReadSuite):
    """The shared read suite, with and without Range support."""

    @pytest.fixture(params=[True, False], ids=["ranges", "no-ranges"])
    def http_server(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
        (tmp_path / "served").mkdir()
        server = Server(tmp_path / "served", ranges=request.param, list_folders=False)
        yield server
        server.close()

    @pytest.fixture
    def writer(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "served")

    @pytest.fixture
    def storage(self, http_server: Server) -> Iterator[Storage]:
        store = HTTPStorage(http_server.url)
        yield store
        store.close()
