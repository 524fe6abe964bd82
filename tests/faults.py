"""A loopback HTTP proxy that injects storage faults, for tests of every remote path.

``FaultProxy(upstream, policy)`` forwards requests to ``upstream`` (moto's S3 server,
or any HTTP server) and lets ``policy(n, method, path)`` pick a fault for the n-th
request. Faults:

- ``"500"`` / ``"503"`` / ``"slowdown"``: an S3 error answer (InternalError,
  ServiceUnavailable, 503 SlowDown), the request never forwarded;
- ``"reset"``: the connection is reset (TCP RST) before any answer, never forwarded;
- ``"lost"``: forwarded (the server acts on it), then the connection is reset: the
  client cannot know it succeeded, and a retry must neither duplicate nor lose it;
- ``"truncate"``: forwarded, then half of a successful body is sent and the
  connection closed (GETs only);
- ``"delay"``: forwarded, answered after ``delay`` seconds (past a short read
  timeout);
- ``"stall"``: never answered: the connection stays open and silent until the client
  gives up or the proxy closes.

``down = True`` is an outage: every request meets ``down_with`` (default ``"500"``),
counted as ``"down"``; ``down_after = n`` starts one after the n-th request. A request (method and path) never meets more than
``max_repeat`` faults in a row from ``policy``, so transient faults always fit the
retry budget. ``requests`` counts every request that reached the proxy, ``injected``
the faults by kind (and ``"retried"``: requests that came again while their delayed
first answer was held back).

``RandomFaults(rate, kinds, seed)`` is a policy that picks a fault for a share
``rate`` of the requests.
"""

from __future__ import annotations

import http.client
import http.server
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["TRANSIENT", "FaultProxy", "RandomFaults", "proxies"]

Policy = Callable[[int, str, str], "str | None"]

TRANSIENT = ("500", "503", "slowdown", "reset", "lost", "truncate")
"""The faults a healthy but flaky S3 endpoint shows now and then."""

_ERRORS = {
    "500": (500, "InternalError"),
    "503": (503, "ServiceUnavailable"),
    "slowdown": (503, "SlowDown"),
}
_FORWARDED = ("lost", "truncate", "delay")


class RandomFaults:
    """A policy: a fault from ``kinds`` for a share ``rate`` of the requests (seeded)."""

    def __init__(self, rate: float, kinds: Sequence[str] = TRANSIENT, seed: int = 0) -> None:
        self.rate = rate
        self.kinds = tuple(kinds)
        self._rng = random.Random(seed)

    def __call__(self, n: int, method: str, path: str) -> str | None:
        # called under the proxy's mutex: the generator needs no lock of its own
        if self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.kinds)


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream`` that injects faults (see the module)."""

    def __init__(self, upstream: str, policy: Policy | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.policy: Policy = policy or (lambda n, m, p: None)
        self.down = False
        self.down_with = "500"
        self.down_after: int | None = None
        self.delay = 1.0
        self.max_repeat = 2
        self.injected: Counter = Counter()
        self.requests = 0
        self._mutex = threading.Lock()
        self._streak: Counter = Counter()
        self._delaying: Counter = Counter()
        self._closing = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_request(self) -> None:
                body = _read_body(self)
                fault = proxy._fault(self.command, self.path)
                try:
                    proxy._serve(self, body, fault)
                except OSError:  # the client gave up (timeout) and hung up
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_request

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def faults(self) -> int:
        """Faults injected so far (every kind, ``"retried"`` left out)."""
        with self._mutex:
            return sum(n for kind, n in self.injected.items() if kind != "retried")

    def close(self) -> None:
        self._closing.set()  # stalled requests hang up now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _fault(self, method: str, path: str) -> str | None:
        where = (method, path)
        with self._mutex:
            self.requests += 1
            if self.down_after is not None and self.requests > self.down_after:
                self.down = True
            if self._delaying[where]:
                self.injected["retried"] += 1
            if self.down:
                self.injected["down"] += 1
                return f"down:{self.down_with}"
            if self._streak[where] >= self.max_repeat:
                fault = None
            else:
                fault = self.policy(self.requests, method, path)
            if fault == "truncate" and method != "GET":
                fault = None
            self._streak[where] = self._streak[where] + 1 if fault else 0
            if fault is not None and fault != "truncate":  # truncation is counted when done
                self.injected[fault] += 1
            return fault

    def _serve(self, handler: Any, body: bytes, fault: str | None) -> None:
        if fault is not None and fault.startswith("down:"):
            fault = fault.removeprefix("down:")
        if fault in _ERRORS:
            status, code = _ERRORS[fault]
            xml = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
            _reply(handler, status, [("Content-Type", "application/xml")], xml)
            return
        if fault == "reset":
            _reset(handler)
            return
        if fault == "stall":
            self._closing.wait(120)  # silent until the client hangs up (or the proxy closes)
            _reset(handler)
            return
        status, response_headers, data = self._forward(handler, body)
        if fault == "lost":
            _reset(handler)
            return
        if fault == "truncate" and status in (200, 206) and len(data) >= 2:
            with self._mutex:
                self.injected["truncate"] += 1
            _reply(handler, status, response_headers, data, cut=len(data) // 2)
            return
        if fault == "delay":
            where = (handler.command, handler.path)
            with self._mutex:
                self._delaying[where] += 1
            time.sleep(self.delay)
            with self._mutex:
                self._delaying[where] -= 1
        _reply(handler, status, response_headers, data)

    def _forward(self, handler: Any, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "transfer-encoding"}
            headers["Content-Length"] = str(len(body))
            conn.request(handler.command, handler.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


def _read_body(handler: Any) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    parts = []
    while size := int(handler.rfile.readline().split(b";")[0], 16):
        parts.append(handler.rfile.read(size))
        handler.rfile.readline()
    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(parts)


def _reset(handler: Any) -> None:
    """Hang up with a TCP reset (SO_LINGER 0), no answer sent."""
    handler.close_connection = True
    sock: socket.socket = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _reply(
    handler: Any, status: int, headers: list[tuple[str, str]], body: bytes, cut: int | None = None
) -> None:
    """Send a response; with ``cut``, announce all of ``body`` but send ``cut`` bytes and hang up."""
    handler.send_response(status)
    head = handler.command == "HEAD"  # no body: the upstream's length is the object's
    skip = ("transfer-encoding", "connection", "date", "server")
    for name, value in headers:
        if name.lower() not in skip and (head or name.lower() != "content-length"):
            handler.send_header(name, value)
    if not head:
        handler.send_header("Content-Length", str(len(body)))
    if cut is not None:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body if cut is None else body[:cut])
    handler.wfile.flush()


def proxies(upstream: str) -> Iterator[Callable[..., FaultProxy]]:
    """The body of a ``fault_proxy`` fixture: yields ``start(policy=None, upstream=...)``,
    which starts a ``FaultProxy`` (in front of ``upstream`` by default); all are closed
    after the test. A test module defines the fixture itself::

        @pytest.fixture
        def fault_proxy(s3_server):
            yield from proxies(s3_server)
    """
    started: list[FaultProxy] = []

    def start(policy: Policy | None = None, upstream_url: str | None = None) -> FaultProxy:
        started.append(FaultProxy(upstream_url or upstream, policy))
        return started[-1]

    yield start
    for proxy in started:
        proxy.close()
