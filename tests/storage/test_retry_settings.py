"""Retries and timeouts of S3 and HTTP storage: bounded, and set by TENSORLAKE_* variables."""

from __future__ import annotations

import pytest

import tensorlake as tl
from tensorlake import config
from tensorlake.storage import HTTPStorage, S3Storage

SETTINGS = {
    "TENSORLAKE_S3_MAX_ATTEMPTS": "3",
    "TENSORLAKE_S3_RETRY_MODE": "adaptive",
    "TENSORLAKE_S3_CONNECT_TIMEOUT": "2.5",
    "TENSORLAKE_S3_READ_TIMEOUT": "4",
    "TENSORLAKE_HTTP_MAX_ATTEMPTS": "2",
    "TENSORLAKE_HTTP_TIMEOUT": "7",
}


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch)
    assert config.s3_max_attempts() == 8 and config.s3_retry_mode() == "standard"
    assert (config.s3_connect_timeout(), config.s3_read_timeout()) == (10.0, 20.0)
    assert (config.http_max_attempts(), config.http_timeout()) == (5, 30.0)
    client = S3Storage("bucket", creds={"endpoint_url": "http://127.0.0.1:9"}).client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 8}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (10.0, 20.0)


def test_the_environment_sets_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    client = S3Storage("bucket", creds={"endpoint_url": "http://127.0.0.1:9"}).client
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (2.5, 4.0)
    http = HTTPStorage("http://127.0.0.1:9/data")
    assert (http._max_attempts, http._timeout) == (2, 7.0)
    explicit = S3Storage("bucket", max_attempts=5, read_timeout=1.0)  # arguments win
    assert (explicit._max_attempts, explicit._timeouts[1]) == (5, 1.0)


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("TENSORLAKE_S3_MAX_ATTEMPTS", "0", config.s3_max_attempts),
        ("TENSORLAKE_S3_MAX_ATTEMPTS", "many", config.s3_max_attempts),
        ("TENSORLAKE_S3_RETRY_MODE", "legacy", config.s3_retry_mode),
        ("TENSORLAKE_S3_READ_TIMEOUT", "-1", config.s3_read_timeout),
        ("TENSORLAKE_S3_CONNECT_TIMEOUT", "inf", config.s3_connect_timeout),
        ("TENSORLAKE_HTTP_TIMEOUT", "soon", config.http_timeout),
        ("TENSORLAKE_HTTP_MAX_ATTEMPTS", "-2", config.http_max_attempts),
    ],
)
def test_a_bad_value_is_a_config_error_naming_it(monkeypatch, name, value, read) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(tl.ConfigError, match=name):
        read()
