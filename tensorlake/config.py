"""Defaults, each overridable by a ``TENSORLAKE_*`` environment variable.

Values are read when asked for, never cached at import, so a test or a worker can
change the environment and see the new value.
"""

from __future__ import annotations

import os
from pathlib import Path

from tensorlake.errors import ConfigError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_GC_GRACE",
    "START_METHODS",
    "cache_bytes",
    "chunk_size",
    "direct_write_min_bytes",
    "gc_grace",
    "home",
    "html_preview_rows",
    "http_max_attempts",
    "http_timeout",
    "io_threads",
    "lock_lease",
    "s3_connect_timeout",
    "s3_max_attempts",
    "s3_read_timeout",
    "s3_retry_mode",
    "start_method",
]

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
"""Target bytes per chunk: large enough for sequential I/O, small enough to rewrite."""


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def chunk_size() -> int:
    """Target chunk size in bytes (``TENSORLAKE_CHUNK_SIZE``)."""
    return _int_env("TENSORLAKE_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)


def direct_write_min_bytes() -> int | None:
    """The smallest chunk a compute worker writes to local disk around the page cache
    (``TENSORLAKE_DIRECT_WRITE_MIN_BYTES``, default 1 MiB; a negative value: never).

    Such writes cost almost no CPU, but the chunks are then read back from the disk, not
    from memory: turn them off to train on a freshly ingested dataset from a warm cache.
    """
    minimum = _int_env("TENSORLAKE_DIRECT_WRITE_MIN_BYTES", 1 << 20)
    return None if minimum < 0 else minimum


def cache_bytes() -> int:
    """Byte budget of the read cache put in front of remote storage (``TENSORLAKE_CACHE_BYTES``)."""
    return _int_env("TENSORLAKE_CACHE_BYTES", 256 * 1024 * 1024)


def html_preview_rows() -> int:
    """Rows previewed under a dataset's HTML table in notebooks (``TENSORLAKE_HTML_PREVIEW``,
    default 4; 0 shows the table alone, which reads no chunk)."""
    rows = _int_env("TENSORLAKE_HTML_PREVIEW", 4)
    if rows < 0:
        raise ConfigError(f"TENSORLAKE_HTML_PREVIEW must be >= 0, got {rows}.")
    return rows


def io_threads() -> int:
    """Threads used for concurrent storage reads (``TENSORLAKE_IO_THREADS``)."""
    return _int_env("TENSORLAKE_IO_THREADS", 16)


def _seconds_env(name: str, default: float) -> float:
    """A positive, finite number of seconds from ``name``."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return seconds


def _attempts_env(name: str, default: int) -> int:
    attempts = _int_env(name, default)
    if attempts < 1:
        raise ConfigError(f"{name} must be at least 1 (the first attempt), got {attempts}")
    return attempts


def s3_max_attempts() -> int:
    """Attempts per S3 request, the first included (``TENSORLAKE_S3_MAX_ATTEMPTS``,
    default 8): throttling (SlowDown), 5xx answers, resets and timeouts are retried
    with botocore's jittered exponential backoff (before retry n, a random wait of up
    to ``0.05 * 2**n`` s, or ``2**n`` s capped at 20 s when throttled): with the default
    a 5xx outage fails within ~6 s, a throttling one within ~70 s, a stalled server
    within 8 read timeouts."""
    return _attempts_env("TENSORLAKE_S3_MAX_ATTEMPTS", 8)


def s3_retry_mode() -> str:
    """botocore's retry mode for S3 (``TENSORLAKE_S3_RETRY_MODE``: ``standard``, the
    default, or ``adaptive``, which also rate-limits the client after throttling)."""
    mode = os.environ.get("TENSORLAKE_S3_RETRY_MODE") or "standard"
    if mode not in ("standard", "adaptive"):
        raise ConfigError(
            f"TENSORLAKE_S3_RETRY_MODE must be 'standard' or 'adaptive', got {mode!r}"
        )
    return mode


def s3_connect_timeout() -> float:
    """Seconds to open a connection to S3 (``TENSORLAKE_S3_CONNECT_TIMEOUT``, default 10)."""
    return _seconds_env("TENSORLAKE_S3_CONNECT_TIMEOUT", 10.0)


def s3_read_timeout() -> float:
    """Seconds S3 may stay silent on an open connection before the attempt is dropped and
    retried (``TENSORLAKE_S3_READ_TIMEOUT``, default 20; S3 answers in milliseconds, so
    a silence that long is a stalled connection): a stalled server costs at most this
    per attempt."""
    return _seconds_env("TENSORLAKE_S3_READ_TIMEOUT", 20.0)


def http_max_attempts() -> int:
    """Attempts per HTTP(S) request of HTTP storage and archive downloads, the first
    included (``TENSORLAKE_HTTP_MAX_ATTEMPTS``, default 5; 429, 5xx, resets and timeouts
    are retried with jittered exponential backoff)."""
    return _attempts_env("TENSORLAKE_HTTP_MAX_ATTEMPTS", 5)


def http_timeout() -> float:
    """Seconds an HTTP(S) server may stay silent before the attempt is dropped and retried
    (``TENSORLAKE_HTTP_TIMEOUT``, default 30)."""
    return _seconds_env("TENSORLAKE_HTTP_TIMEOUT", 30.0)


def lock_lease() -> float:
    """Seconds a writer lock stays valid after its last heartbeat (``TENSORLAKE_LOCK_LEASE``).

    The holder refreshes its lock every third of this; another writer may take
    the lock over once this long has passed without a refresh.
    """
    raw = os.environ.get("TENSORLAKE_LOCK_LEASE")
    if raw is None or raw == "":
        return 60.0
    try:
        lease = float(raw)
    except ValueError:
        raise ConfigError(
            f"TENSORLAKE_LOCK_LEASE must be a number of seconds, got {raw!r}"
        ) from None
    if not 0 < lease < float("inf"):
        raise ConfigError(
            f"TENSORLAKE_LOCK_LEASE must be a positive number of seconds, got {raw!r}"
        )
    return lease


DEFAULT_GC_GRACE = 300.0
"""Seconds a superseded object stays readable (see ``gc_grace``)."""


def gc_grace() -> float:
    """Seconds an object stays stored after the last manifest naming it was superseded
    (``TENSORLAKE_GC_GRACE``, default 300): a reader that opened the older manifest can
    read it that long after a writer moved on. Flushes and ``gc()`` delete only
    garbage older than this; 0 deletes it at once (for a dataset no other process reads).
    """
    raw = os.environ.get("TENSORLAKE_GC_GRACE")
    if raw is None or raw == "":
        return DEFAULT_GC_GRACE
    try:
        grace = float(raw)
    except ValueError:
        raise ConfigError(f"TENSORLAKE_GC_GRACE must be a number of seconds, got {raw!r}") from None
    if not 0 <= grace < float("inf"):
        raise ConfigError(f"TENSORLAKE_GC_GRACE must be >= 0 seconds, got {raw!r}")
    return grace


def home() -> Path:
    """The local home of registered datasets (``TENSORLAKE_HOME``, default ``~/.tensorlake``)."""
    return Path(os.environ.get("TENSORLAKE_HOME") or Path.home() / ".tensorlake")


START_METHODS = ("auto", "fork", "forkserver", "spawn")


def start_method() -> str:
    """How compute starts worker processes (``TENSORLAKE_START_METHOD``, default ``auto``).

    ``auto`` forks when no other thread runs in the process (the fastest start, and the
    only moment forking is safe), else uses a forkserver. ``fork``, ``forkserver`` and
    ``spawn`` force one method.
    """
    method = os.environ.get("TENSORLAKE_START_METHOD") or "auto"
    if method not in START_METHODS:
        raise ConfigError(f"TENSORLAKE_START_METHOD must be one of {START_METHODS}, got {method!r}")
    return method
