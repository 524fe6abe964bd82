"""TENSORLAKE_* settings: defaults, overrides, and errors that name the variable."""

from __future__ import annotations

import pytest

from tensorlake import config


def test_direct_write_min_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENSORLAKE_DIRECT_WRITE_MIN_BYTES", raising=False)
    assert config.direct_write_min_bytes() == 1 << 20
    for raw, expected in (("0", 0), ("65536", 65536), ("-1", None), ("", 1 << 20)):
        monkeypatch.setenv("TENSORLAKE_DIRECT_WRITE_MIN_BYTES", raw)
        assert config.direct_write_min_bytes() == expected
    monkeypatch.setenv("TENSORLAKE_DIRECT_WRITE_MIN_BYTES", "1MB")
    with pytest.raises(ValueError, match="TENSORLAKE_DIRECT_WRITE_MIN_BYTES must be an integer"):
        config.direct_write_min_bytes()


@pytest.mark.parametrize(
    "name,value,read",
    [
        ("TENSORLAKE_CHUNK_SIZE", "8MB", config.chunk_size),
        ("TENSORLAKE_LOCK_LEASE", "-3", config.lock_lease),
        ("TENSORLAKE_LOCK_LEASE", "soon", config.lock_lease),
        ("TENSORLAKE_START_METHOD", "clone", config.start_method),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_the_variable(monkeypatch, name, value, read):
    import tensorlake as tl

    monkeypatch.setenv(name, value)
    with pytest.raises(tl.ConfigError, match=name) as info:
        read()
    assert isinstance(info.value, ValueError)
