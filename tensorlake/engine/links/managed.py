"""Managed creds keys: credentials a dataset names but never holds, which every process
(a compute worker, a teammate's notebook) finds itself when it opens a linked object.

For a managed key ``K``, in this order:

1. ``TENSORLAKE_CREDS_<K>_AWS_ACCESS_KEY_ID``, ``..._AWS_SECRET_ACCESS_KEY``,
   ``..._AWS_SESSION_TOKEN``, ``..._ENDPOINT_URL`` and ``..._AWS_REGION``, when any of them
   is set. ``<K>`` is the key with every character other than an ASCII letter or digit
   replaced by ``_``, upper-cased: ``"raw-data.v2"`` reads ``TENSORLAKE_CREDS_RAW_DATA_V2_*``.
   What they leave out comes from the default AWS chain.
2. The AWS profile named ``K``, if the AWS config file (``[profile K]``) or the shared
   credentials file (``[K]``) defines it (``AWS_CONFIG_FILE`` and
   ``AWS_SHARED_CREDENTIALS_FILE``, default ``~/.aws/config`` and ``~/.aws/credentials``).
   boto3 reads the profile itself: keys, region, ``endpoint_url``, roles, SSO.
3. Otherwise a ``DatasetError`` that names both ways.

Nothing here keeps what it found: the resolver opens a storage with it and forgets it.
"""

from __future__ import annotations

import configparser
import os
import re
from typing import Any

from tensorlake.errors import DatasetError, LinkError

__all__ = [
    "ENV_FIELDS",
    "MANAGED_CREDS_KEYS",
    "check_env_name_free",
    "env_prefix",
    "resolve_managed",
]

MANAGED_CREDS_KEYS = "managed_creds_keys"
"""The manifest setting that lists a version's managed keys (sorted; absent when none).
A setting, not a manifest field: a tensorlake that predates managed keys keeps it and
ignores it, and reads such keys as plain ones (``populate_creds``)."""

ENV_FIELDS = (
    ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
    ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    ("AWS_SESSION_TOKEN", "aws_session_token"),
    ("ENDPOINT_URL", "endpoint_url"),
    ("AWS_REGION", "aws_region"),
)
"""Each variable suffix after ``TENSORLAKE_CREDS_<K>_``, and the S3 creds field it sets."""


def env_prefix(key: str) -> str:
    """The prefix of the variables that hold managed key ``key``'s credentials.

    Example::

        env_prefix("raw-data")  # 'TENSORLAKE_CREDS_RAW_DATA_'
    """
    return f"TENSORLAKE_CREDS_{re.sub(r'[^A-Za-z0-9]', '_', key).upper()}_"


def check_env_name_free(key: str, managed: frozenset[str]) -> None:
    """Refuse a managed key whose variables would be another managed key's."""
    clash = sorted(k for k in managed if k != key and env_prefix(k) == env_prefix(key))
    if clash:
        raise LinkError(
            f"Managed creds keys '{key}' and '{clash[0]}' would both read {env_prefix(key)}* "
            "variables; choose a name that differs in a letter or digit."
        )


def resolve_managed(key: str) -> dict[str, Any]:
    """The S3 creds of managed key ``key``, from this process's environment or its AWS
    profile files (see the module docstring); ``DatasetError`` when neither has them."""
    creds = _from_env(key)
    if creds is not None:
        return creds
    if _profile_exists(key):
        return {"profile_name": key}
    prefix = env_prefix(key)
    raise DatasetError(
        f"No credentials for managed creds key '{key}' in this process. Set "
        f"{prefix}AWS_ACCESS_KEY_ID and {prefix}AWS_SECRET_ACCESS_KEY (optionally "
        f"{prefix}AWS_SESSION_TOKEN, {prefix}ENDPOINT_URL, {prefix}AWS_REGION), or define "
        f"an AWS profile named '{key}' ([profile {key}] in {_config_path()} or [{key}] in "
        f"{_credentials_path()}). ds.populate_creds('{key}', {{...}}) gives them for this "
        "session only."
    )


def _from_env(key: str) -> dict[str, Any] | None:
    prefix = env_prefix(key)
    creds = {
        field: os.environ[prefix + suffix]
        for suffix, field in ENV_FIELDS
        if os.environ.get(prefix + suffix)
    }
    if not creds:
        return None
    has_id, has_secret = "aws_access_key_id" in creds, "aws_secret_access_key" in creds
    if has_id != has_secret or ("aws_session_token" in creds and not has_id):
        raise DatasetError(
            f"Managed creds key '{key}' is half set in the environment: set both "
            f"{prefix}AWS_ACCESS_KEY_ID and {prefix}AWS_SECRET_ACCESS_KEY (a session token "
            "goes with them), or neither."
        )
    return creds


def _config_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")


def _credentials_path() -> str:
    return os.path.expanduser(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")


def _profile_exists(key: str) -> bool:
    """Whether the AWS files define profile ``key`` (by botocore's rules: ``[profile K]``
    or ``[default]`` in the config file, ``[K]`` in the credentials file)."""
    config = _sections(_config_path())
    names = {s.split(None, 1)[1].strip() for s in config if s.startswith("profile ")}
    if "default" in config:
        names.add("default")
    return key in names or key in _sections(_credentials_path())


def _sections(path: str) -> set[str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as err:
        raise DatasetError(f"Cannot read the AWS file {path}: {err}. Fix or remove it.") from err
    return {s.strip() for s in parser.sections()}
