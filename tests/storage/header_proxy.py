"""A loopback HTTP proxy that drops request headers: an S3-compatible server without
conditional writes, made from moto's server (which has them).

``HeaderStrippingProxy(upstream)`` listens on 127.0.0.1 (a free port), forwards every
request to ``upstream`` without the headers in ``strip`` (default ``If-None-Match``),
and returns the upstream's response as it came. ``stripped`` counts the requests that
lost a header, so a test can tell the client did send it. moto does not check request
signatures, so the missing (signed) header goes unnoticed there, as on such servers.

Example::

    with HeaderStrippingProxy(s3_server) as proxy:
        creds = {**s3_creds, "endpoint_url": proxy.url}
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["HeaderStrippingProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class HeaderStrippingProxy:
    """Forwards HTTP requests to ``upstream`` without the ``strip`` headers."""

    def __init__(self, upstream: str, strip: tuple[str, ...] = ("if-none-match",)) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._strip = {h.lower() for h in strip}
        self.stripped = 0
        self._count_lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self._body()
                headers = {}
                dropped = False
                for name, value in self.headers.items():
                    lower = name.lower()
                    if lower in proxy._strip:
                        dropped = True
                    elif lower not in _HOP_BY_HOP:
                        headers[name] = value
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                if dropped:
                    with proxy._count_lock:
                        proxy.stripped += 1
                conn = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            def _body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = self.headers.get("Content-Length")
                return self.rfile.read(int(length)) if length is not None else None

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
