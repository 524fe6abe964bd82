"""Storage: a small ABC over bytes, and its providers.

``from_url`` opens memory (``mem://``), local (a path or ``file://``), S3
(``s3://bucket/prefix``) and HTTP(S) (read-only) storage, and any scheme added
with ``register_scheme``; ``LRUCache``, a ``StorageWrapper``, puts a memory cache
in front of any of them. This layer knows nothing of datasets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tensorlake.storage.base import ObjectInfo, Storage
from tensorlake.storage.http import HTTPStorage
from tensorlake.storage.local import LocalStorage
from tensorlake.storage.lru import LRUCache
from tensorlake.storage.memory import MemoryStorage
from tensorlake.storage.url import from_url, register_scheme, schemes
from tensorlake.storage.wrapper import StorageWrapper

if TYPE_CHECKING:
    from tensorlake.storage.s3 import S3Storage

__all__ = [
    "HTTPStorage",
    "LRUCache",
    "LocalStorage",
    "MemoryStorage",
    "ObjectInfo",
    "S3Storage",
    "Storage",
    "StorageWrapper",
    "from_url",
    "register_scheme",
    "schemes",
]


def __getattr__(name: str) -> Any:
    # S3Storage imports boto3 (slow to import): load it on first use only.
    if name == "S3Storage":
        from tensorlake.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
