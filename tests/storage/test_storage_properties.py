"""Property: any valid keys and bytes round-trip through memory and local storage."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorlake.storage import LocalStorage, MemoryStorage, Storage

_part = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs", "Cc")
    ),
    min_size=1,
    max_size=12,
).filter(lambda p: p not in (".", "..") and not p.startswith(".tl-tmp."))
_key = st.lists(_part, min_size=1, max_size=4).map("/".join)


def _no_file_is_a_folder(keys: set[str]) -> bool:
    """A filesystem cannot hold both "a" and "a/b"; S3 could, but the property skips it."""
    return not any(other.startswith(key + "/") for key in keys for other in keys)


@pytest.fixture(scope="module", params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Storage:
    """Shared by all examples: each works under its own random prefix and clears it."""
    if request.param == "memory":
        return MemoryStorage()
    return LocalStorage(tmp_path_factory.mktemp("prop"))


@settings(max_examples=50, deadline=None)
@given(
    objects=st.dictionaries(_key, st.binary(max_size=300), min_size=1, max_size=6).filter(
        lambda d: _no_file_is_a_folder(set(d))
    ),
    cut=st.tuples(st.integers(0, 320), st.integers(0, 320)).map(sorted),
)
def test_round_trip(store: Storage, objects: dict[str, bytes], cut: list[int]) -> None:
    scope = f"p{uuid.uuid4().hex[:8]}/"
    for key, data in objects.items():
        store.put(scope + key, data)
    assert list(store.list(scope)) == sorted(scope + k for k in objects)
    start, end = cut
    for key, data in objects.items():
        assert store.get(scope + key) == data
        assert store.get_range(scope + key, start, end) == data[start:end]
        assert store.info(scope + key).size == len(data)
    store.clear(scope)
    assert list(store.list(scope)) == []
