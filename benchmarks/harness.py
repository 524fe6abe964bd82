"""Running one measurement in a fresh process, and the loopback S3 server.

A measured process prints ``BENCH-START`` and ``BENCH-END`` around the part that counts
and, last, ``BENCH-RESULT {json}`` (see ``benchmarks/peers/_protocol.py``). While it
runs, a sampler thread here walks its process tree every ~50 ms with psutil: each
process's own CPU time, so that the CPU seconds of the window include every worker,
however it was started (fork, forkserver, spawn), and every ~250 ms the peak of the
summed PSS (proportional set size, so pages shared by forked workers count once)
between the two markers. Measuring from outside keeps the sampler out of the measured
process, but not off the machine: reading a process's smaps_rollup costs ~2 ms of CPU,
so reading PSS at every 50 ms sample took ~13% of one core of this 2-core machine away
from what it measured; at ~250 ms it takes ~3%. A process that starts and ends between
two samples is missed, and so is a memory peak shorter than ~250 ms.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
START, END, RESULT = "BENCH-START", "BENCH-END", "BENCH-RESULT "
SAMPLE_EVERY = 0.05
PSS_EVERY = 5  # samples: PSS is read at every 5th (and at the markers)


@dataclass(slots=True)
class Run:
    """One fresh-process measurement."""

    result: dict  # what the process reported: value, unit, extras; or status + reason
    cpu_s: float | None = None  # CPU seconds of the process tree inside the window
    peak_pss_mib: float | None = None  # peak PSS of the process tree inside the window
    peak_parent_pss_mib: float | None = None  # ... of the measured process alone
    window_s: float | None = None  # wall seconds between the markers, seen from here
    wall_s: float = 0.0  # the whole process, start to exit
    stderr_tail: str = ""


@dataclass(slots=True)
class _TreeSampler:
    """Peak PSS and per-process CPU of a process tree, between two marks."""

    root: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> own user+system, last seen
    cpu_at_start: dict[int, float] | None = None
    cpu_at_end: dict[int, float] | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    peak_pss: int = 0
    peak_parent_pss: int = 0
    in_window: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    _procs: dict[int, psutil.Process] = field(default_factory=dict)

    def _tree(self) -> list[psutil.Process]:
        pids = _descendants(self.root)
        if pids is None:  # no /proc/<pid>/task/<tid>/children: ask psutil (slower)
            try:
                pids = [p.pid for p in psutil.Process(self.root).children(recursive=True)]
            except psutil.Error:
                return []
        found = []
        for pid in [self.root, *pids]:
            # one Process object per pid, so that psutil's pid-reuse checks stay valid
            proc = self._procs.get(pid)
            if proc is None:
                try:
                    proc = self._procs[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
            found.append(proc)
        return found

    def sample(self, memory: bool = True) -> None:
        with self.lock:
            pss = 0
            for proc in self._tree():
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        mem = proc.memory_full_info() if memory else None
                except psutil.Error:
                    continue
                self.cpu[proc.pid] = times.user + times.system
                if mem is not None:
                    pss += getattr(mem, "pss", mem.rss)
                    if proc.pid == self.root and self.in_window:
                        own = getattr(mem, "pss", mem.rss)
                        self.peak_parent_pss = max(self.peak_parent_pss, own)
            if self.in_window and memory:
                self.peak_pss = max(self.peak_pss, pss)

    def mark_start(self) -> None:
        self.sample()
        with self.lock:
            self.cpu_at_start = dict(self.cpu)
            self.started_at = time.perf_counter()
            self.in_window = True
        self.sample()

    def mark_end(self) -> None:
        self.sample()
        with self.lock:
            self.cpu_at_end = dict(self.cpu)
            self.ended_at = time.perf_counter()
            self.in_window = False

    def loop(self) -> None:
        count = 0
        while not self.stop.wait(SAMPLE_EVERY):
            count += 1
            self.sample(memory=count % PSS_EVERY == 0)

    def cpu_seconds(self) -> float | None:
        if self.cpu_at_start is None or self.cpu_at_end is None:
            return None
        start = self.cpu_at_start
        return sum(v - start.get(pid, 0.0) for pid, v in self.cpu_at_end.items())


def _descendants(root: int) -> list[int] | None:
    """Every descendant of ``root`` from /proc's children lists (~0.1 ms, where walking
    all processes with psutil takes ~2 ms: the sampler runs beside what it measures);
    None where the kernel has no such lists."""
    if not os.path.exists(f"/proc/{root}/task/{root}/children"):
        return None if os.path.exists(f"/proc/{root}") else []
    out: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
            except OSError:
                continue  # the thread ended
            out += kids
            stack += kids
    return out


def measure(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
    log: Path | None = None,
) -> Run:
    """Run ``cmd`` (cwd: the repository root) in a new session and measure its window."""
    err_path = log or Path(os.devnull)
    started = time.perf_counter()
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # one process group: a timeout kills the workers too
        )
        sampler = _TreeSampler(proc.pid)
        thread = threading.Thread(target=sampler.loop, daemon=True)
        thread.start()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(timeout, on_timeout)
        timer.start()
        result: dict | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line == START:
                    sampler.mark_start()
                elif line == END:
                    sampler.mark_end()
                elif line.startswith(RESULT):
                    result = json.loads(line[len(RESULT) :])
            proc.wait()
        finally:
            timer.cancel()
            sampler.stop.set()
            thread.join()
            _kill_group(proc)  # leftovers (a worker that outlived its parent)
    tail = _tail(err_path) if log else ""
    if result is None:
        why = f"timed out after {timeout:.0f}s" if timed_out.is_set() else "crashed"
        result = {
            "status": "failed",
            "reason": f"{why} (exit {proc.returncode}): {tail[-400:]}".strip(),
        }
    window = sampler.ended_at - sampler.started_at if sampler.ended_at else None
    return Run(
        result=result,
        cpu_s=sampler.cpu_seconds(),
        peak_pss_mib=sampler.peak_pss / 2**20 if sampler.peak_pss else None,
        peak_parent_pss_mib=sampler.peak_parent_pss / 2**20 if sampler.peak_parent_pss else None,
        window_s=window,
        wall_s=time.perf_counter() - started,
        stderr_tail=tail,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and all it started."""
    _kill_group(proc)
    proc.wait()


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# -- S3 on loopback -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_creds(port: int) -> dict:
    """tensorlake's (and Deep Lake 3's) creds dict for the loopback server."""
    return {
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "endpoint_url": f"http://127.0.0.1:{port}",
        "aws_region": "us-east-1",
    }


def start_moto(port: int) -> subprocess.Popen:
    """``python -m moto.server`` on 127.0.0.1:port, waited for until it accepts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def boto3_client(port: int):
    import boto3

    creds = s3_creds(port)
    return boto3.client(
        "s3",
        aws_access_key_id=creds["aws_access_key_id"],
        aws_secret_access_key=creds["aws_secret_access_key"],
        endpoint_url=creds["endpoint_url"],
        region_name=creds["aws_region"],
    )


@contextlib.contextmanager
def moto_server(bucket: str = "bench") -> Iterator[int]:
    """A loopback S3 server with ``bucket`` created; yields its port."""
    port = free_port()
    proc = start_moto(port)
    try:
        boto3_client(port).create_bucket(Bucket=bucket)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def delete_prefix(port: int, bucket: str, prefix: str) -> None:
    """Drop what a run wrote, so the in-memory server stays small."""
    client = boto3_client(port)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000]})


@contextlib.contextmanager
def slow_proxy(
    port: int,
    delay: float | Callable[[str, str], float],
    refuse: Callable[[str, str], bool] | None = None,
):
    """A loopback HTTP proxy to moto that waits ``delay`` seconds before each request
    (or ``delay(method, path)``) and answers 403 AccessDenied, without forwarding, to
    the requests ``refuse(method, path)`` picks; yields its endpoint URL (moto's own
    when it would do nothing)."""
    if not delay and refuse is None:
        yield f"http://127.0.0.1:{port}"
        return
    delay_of = delay if callable(delay) else lambda method, path: delay
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def forward(self) -> None:
            time.sleep(delay_of(self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if refuse is not None and refuse(self.command, self.path):
                denied = b"<Error><Code>AccessDenied</Code><Message>refused</Message></Error>"
                self.send_response(403)
                self.send_header("Content-Length", str(len(denied)))
                self.end_headers()
                self.wfile.write(denied)
                return
            for attempt in range(5):  # moto refuses connections in bursts: its backlog
                if getattr(local, "conn", None) is None:
                    local.conn = http.client.HTTPConnection("127.0.0.1", port)
                try:
                    local.conn.request(self.command, self.path, body, headers=dict(self.headers))
                    break
                except ConnectionRefusedError:
                    local.conn = None
                    time.sleep(0.05 * (attempt + 1))
            else:
                self.send_error(503)
                return
            response = local.conn.getresponse()
            data = response.read()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
