"""The registry's settings: ``$TENSORLAKE_HOME/config.toml``, each key overridable by a
``TENSORLAKE_<KEY>`` environment variable.

Keys: ``remote`` (where datasets are shared: ``s3://bucket/prefix``, or a local folder
such as a mounted drive), ``endpoint_url`` (any S3-compatible server), ``profile`` (the
AWS profile whose keys are used), ``region``, ``public`` (``true``: the remote is read
without credentials, for buckets anyone may read).

Secrets stay out of the file: name a profile (``~/.aws/credentials``) or use the
standard ``AWS_*`` variables. A key written into the file by hand
(``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``) is used only
when the file is private to its owner (mode 0600), else refused; it is never printed.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorlake import config
from tensorlake.errors import ConfigError

__all__ = [
    "KEYS",
    "SECRET_KEYS",
    "Settings",
    "config_path",
    "list_settings",
    "load_settings",
    "set_setting",
    "unset_setting",
]

KEYS: dict[str, str] = {
    "remote": "where datasets are shared: s3://bucket/prefix (or a local folder)",
    "endpoint_url": "the S3-compatible server, e.g. http://127.0.0.1:9000 (default: AWS)",
    "profile": "the AWS profile whose keys are used (~/.aws/credentials)",
    "region": "the bucket's region",
    "public": "true: read the remote without credentials (a bucket anyone may read)",
}
SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def config_path() -> Path:
    """``$TENSORLAKE_HOME/config.toml``."""
    return config.home() / "config.toml"


@dataclass(frozen=True)
class Settings:
    """The registry's settings in effect: the file, then the environment over it."""

    remote: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    public: bool = False
    secrets: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # never printed

    def creds(self) -> dict[str, Any] | None:
        """The storage credentials of ``remote`` (None for a local folder)."""
        if self.remote is None or not self.remote.startswith("s3://"):
            return None
        creds: dict[str, Any] = dict(self.secrets)
        for key, value in (
            ("endpoint_url", self.endpoint_url),
            ("profile_name", self.profile),
            ("region_name", self.region),
        ):
            if value:
                creds[key] = value
        if self.public:
            creds["anonymous"] = True
        return creds

    def require_remote(self) -> str:
        if not self.remote:
            raise ConfigError(
                "No remote is set: run `tensorlake config set remote s3://bucket/prefix` "
                "(or set TENSORLAKE_REMOTE)."
            )
        return self.remote


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}): fix or delete it.") from None
    unknown = sorted(set(data) - set(KEYS) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(f"{path} has unknown key(s) {unknown}; the keys are {sorted(KEYS)}.")
    secrets = [k for k in SECRET_KEYS if k in data]
    if secrets and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(
            f"{path} holds a secret ({', '.join(secrets)}) but others may read it: "
            f"`chmod 600 {path}`, or better, remove it and name a profile "
            "(`tensorlake config set profile NAME`) or use the AWS_* environment variables."
        )
    return data


def _check(key: str, value: Any) -> Any:
    """``value`` as stored for ``key``, or ``ConfigError`` saying what is accepted."""
    if key in SECRET_KEYS:
        raise ConfigError(
            f"{key} is a secret and is not written into the config: name a profile "
            "(`tensorlake config set profile NAME`, keys in ~/.aws/credentials) or use "
            "the AWS_* environment variables."
        )
    if key not in KEYS:
        raise ConfigError(f"Unknown config key {key!r}; the keys are {sorted(KEYS)}.")
    if key == "public":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"public must be true or false, got {value!r}.")
    if not isinstance(value, str) or not value.strip() or re.search(r"\s", value):
        raise ConfigError(f"{key} must be a non-empty value without spaces, got {value!r}.")
    if key == "remote" and "://" in value and not value.startswith(("s3://", "file://")):
        raise ConfigError(f"remote must be s3://bucket/prefix or a local folder, got {value!r}.")
    if key == "remote" and value.startswith("s3://") and not value[5:].split("/")[0]:
        raise ConfigError(f"remote {value!r} names no bucket: use s3://bucket/prefix.")
    if key == "endpoint_url" and not value.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint_url must be an http(s):// URL, got {value!r}.")
    return value


def load_settings() -> Settings:
    """The settings in effect now (read afresh: nothing is cached)."""
    data = _read_file(config_path())
    values: dict[str, Any] = {}
    for key in KEYS:
        env = os.environ.get(f"TENSORLAKE_{key.upper()}")
        value = env if env is not None and env != "" else data.get(key)
        if value is not None:
            values[key] = _check(key, value)
    secrets = tuple((k, str(data[k])) for k in SECRET_KEYS if k in data)
    return Settings(**values, secrets=secrets)


def list_settings() -> dict[str, dict[str, Any]]:
    """Every key: its value in effect and where it comes from (``file``, ``env``,
    ``unset``); secrets in the file show as ``"****"``."""
    data = _read_file(config_path())
    out: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        env = os.environ.get(f"TENSORLAKE_{key.upper()}")
        if env:
            out[key] = {"value": _check(key, env), "source": f"env TENSORLAKE_{key.upper()}"}
        elif key in data:
            out[key] = {"value": _check(key, data[key]), "source": "file"}
        else:
            out[key] = {"value": None, "source": "unset"}
    for key in SECRET_KEYS:
        if key in data:
            out[key] = {"value": "****", "source": "file"}
    return out


def set_setting(key: str, value: Any) -> None:
    """Write ``key = value`` into the config file (created private to its owner)."""
    checked = _check(key, value)
    path = config_path()
    data = _read_file(path)
    data[key] = checked
    _write(path, data)


def unset_setting(key: str) -> bool:
    """Remove ``key`` from the config file; False if it was not there."""
    if key not in KEYS and key not in SECRET_KEYS:
        raise ConfigError(f"Unknown config key {key!r}; the keys are {sorted(KEYS)}.")
    path = config_path()
    data = _read_file(path)
    if key not in data:
        return False
    del data[key]
    _write(path, data)
    return True


def _write(path: Path, data: dict[str, Any]) -> None:
    lines = ["# tensorlake registry settings (`tensorlake config list`)"]
    for key, value in data.items():
        text = ("true" if value else "false") if isinstance(value, bool) else _quote(str(value))
        lines.append(f"{key} = {text}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
