"""``from_url``: open the storage a URL names; ``register_scheme``: add a scheme.

A registry maps each URL scheme to a provider class, given as a ``"module:Class"``
string imported only when a URL of that scheme is opened (so ``mem://`` never
imports boto3), or as the class itself. Each provider parses its own URLs in its
``open_url`` classmethod.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
import types
from collections.abc import Mapping
from typing import Any

from tensorlake.errors import StorageArgumentError
from tensorlake.storage.base import Storage

__all__ = ["SCHEMES", "from_url", "register_scheme", "schemes"]

_BUILT_IN = {
    "file": "tensorlake.storage.local:LocalStorage",
    "http": "tensorlake.storage.http:HTTPStorage",
    "https": "tensorlake.storage.http:HTTPStorage",
    "mem": "tensorlake.storage.memory:MemoryStorage",
    "s3": "tensorlake.storage.s3:S3Storage",
}
_providers: dict[str, str | type[Storage]] = dict(_BUILT_IN)  # what from_url opens with
_names: dict[str, str] = dict(_BUILT_IN)  # the same as "module:Class" strings
_register_lock = threading.Lock()

SCHEMES: Mapping[str, str] = types.MappingProxyType(_names)
"""URL scheme -> ``"module:Class"`` of the provider, a read-only view kept for
compatibility (``schemes()`` returns a copy; ``register_scheme`` changes it). A path
without a scheme is opened by the ``file`` provider."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCHEME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def register_scheme(scheme: str, provider: str | type[Storage]) -> None:
    """Make ``from_url`` open ``scheme://...`` URLs with ``provider``'s ``open_url``.

    ``provider`` is a ``Storage`` subclass or a ``"module:Class"`` string, imported
    on the first open (a missing dependency then raises ``ImportError`` naming what
    to install). Schemes are case-insensitive, as in URLs; registering a scheme
    again replaces its provider, built-in ones included. The ``file`` provider also
    opens plain paths.

    Example::

        register_scheme("gs", "my_package.gcs:GCSStorage")
        store = from_url("gs://bucket/prefix")
    """
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a str, got {type(scheme).__name__}")
    if not _SCHEME_NAME.fullmatch(scheme):
        raise ValueError(
            f"invalid URL scheme {scheme!r}: a letter then letters, digits, '+', '-' or "
            "'.', without '://' (e.g. 'gs' for gs://bucket)"
        )
    if isinstance(provider, str):
        if not _TARGET.fullmatch(provider):
            raise ValueError(
                f"invalid provider {provider!r} for {scheme}://: expected 'module:Class', "
                "e.g. 'my_package.gcs:GCSStorage'"
            )
        name = provider
    elif isinstance(provider, type) and issubclass(provider, Storage):
        name = f"{provider.__module__}:{provider.__qualname__}"
    else:
        raise TypeError(
            f"provider for {scheme}:// must be a Storage subclass or a 'module:Class' "
            f"string, got {provider!r}"
        )
    scheme = scheme.lower()
    with _register_lock:
        _providers[scheme] = provider
        _names[scheme] = name


def schemes() -> dict[str, str]:
    """A copy of the registry: URL scheme -> ``"module:Class"`` of its provider."""
    return dict(_names)


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

    ``creds`` is only meaningful for S3 (and registered providers that take it).
    ``read_only=True`` opens any storage so that every write raises ``ReadOnlyError``.
    ``register_scheme`` adds schemes.

    Example::

        store = from_url("s3://my-bucket/coco", creds={"aws_region": "us-east-1"})
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise StorageArgumentError(f"expected a storage URL or path, got {url!r}")
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "file"
    provider = _providers.get(scheme)
    if provider is None:
        supported = ", ".join(f"{s}://" for s in sorted(_names))
        raise StorageArgumentError(
            f"unsupported storage URL {url!r}: scheme {scheme!r} is not one of "
            f"{supported} (or a local path); register_scheme adds schemes"
        )
    return _load(scheme, provider).open_url(url, creds=creds, read_only=read_only)


def _load(scheme: str, provider: str | type[Storage]) -> type[Storage]:
    """The provider class, importing a ``"module:Class"`` string's module."""
    if not isinstance(provider, str):
        return provider
    module_name, _, class_name = provider.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(
            f"{scheme}:// storage needs a missing dependency ({err.name}); "
            "pip install 'tensorlake[all]' or the package named"
        ) from err
    cls: Any = module
    for part in class_name.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, Storage)):
        raise ImportError(
            f"{scheme}:// is registered to {provider!r}, but {module_name} has no "
            f"Storage subclass {class_name!r}; fix the name with register_scheme"
        )
    return cls
