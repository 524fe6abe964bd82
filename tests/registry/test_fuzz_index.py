"""Fuzzed registry indexes: a damaged ``versions/<name>/<n>.msgpack`` reads as a version
of the right types or as a ``FormatError`` naming its key, never another exception.

An index has no checksum of its own (it holds the BLAKE2b hash of every object it lists,
which a pull checks), so damage that still decodes may give a value.
"""

from __future__ import annotations

import math

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from tensorlake.errors import FormatError
from tensorlake.registry.remote import Version, version_key
from tests.engine.format.fuzzing import corrupted, fuzz_settings, mutated_record, parse_checked

KEY = version_key("coco", 3)
GOOD = Version(
    "coco",
    3,
    "ab" * 20,
    "main",
    1.7e9,
    "alice",
    {"rows": 10, "tensors": ["images", "boxes"]},
    {"commits/x.msgpack": (120, "0f" * 16), "tensors/images/chunks/00ab": (9000, "1e" * 16)},
    {"README.md": (42, "2d" * 16)},
).to_bytes()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(corrupted(GOOD))
    decoded = msgpack.unpackb(GOOD, raw=False)
    return msgpack.packb(draw(mutated_record(decoded)), use_bin_type=True)


@fuzz_settings
@given(bad=damaged())
def test_damaged_index_is_a_version_or_format_error(bad):
    got = parse_checked(lambda b: Version.from_bytes(b, f"s3://bucket/reg/{KEY}", KEY), bad, KEY)
    if isinstance(got, FormatError):
        return
    assert isinstance(got.name, str) and isinstance(got.commit, str)
    assert isinstance(got.branch, str) and isinstance(got.author, str)
    assert isinstance(got.number, int) and got.number >= 0
    assert isinstance(got.time, float) and math.isfinite(got.time)
    assert isinstance(got.summary, dict)
    for listed in (got.objects, got.files):
        for k, (size, digest) in listed.items():
            assert isinstance(k, str) and isinstance(size, int) and size >= 0
            assert isinstance(digest, str)
    got.describe()
