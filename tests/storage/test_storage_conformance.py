"""The shared storage suite (``tests/storage/conformance.py``) on memory, local and S3 (moto).

The other backends run it from their own modules: ``LRUCache`` in
``test_lru_cache.py``, ``StorageWrapper`` in ``test_storage_wrapper.py`` and the
read part on ``HTTPStorage`` in ``test_http_storage.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tensorlake.storage import Storage
from tests.storage.conformance import StorageSuite


class TestConformance(StorageSuite):
    """``storage`` and ``storage_target`` come from ``tests/conftest.py``."""

    @pytest.fixture
    def reopen(self, storage_target) -> Callable[[bool], Storage]:
        return storage_target.open

    @pytest.fixture
    def url_creds(self, storage_target) -> dict | None:
        return storage_target.creds
