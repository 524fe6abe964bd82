"""``from_url``: open the storage a URL names.

A registry maps each URL scheme to a provider class, imported only when a URL
of that scheme is opened (so ``mem://`` never imports boto3). Each provider class
parses its own URLs in a ``_open_url`` classmethod.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

from tensorlake.storage.base import Storage

__all__ = ["SCHEMES", "from_url"]

SCHEMES: dict[str, str] = {
    "file": "tensorlake.storage.local:LocalStorage",
    "http": "tensorlake.storage.http:HTTPStorage",
    "https": "tensorlake.storage.http:HTTPStorage",
    "mem": "tensorlake.storage.memory:MemoryStorage",
    "s3": "tensorlake.storage.s3:S3Storage",
}
"""URL scheme -> ``"module:Class"`` of the provider; a path without a scheme is local."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def from_url(
    url: str | os.PathLike[str],
    creds: dict[str, Any] | None = None,
    read_only: bool = False,
) -> Storage:
    """Open the storage at ``url``.

    ==========================  ==========================================
    ``mem://name``              ``MemoryStorage`` (one store per name and process)
    ``/a/path``, ``file://...`` ``LocalStorage``
    ``s3://bucket/prefix``      ``S3Storage`` (``creds`` for keys, region, endpoint)
    ``http(s)://...``           ``HTTPStorage`` (always read-only)
    ==========================  ==========================================

    ``creds`` is only meaningful for S3. ``read_only=True`` opens any storage so
    that every write raises ``ReadOnlyError``.

    Example::

        store = from_url("s3://my-bucket/coco", creds={"aws_region": "us-east-1"})
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise ValueError(f"expected a storage URL or path, got {url!r}")
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "file"
    if scheme not in SCHEMES:
        supported = ", ".join(f"{s}://" for s in sorted(SCHEMES))
        raise ValueError(
            f"unsupported storage URL {url!r}: scheme {scheme!r} is not one of "
            f"{supported} (or a local path)"
        )
    if creds and scheme != "s3":
        raise ValueError(f"creds are only used for s3:// URLs, not for {url!r}")
    cls = _provider(scheme)
    if not match:
        return cls(url, read_only=read_only)
    return cls._open_url(url, creds=creds, read_only=read_only)


def _provider(scheme: str) -> Any:
    module_name, _, class_name = SCHEMES[scheme].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f"{scheme}:// storage needs a missing dependency ({err.name}); "
            "pip install 'tensorlake[all]' or the package named"
        ) from err
    return getattr(module, class_name)
